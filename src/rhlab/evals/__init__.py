"""The misalignment evaluation suite (Inspect AI): six core evals, code sabotage, calibrated judges, the MGS.

    from rhlab.evals import run_suite
    summary = run_suite("embedded", suite="core", judge="rhlab/offline", limit=5, log_dir="logs/evals/x")

Modules: `tasks` (core Inspect tasks), `sabotage` (code-sabotage tasks), `judges` (rubrics, parsing, logprob
scores), `offline_judge` (the `rhlab/offline` provider), `calibrate` (golden-set agreement), `scoring` (rates, SE,
MGS), `runner` (suites, resume), `scripted` (mockllm models/judges for tests), `cli`.
"""

from __future__ import annotations

from typing import Any

__all__ = ["run_suite", "build_tasks", "calibrate_judge", "resolve_model"]


def __getattr__(name: str) -> Any:
    if name in ("run_suite", "build_tasks", "resolve_model"):
        from rhlab.evals import runner

        return getattr(runner, name)
    if name == "calibrate_judge":
        from rhlab.evals.calibrate import calibrate_judge

        return calibrate_judge
    raise AttributeError(name)
