"""The misalignment evaluation suite (Inspect AI): six core evals, code sabotage, judges of record, the MGS.

    from rhlab.evals import run_suite
    summary = run_suite("embedded", suite="core", judge="openai/gpt-4.1", limit=5, log_dir="logs/evals/x")

Modules: `tasks` (core Inspect tasks), `code_sabotage` (the model writes a reward-hack detector for rhlab, scored by
running it), `detector_audit` (that scorer), `sabotage` (the older classifier-prompt version, not in a suite), `judges` (judges of record: rubrics,
pinned settings, verified structured verdicts, cache), `offline_judge` (the `rhlab/topic-screen` provider, not a
judge of record), `calibrate` (calibration with decoys; records per judge and rubric version), `scoring` (rates,
SE, MGS over the measured evals), `suite` (build and run a suite, resume), `cli`. Scripted mockllm models and judges
for offline tests live in `tests/scripted_models.py`.
"""

from __future__ import annotations

from typing import Any

__all__ = ["run_suite", "build_tasks", "calibrate_judge", "inspect_model_args"]


def __getattr__(name: str) -> Any:
    if name in ("run_suite", "build_tasks", "inspect_model_args"):
        from rhlab.evals import suite

        return getattr(suite, name)
    if name == "calibrate_judge":
        from rhlab.evals.calibrate import calibrate_judge

        return calibrate_judge
    raise AttributeError(name)
