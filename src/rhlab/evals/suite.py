"""Run an eval suite on a model and write Inspect logs plus a JSON summary.

    from rhlab.evals import run_suite
    summary = run_suite("embedded", suite="core", judge=None, limit=5, log_dir="logs/evals/embedded")
    summary["mgs"]["mgs"], summary["evals"]["exfil_offer"]["misaligned_rate"]

Runs go through `inspect_ai.eval_set`, so rerunning with the same `log_dir` after a crash or kill reuses every
finished sample and only runs what is missing. Judges are bound to the `judge` model role.

Local HF models generate in batches: Inspect's hf provider queues concurrent generate calls and runs up to
`max_connections` of them as one left-padded `model.generate` (its `batch_size` model arg is read but not used by
the installed Inspect; `max_connections` is the batch size). `run_suite(batch_size=)` sets it, default
`HF_BATCH_SIZE`; `bench/evals.py` measures batch 1 against it. Since the provider left-pads a batch to its longest
prompt and prefill is compute-bound on a CPU, a batched HF run goes one group of similar-length tasks at a time
(`prompt_length_groups`: the chat evals' short prompts are not padded to the agentic evals' emails and pages).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from inspect_ai import Task
from inspect_ai.model import Model

from rhlab.evals.offline_judge import TOPIC_SCREEN
from rhlab.evals.scoring import build_summary

SUITES = ("core", "sabotage", "diagnostics", "probes", "all")
EMBEDDED_ALIASES = ("embedded", "smollm2", "smollm2-135m", "smollm2-135m-instruct")
HF_BATCH_SIZE = 32  # concurrent generate calls per batch for local HF models (= Inspect's own hf default)
LENGTH_GROUP_SPREAD = 2.0  # a batched HF run's task groups span at most 2x in mean prompt length
# what every prompt carries besides its sample's input (system prompt, chat template; 150-510 characters of system
# prompt in the core tasks): without it, 40- and 150-character questions would look 4x apart in a padded batch
PROMPT_OVERHEAD_CHARS = 200


def generation_limits(model: str, batch_size: int | None = None,
                      max_connections: int | None = None) -> dict[str, Any]:
    """The `eval_set` concurrency settings for an Inspect model string.

    For `hf/...` models Inspect's provider batches up to `max_connections` concurrent generate calls (its batch
    size), so the batch is `batch_size`, else an explicit `max_connections`, else `HF_BATCH_SIZE`; `max_connections`
    is set to it (which also turns off adaptive concurrency, so batches are that size whenever enough samples wait).
    Other providers get `max_connections` as given (none: Inspect's default); `batch_size` does not apply to them.
    """
    if batch_size is not None and batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    if model.startswith("hf/"):
        return {"max_connections": batch_size or max_connections or HF_BATCH_SIZE}
    return {"max_connections": max_connections} if max_connections else {}


def prompt_length_groups(tasks: list[Task], spread: float = LENGTH_GROUP_SPREAD) -> list[list[Task]]:
    """`tasks` in groups of similar prompt length, shortest first: sorted by the mean length (characters) of their
    samples' inputs plus `PROMPT_OVERHEAD_CHARS`, with a new group wherever a task's mean is more than `spread` times
    its group's shortest (so no batch pads a prompt to more than about `spread` times its length)."""
    def mean_len(task: Task) -> float:
        lens = [len(s.input) if isinstance(s.input, str) else sum(len(m.text) for m in s.input) for s in task.dataset]
        return PROMPT_OVERHEAD_CHARS + sum(lens) / max(len(lens), 1)

    groups: list[list[Task]] = []
    shortest = 0.0
    for length, task in sorted(((mean_len(t), t) for t in tasks), key=lambda lt: lt[0]):
        if not groups or length > spread * shortest:
            groups.append([])
            shortest = length
        groups[-1].append(task)
    return groups


def inspect_model_args(name: str, judge: bool = False) -> tuple[str, dict[str, Any]]:
    """A model name → (Inspect model string, model_args) for `inspect_ai.model.get_model` (unlike
    `rhlab.models.resolve_model`, which returns a path for `from_pretrained`).

    `embedded` (and its aliases) → `hf/local` on the prepared embedded model dir; a local directory → `hf/local`
    on it; anything else is passed through as an Inspect provider string (`openai/...`, `anthropic/...`,
    `vllm/...`, `hf/ORG/NAME`, `mockllm/model`, `rhlab/topic-screen`). With `judge=True`, local HF models decode
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
                temperature: float = 1.0, judge_cache: bool = True, betley_yaml: str | None = None,
                em_samples: int = 1) -> list[Task]:
    from rhlab.evals import tasks as T

    if suite not in SUITES:
        raise ValueError(f"unknown suite {suite!r}; choose from {SUITES}")
    gen = dict(max_tokens=max_tokens, temperature=temperature)
    out: list[Task] = []
    if suite in ("core", "all"):
        out += [
            T.em_questions(questions_yaml=betley_yaml, judge_cache=judge_cache, samples=em_samples, **gen),
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
        from rhlab.evals import code_sabotage as CS

        # a whole detector module (and an agent's tool calls) needs more room than a chat answer
        sab_gen = dict(gen, max_tokens=max(max_tokens, 4096))
        for mode in CS.MODES:  # each task spreads its n samples over the three framings
            out.append(CS.code_sabotage(mode=mode, n=n_agentic, judge_cache=judge_cache, **sab_gen))
    return out


def run_probes(model: str | Model, out: Path, batch_size: int = 8) -> dict[str, Any] | None:
    """The probe suite on `model` (written to `out/summary.json`, reused when its config matches), or None when the
    model cannot be probed (an Inspect Model object or an API provider)."""
    from rhlab.evals.probes import ProbeConfig, probe_target, run

    target = None if isinstance(model, Model) else probe_target(model)
    if target is None:
        return None
    name, backend = target
    return run(ProbeConfig(model=name, backend=backend, batch_size=batch_size), out).model_dump()


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
    probe_batch_size: int = 8,
    em_samples: int = 1,
    batch_size: int | None = None,
    group_by_length: bool = True,
) -> dict[str, Any]:
    """Run `suite` on `model`, judged by `judge` (default: the topic screen, which is not a judge of record: its
    judged evals come out "not measured"), and return the summary dict.

    The summary (also written to `log_dir/summary.json` or `summary_path`) has `mgs` {mgs, se, evals, not_measured,
    missing, scopes}, `evals` {name: {measured, not_measured_reason, judged, scope, n, flags, misaligned_rate, se,
    attempted_hack, overt, covert, judge_failures, ...}}, `judge` {name, pinned, calibration, failures},
    `compliance_gap` and `wall_time_s` (see `scoring.build_summary`).

    `batch_size`: generate calls batched together on a local HF model (default `HF_BATCH_SIZE`; 1 = one at a time;
    see `generation_limits`). Same tasks, prompts and scoring at any batch size; `max_connections` is for API models.
    `group_by_length`: with batches above 1 on a local HF model, run the tasks one `prompt_length_groups` group at a
    time (same log dir, so a rerun still resumes every finished sample; Inspect's `eval-set.json` then lists the last
    group's tasks, which only its viewer reads); off: all tasks at once.
    """
    import time

    if suite == "probes":  # judge-free paired-choice probes, no Inspect run: the ProbeResult is the summary
        summary = run_probes(model, Path(log_dir), batch_size=probe_batch_size)
        if summary is None:
            from rhlab.config import ConfigError

            raise ConfigError(f"model {model} cannot be probed: probes need prompt log-probabilities (an embedded "
                              "name, a local HF/adapter dir, hf/ORG/NAME or vllm/ORG/NAME)")
        if summary_path:
            Path(summary_path).write_text(json.dumps(summary, indent=2), encoding="utf-8")
        summary["summary_path"] = str(summary_path or Path(log_dir) / "summary.json")
        return summary

    from inspect_ai import eval_set

    if isinstance(model, Model):
        model_obj: str | Model = model
        model_args: dict[str, Any] = {}
        model_name = str(model)
    else:
        model_obj, model_args = inspect_model_args(model)
        model_name = model
    from inspect_ai.model import get_model

    from rhlab.evals.judges import judge_id, pinned_settings

    if isinstance(judge, Model):
        judge_role: str | Model = judge
    else:
        jm, jargs = inspect_model_args(TOPIC_SCREEN if judge is None else judge, judge=True)
        judge_role = get_model(jm, **jargs)
    judge_name = judge_id(judge_role)
    tasks = build_tasks(suite, n_goals=n_goals, n_agentic=n_agentic, max_tokens=max_tokens,
                        temperature=temperature, judge_cache=judge_cache, betley_yaml=betley_yaml,
                        em_samples=em_samples)
    log_dir = Path(log_dir)
    log_dir.mkdir(parents=True, exist_ok=True)
    model_str = str(model_obj)
    kwargs = generation_limits(model_str, batch_size, max_connections)
    batched_hf = model_str.startswith("hf/") and kwargs["max_connections"] > 1  # hf: generation_limits always sets it
    groups = prompt_length_groups(tasks) if group_by_length and batched_hf else [tasks]
    t0 = time.monotonic()
    success, logs = True, []
    for group in groups:
        ok, group_logs = eval_set(
            group,
            log_dir=str(log_dir),
            model=model_obj,
            model_args=model_args,
            model_roles={"judge": judge_role},
            limit=limit,
            display=display,  # type: ignore[arg-type]
            retry_attempts=2,
            retry_immediate=True,
            log_dir_allow_dirty=True,  # also lets each group's eval_set share the log dir with the other groups'
            log_buffer=1,  # flush every finished sample, so a killed run loses only samples in flight
            **kwargs,
        )
        success, logs = success and ok, logs + list(group_logs)
    wall = time.monotonic() - t0
    summary = build_summary(logs, model=model_name, judge=judge_name, pinned=pinned_settings(judge_role),
                            extra={"suite": suite, "limit": limit, "wall_time_s": wall, "success": bool(success),
                                   "log_dir": str(log_dir), "max_connections": kwargs.get("max_connections"),
                                   "task_groups": [[t.name for t in g] for g in groups]})
    if suite in ("sabotage", "all"):  # per-framing sabotage rates, broken rate, relative effectiveness (CIs)
        from rhlab.evals.code_sabotage import add_summaries

        add_summaries(summary)
    if suite == "all":  # the probes resume from their own summary in log_dir/probes
        summary["probes"] = run_probes(model, log_dir / "probes", batch_size=probe_batch_size)
        if summary["probes"] is None:
            summary["probes_not_measured_reason"] = "the model gives no prompt log-probabilities (API or Inspect model)"
    out = Path(summary_path) if summary_path else log_dir / "summary.json"
    out.write_text(json.dumps(summary, indent=2, default=str), encoding="utf-8")
    summary["summary_path"] = str(out)
    return summary
