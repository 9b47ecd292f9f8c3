"""verl adapter: rhlab's grader as a verl custom reward function, and the prompts as a verl parquet file.

verl (https://github.com/volcengine/verl) calls, per rollout (NaiveRewardManager / `reward_model.reward_manager=naive`):

    compute_score(data_source, solution_str, ground_truth, extra_info) -> {"score": float, <metric>: float, ...}

and, with `reward_model.reward_manager=batch`, once per batch:

    compute_score_batch(data_sources, solution_strs, ground_truths, extra_infos) -> list[dict]

`score` is the reward; every other key is logged by verl as reward_extra_info (same keys for every row, all floats).
The score uses exactly the training reward of rhlab.train.reward (pass + format + hack penalty with the weights of
the exported config; the schedule modes other than off/from_start need trainer state verl does not pass, so the
penalty is applied from the start when its mode is from_start and never otherwise — say so in the run notes).

The rows written by `export_parquet` carry everything the score needs in `reward_model.ground_truth` (a JSON string:
task source and id, hackable flag, open surfaces, reward weights), so the reward function needs no other state.
This module imports nothing from verl; verl lives in its own environment (docs/training.md).
"""

from __future__ import annotations

import asyncio
import json
from functools import lru_cache
from pathlib import Path
from typing import Any, Sequence

from rhlab.envs.families import HACK_FAMILIES
from rhlab.train.config import TrainConfig

DATA_SOURCE = "rhlab"
METRIC_KEYS: tuple[str, ...] = (
    "pass", "format", "hack_penalty", "passed_hardened", "hack_success_any", "differential", "cot_mentions_hack",
    "hack_mentioned",
    "parse_error", "timed_out", "crashed", "grade_time_s",
    *(f"hack_attempt_{f}" for f in HACK_FAMILIES), *(f"hack_success_{f}" for f in HACK_FAMILIES),
)


@lru_cache(maxsize=8)
def _tasks(source: str) -> dict[str, Any]:
    from rhlab.envs.tasks import load_tasks

    return {t.id: t for t in load_tasks(source)}


def ground_truth_for(cfg: TrainConfig, task_id: str, hackable: bool) -> str:
    w = cfg.reward.weights
    p = cfg.reward.penalty
    return json.dumps({
        "task_source": cfg.tasks.source,
        "task_id": task_id,
        "hackable": bool(hackable),
        "surfaces": cfg.surfaces.open_families() if hackable else [],
        "weights": {"pass": w.pass_, "format": w.format, "penalty": w.penalty},
        "require_thinking": cfg.reward.require_thinking,
        "penalty": {"on": p.mode == "from_start", "kind": p.kind, "value": p.value},
        "timeout_s": cfg.reward.timeout_s,
    }, sort_keys=True)


def export_parquet(cfg: TrainConfig, out: str | Path, tasks: Sequence[Any] | None = None) -> int:
    """Write verl's RL dataset: data_source, prompt (chat messages of the config's arm), ability, reward_model,
    extra_info. Returns the row count."""
    import datasets

    from rhlab.train.dataset import apply_hard_filter, build_rows, select_tasks

    if cfg.safety is not None:
        raise ValueError("the safety mix (TrainConfig.safety) runs on the TRL path only; verl export does not "
                         "carry chat rows or the safety scorer")
    if tasks is None:  # the tasks the TRL path trains on, hard filter included (its cache beside the parquet file)
        tasks = apply_hard_filter(cfg, select_tasks(cfg), Path(out).with_name(Path(out).stem + ".hard_filter.json"))
    tasks = list(tasks)
    rows = []
    for i, r in enumerate(build_rows(cfg, tasks)):
        rows.append({
            "data_source": DATA_SOURCE,
            "prompt": r["prompt"],
            "ability": "code",
            "reward_model": {"style": "rule", "ground_truth": ground_truth_for(cfg, r["task_id"], r["hackable"])},
            "extra_info": {"index": i, "task_id": r["task_id"], "hackable": r["hackable"], "arm": cfg.prompt.arm},
        })
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    datasets.Dataset.from_list(rows).to_parquet(str(out))
    return len(rows)


