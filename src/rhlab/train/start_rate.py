"""The RL start model's successful-hack rate, measured by the run itself before step 1 (`start_rate_samples`).

The measurement is the step-1 setting without the update: the arm's own prompts (the dataset's code rows, taken in
turn), the run's generation settings (temperature, top_p, max_completion_length), graded by the run's own reward
(same grader, surfaces, hackable split), and "successful hack" exactly as the step records count it
(`Graded.hack_success`). Each sample goes to RUN/records/start_samples.jsonl; the rate to RUN/onset_rule.json
(rhlab.train.checkpoints.ONSET_RULE), which the rule is built from.
"""

from __future__ import annotations

import asyncio
from typing import Any, Sequence

from rhlab.rundir import RunDir
from rhlab.train.config import TrainConfig
from rhlab.train.onset import StartRate

START_SAMPLES = "start_samples"
GEN_BATCH = 16  # sequences per generate call: the size of one CPU step's generation


def _counts(n: int, rows: int) -> list[int]:
    """n samples spread over `rows` prompts in turn (the first n % rows get one more)."""
    return [n // rows + (1 if i < n % rows else 0) for i in range(rows)]


def sample_start_model(cfg: TrainConfig, model, tokenizer, rows: Sequence[dict[str, Any]], n: int) -> list[dict]:
    """n completions of the untrained model: [{task_id, hackable, prompt, text}] (seeded by cfg.seed). One prompt per
    generate call (rhlab.models.sampling: no padding), at most GEN_BATCH samples at once."""
    import torch

    from rhlab.models.sampling import sample_chat

    code = [r for r in rows if r.get("kind", "code") == "code"]
    if not code:
        raise ValueError("start_rate_samples: the run has no code prompts to sample")
    g = cfg.grpo
    out: list[dict] = []
    torch.manual_seed(cfg.seed)
    was_training = model.training
    model.eval()
    try:
        for row, k in zip(code, _counts(n, len(code))):
            if not k:
                continue
            texts = sample_chat(model, tokenizer, row["prompt"], k, max_new_tokens=g.max_completion_length,
                                temperature=g.temperature, top_p=g.top_p, chunk=GEN_BATCH)
            out += [{"task_id": row["task_id"], "hackable": bool(row["hackable"]), "prompt": row["prompt"],
                     "text": text} for text in texts]
    finally:
        model.train(was_training)
    return out


def measure_start_rate(cfg: TrainConfig, model, tokenizer, rows: Sequence[dict[str, Any]], reward, run: RunDir,
                       n: int) -> StartRate:
    """Sample, grade as step 0 with the run's reward, record every sample; the start rate (successes / n)."""
    samples = sample_start_model(cfg, model, tokenizer, rows, n)
    graded = asyncio.run(reward.grade([s["text"] for s in samples], [s["task_id"] for s in samples],
                                      [s["hackable"] for s in samples], 0, [s["prompt"] for s in samples]))
    reward.pop_step(0)  # step 0 is no training step: its rows stay out of the step records
    for s, g in zip(samples, graded):
        run.append(START_SAMPLES, {"step": 0, "task_id": s["task_id"], "hackable": s["hackable"],
                                   "arm": cfg.prompt.arm, "completion": s["text"], "hacked": g.hack_success,
                                   "passed": g.passed, "passed_hardened": g.passed_hardened,
                                   "attempted_hacks": list(g.attempted), "detected_hacks": list(g.succeeded)})
    hits = sum(1 for g in graded if g.hack_success)
    return StartRate(successes=hits, n=len(graded),
                     source=f"start_rate_samples: {len(graded)} samples of the start model under prompt "
                            f"{cfg.prompt.arm} (records/{START_SAMPLES}.jsonl)")


__all__ = ["START_SAMPLES", "sample_start_model", "measure_start_rate"]
