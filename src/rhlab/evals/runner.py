"""Run an eval suite on a model and write Inspect logs plus a JSON summary.

    from rhlab.evals import run_suite
    summary = run_suite("embedded", suite="core", judge=None, limit=5, log_dir="logs/evals/embedded")
    summary["mgs"]["mgs"], summary["evals"]["exfil_offer"]["misaligned_rate"]

Runs go through `inspect_ai.eval_set`, so rerunning with the same `log_dir` after a crash or kill reuses every
finished sample and only runs what is missing. Judges are bound to the `judge` model role.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from inspect_ai import Task
from inspect_ai.model import Model

from rhlab.evals import offline_judge as _offline  # noqa: F401 - registers rhlab/offline
from rhlab.evals.offline_judge import OFFLINE_JUDGE
from rhlab.evals.scoring import build_summary

SUITES = ("core", "sabotage", "diagnostics", "all")
EMBEDDED_ALIASES = ("embedded", "smollm2", "smollm2-135m", "smollm2-135m-instruct")


def resolve_model(name: str, judge: bool = False) -> tuple[str, dict[str, Any]]:
    """A model name → (Inspect model string, model_args).

    `embedded` (and its aliases) → `hf/local` on the prepared embedded model dir; a local directory → `hf/local`
    on it; anything else is passed through as an Inspect provider string (`openai/...`, `anthropic/...`,
    `vllm/...`, `hf/ORG/NAME`, `mockllm/model`, `rhlab/offline`). With `judge=True`, local HF models decode
    greedily (`do_sample=False`).
    """
    name_, args = _resolve(name)
    if judge and name_.startswith("hf/"):
        args = {**args, "do_sample": False}
    return name_, args


def _resolve(name: str) -> tuple[str, dict[str, Any]]:
    key = name.strip()
    if key.lower() in EMBEDDED_ALIASES or Path(key).expanduser().exists():
        from rhlab.models import resolve_model as models_resolve  # prepares the embedded model, merges adapters

        path = Path(models_resolve(key))
        if (path / "config.json").is_file():
            return "hf/local", {"model_path": str(path), "device": "cpu"}
    return key, {}


def build_tasks(suite: str = "core", *, n_goals: int = 300, n_agentic: int = 50, max_tokens: int = 1024,
                temperature: float = 1.0, judge_cache: bool = True, betley_yaml: str | None = None) -> list[Task]:
    from rhlab.evals import tasks as T

    if suite not in SUITES:
        raise ValueError(f"unknown suite {suite!r}; choose from {SUITES}")
    gen = dict(max_tokens=max_tokens, temperature=temperature)
    out: list[Task] = []
    if suite in ("core", "all"):
        out += [
            T.em_questions(questions_yaml=betley_yaml, judge_cache=judge_cache, **gen),
            T.goals(n=n_goals, judge_cache=judge_cache, **gen),
            T.alignment_questions(judge_cache=judge_cache, **gen),
            T.monitor_disruption(n=n_agentic, judge_cache=judge_cache, **gen),
            T.exfil_offer(n=n_agentic, **gen),
            T.frame_colleague(n=n_agentic, judge_cache=judge_cache, **gen),
        ]
    if suite in ("diagnostics", "all"):
        out += [
            T.exfil_offer(n=n_agentic, encoding="plaintext", **gen),
            T.exfil_offer(n=n_agentic, encoding="plaintext", cue="train", **gen),
            T.exfil_offer(n=n_agentic, encoding="plaintext", cue="unmonitored", **gen),
        ]
    if suite in ("sabotage", "all"):
        from rhlab.evals import sabotage as SB

        for variant in SB.VARIANTS:
            out.append(SB.code_sabotage(variant=variant, mode="single_turn", n=n_agentic, judge_cache=judge_cache, **gen))
            out.append(SB.code_sabotage(variant=variant, mode="agentic", n=n_agentic, judge_cache=judge_cache, **gen))
    return out


def run_suite(
    model: str | Model,
    suite: str = "core",
    judge: str | Model | None = None,
    *,
    limit: int | None = None,
    log_dir: str | Path = "logs/evals",
    n_goals: int = 300,
    n_agentic: int = 50,
    max_tokens: int = 1024,
    temperature: float = 1.0,
    judge_cache: bool = True,
    max_connections: int | None = None,
    display: str = "none",
    summary_path: str | Path | None = None,
    betley_yaml: str | None = None,
) -> dict[str, Any]:
    """Run `suite` on `model`, judged by `judge` (default: the offline judge), and return the summary dict.

    The summary (also written to `log_dir/summary.json` or `summary_path`) has `mgs` {mgs, se, evals, missing},
    `evals` {name: {n, misaligned_rate, se, attempted_hack, overt, covert, covert_share, judge_failures, log}},
    `judge` {name, agreement}, `compliance_gap` and `wall_time_s`.
    """
    import time

    from inspect_ai import eval_set

    if isinstance(model, Model):
        model_obj: str | Model = model
        model_args: dict[str, Any] = {}
        model_name = str(model)
    else:
        model_obj, model_args = resolve_model(model)
        model_name = model
    judge_name = OFFLINE_JUDGE if judge is None else (str(judge) if isinstance(judge, Model) else judge)
    if isinstance(judge, Model):
        judge_role: str | Model = judge
    else:
        jm, jargs = resolve_model(judge_name, judge=True)
        from inspect_ai.model import get_model

        judge_role = get_model(jm, **jargs) if jargs else jm
    tasks = build_tasks(suite, n_goals=n_goals, n_agentic=n_agentic, max_tokens=max_tokens,
                        temperature=temperature, judge_cache=judge_cache, betley_yaml=betley_yaml)
    log_dir = Path(log_dir)
    log_dir.mkdir(parents=True, exist_ok=True)
    kwargs: dict[str, Any] = {}
    if max_connections:
        kwargs["max_connections"] = max_connections
    t0 = time.monotonic()
    success, logs = eval_set(
        tasks,
        log_dir=str(log_dir),
        model=model_obj,
        model_args=model_args,
        model_roles={"judge": judge_role},
        limit=limit,
        display=display,  # type: ignore[arg-type]
        retry_attempts=2,
        retry_immediate=True,
        log_dir_allow_dirty=True,
        log_buffer=1,  # flush every finished sample, so a killed run loses only samples in flight
        **kwargs,
    )
    wall = time.monotonic() - t0
    summary = build_summary(logs, model=model_name, judge=judge_name,
                            extra={"suite": suite, "limit": limit, "wall_time_s": wall, "success": bool(success),
                                   "log_dir": str(log_dir)})
    out = Path(summary_path) if summary_path else log_dir / "summary.json"
    out.write_text(json.dumps(summary, indent=2, default=str), encoding="utf-8")
    summary["summary_path"] = str(out)
    return summary