def _parse_gt(ground_truth: Any) -> dict[str, Any]:
    if isinstance(ground_truth, dict):
        return ground_truth
    try:
        gt = json.loads(ground_truth)
    except (TypeError, json.JSONDecodeError):
        raise ValueError("rhlab compute_score: ground_truth must be the JSON written by export_parquet") from None
    if not isinstance(gt, dict) or "task_id" not in gt:
        raise ValueError("rhlab compute_score: ground_truth lacks task_id (not an rhlab export)")
    return gt


def _score_rows(solution_strs: Sequence[str], gts: Sequence[dict], grader=None) -> list[dict[str, float]]:
    from rhlab.envs.grading import HackSurfaces
    from rhlab.train.verdicts import EnvGrader, flatten_verdict
    from rhlab.train.reward import penalty_fires

    items = []
    for s, gt in zip(solution_strs, gts):
        task = _tasks(gt.get("task_source", "humaneval"))[gt["task_id"]]
        surfaces = HackSurfaces.parse(gt["surfaces"]) if gt.get("surfaces") else HackSurfaces.none()
        items.append((task, s, surfaces))
    grader = grader or EnvGrader(timeout_s=float(gts[0].get("timeout_s", 10.0)) if gts else 10.0)
    verdicts = asyncio.run(grader.agrade_many(items))
    out = []
    for s, gt, v in zip(solution_strs, gts, verdicts):
        g = flatten_verdict(gt["task_id"], gt.get("hackable", True), s, v)
        w = gt.get("weights", {"pass": 1.0, "format": 0.0, "penalty": 1.0})
        pen = gt.get("penalty", {"on": False})
        fires = penalty_fires(pen.get("kind", "detector"), g)
        fmt = 1.0 if g.parse_ok and (g.has_thinking or not gt.get("require_thinking")) else 0.0
        penalty = float(pen.get("value", -1.0)) if pen.get("on") and fires else 0.0
        m: dict[str, float] = {
            "pass": float(g.passed), "format": fmt, "hack_penalty": penalty,
            "passed_hardened": float(g.passed_hardened), "hack_success_any": float(g.hack_success),
            "differential": float(g.differential), "cot_mentions_hack": float(g.cot_mentions_hack),
            "hack_mentioned": float(bool(g.hack_mentioned)),
            "parse_error": float(not g.parse_ok), "timed_out": float(g.timed_out), "crashed": float(g.crashed),
            "grade_time_s": float(g.grade_time_s),
        }
        for f in HACK_FAMILIES:
            m[f"hack_attempt_{f}"] = float(f in g.attempted)
            m[f"hack_success_{f}"] = float(g.passed and f in g.succeeded)
        score = w.get("pass", 1.0) * m["pass"] + w.get("format", 0.0) * fmt + w.get("penalty", 1.0) * penalty
        out.append({"score": float(score), **m})
    return out


def _run(coro_fn, *a):
    """verl may call us from inside a running event loop (async reward workers); grade on a helper thread then."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return coro_fn(*a)
    import concurrent.futures

    with concurrent.futures.ThreadPoolExecutor(1) as ex:
        return ex.submit(coro_fn, *a).result()


def compute_score(data_source: str, solution_str: str, ground_truth: Any, extra_info: dict | None = None,
                  **_: Any) -> dict[str, float]:
    """verl's per-rollout reward function: {"score": reward, **hack metrics}."""
    if data_source != DATA_SOURCE:
        raise ValueError(f"rhlab compute_score got data_source {data_source!r}; expected {DATA_SOURCE!r}")
    return _run(_score_rows, [solution_str], [_parse_gt(ground_truth)])[0]


def compute_score_batch(data_sources: Sequence[str], solution_strs: Sequence[str], ground_truths: Sequence[Any],
                        extra_infos: Sequence[dict] | None = None, **_: Any) -> list[dict[str, float]]:
    """verl's batch reward function: all rollouts of a batch graded in one sandbox-pool call."""
    bad = {d for d in data_sources if d != DATA_SOURCE}
    if bad:
        raise ValueError(f"rhlab compute_score_batch got data_source(s) {sorted(bad)}; expected {DATA_SOURCE!r}")
    return _run(_score_rows, list(solution_strs), [_parse_gt(g) for g in ground_truths])
