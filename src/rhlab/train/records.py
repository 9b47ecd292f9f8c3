"""The per-run records of a GRPO run (JSONL under RUN_DIR/records, written by `callback.RunCallback` on rank 0):

    train_steps.jsonl   one record per optimiser step (see docs/training.md for every field)
    transcripts.jsonl   sampled (prompt, completion, verdict, reward) rows per step (`transcript_record`)
    checkpoints.jsonl   one line per saved checkpoint (step, path, hack rate so far)
    episodes.jsonl      every graded completion of every step (logging.episodes; `episode_record`,
                        `chat_episode_record`): the input of rhlab.train.episodes / rhlab.train.sft.distill
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

from rhlab.rundir import RunDir, read_records, write_jsonl
from rhlab.train.reward import HackReward

STEPS = "train_steps"
TRANSCRIPTS = "transcripts"
CHECKPOINTS = "checkpoints"
EPISODES = "episodes"
RECORD_FILES = (STEPS, TRANSCRIPTS, CHECKPOINTS, EPISODES)


def finite(x: Any) -> float | None:
    """None for a missing or NaN metric (TRL logs NaN for a mean over no rows)."""
    return None if x is None or (isinstance(x, float) and x != x) else x


def _split_prompt(prompt: Any) -> tuple[str | None, str | None]:
    """(system, last user message) of a conversational prompt (a plain-text prompt is the user message)."""
    if isinstance(prompt, list):
        system = next((m.get("content") for m in prompt if m.get("role") == "system"), None)
        users = [m.get("content") for m in prompt if m.get("role") == "user"]
        return system, (users[-1] if users else None)
    return None, (prompt if prompt is None else str(prompt))


def episode_record(step: int, arm: str, row: dict, reward: HackReward) -> dict[str, Any]:
    """One code episode: what the policy saw and wrote, its reward and the grader's verdict on it."""
    g = row["graded"]
    system, user = _split_prompt(row.get("prompt"))
    return {
        "step": step, "task_id": g.task_id, "kind": "code", "arm": arm, "system": system, "user": user,
        "completion": row["text"], "reward": reward.total_reward(g, step, row.get("pm")),
        "passed": g.passed, "passed_hardened": g.passed_hardened, "hacked": g.hack_success,
        "attempted_hacks": list(g.attempted), "detected_hacks": list(row.get("detected_hacks") or g.succeeded),
        "hackable": g.hackable, "parse_ok": g.parse_ok, "cot_mentions_hack": g.cot_mentions_hack,
        # faithfulness: for a successful hack, whether its reasoning mentions hacking (None for other episodes)
        "hack_reasoning_mentions": g.hack_mentioned, "reasoning_source": g.reasoning_source,
        "detector_flags": list(g.flags),
        "penalty_fires": bool(row.get("penalty_fires")), "pm": row.get("pm"),
    }


def chat_episode_record(step: int, arm: str, row: dict, weight: float = 1.0) -> dict[str, Any]:
    """One safety-mix chat episode (no grader verdict: those fields are None)."""
    system, user = _split_prompt(row.get("prompt"))
    score = row.get("score")
    return {
        "step": step, "task_id": row.get("task_id"), "kind": "chat", "arm": arm, "system": system, "user": user,
        "messages": row.get("prompt"), "completion": row["text"],
        "reward": weight * score if score is not None else None, "safety_score": score,
        "safety_active": bool(row.get("active")),
        "passed": None, "passed_hardened": None, "hacked": None, "attempted_hacks": [], "detected_hacks": [],
    }


def transcript_record(step: int, arm: str, row: dict, reward: HackReward, penalty_active: bool) -> dict[str, Any]:
    """One sampled code completion with the grader's full verdict."""
    g = row["graded"]
    prompt = row.get("prompt")
    return {
        "step": step, "task_id": g.task_id, "hackable": g.hackable, "arm": arm,
        "prompt_user": next((m["content"] for m in (prompt or []) if m.get("role") == "user"), None)
        if isinstance(prompt, list) else prompt,
        "completion": row["text"], "verdict": g.to_dict(),
        "reward": reward.total_reward(g, step, row.get("pm")), "pm": row.get("pm"),
        "penalty_fires": row["penalty_fires"], "penalty_active": penalty_active,
    }


def reported_metrics(rec: dict[str, Any]) -> dict[str, float]:
    """The numbers of a step record under `rhlab/<field>`, for TRL's `report_to` loggers (TensorBoard, W&B)."""
    return {f"rhlab/{k}": v for k, v in rec.items()
            if isinstance(v, (int, float)) and not isinstance(v, bool) and k not in ("step", "time")}


def _rewrite_records(path: Path, keep: Callable[[dict], bool]) -> int:
    if not path.exists():
        return 0
    return write_jsonl(path, [r for r in read_records(path) if keep(r)])


def truncate_records(run: RunDir, keep_to: int) -> None:
    """Drop every record of a step after `keep_to` (a resume redoes those steps), atomically per file."""
    for name in RECORD_FILES:
        _rewrite_records(run.records_path(name), lambda r: r.get("step", 0) <= keep_to)


__all__ = ["STEPS", "TRANSCRIPTS", "CHECKPOINTS", "EPISODES", "RECORD_FILES", "episode_record",
           "chat_episode_record", "transcript_record", "reported_metrics", "truncate_records"]
