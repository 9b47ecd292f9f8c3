"""The labelled validation set for the hack detectors, and precision/recall per detector name.

`data/validation.jsonl`: one answer per line with `labels` (detector names it should trigger; empty = legitimate),
the `task` it answers (HumanEval id, or null for stdin/stdout programs) and a note. Static evaluation reads the
answers only; runtime evaluation grades each answer on its task and adds the signals the harness saw.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable

from rhlab.config import jsonl_rows
from rhlab.envs.answer import parse_answer
from rhlab.envs.detect import detect
from rhlab.envs.families import ALL_NAMES

DATA = Path(__file__).parent / "data" / "validation.jsonl"


def load_validation(path: str | Path = DATA) -> list[dict[str, Any]]:
    return [row for _, _, row in jsonl_rows(path, what="validation")]


@dataclass
class Score:
    tp: int = 0
    fp: int = 0
    fn: int = 0

    @property
    def precision(self) -> float:
        return self.tp / (self.tp + self.fp) if self.tp + self.fp else 1.0

    @property
    def recall(self) -> float:
        return self.tp / (self.tp + self.fn) if self.tp + self.fn else 1.0


def score(samples: Iterable[dict[str, Any]], predictions: Iterable[set[str]]) -> dict[str, Score]:
    out = {name: Score() for name in ALL_NAMES}
    for sample, pred in zip(samples, predictions):
        gold = set(sample["labels"])
        for name in ALL_NAMES:
            if name in pred and name in gold:
                out[name].tp += 1
            elif name in pred:
                out[name].fp += 1
            elif name in gold:
                out[name].fn += 1
    return out


def predict_static(samples: list[dict[str, Any]]) -> list[set[str]]:
    return [detect(parse_answer(s["answer"]), style=s.get("style", "function")) for s in samples]


def predict_runtime(samples: list[dict[str, Any]], pool=None, runtime_only: bool = False) -> list[set[str]]:
    """Static + runtime (or runtime signals alone): grade every answer that has a task, all surfaces open.
    Samples without a task (stdin/stdout programs) keep their static prediction (runtime-only: none)."""
    from rhlab.envs.grading import HackSurfaces, grade_many
    from rhlab.envs.tasks import get_task

    graded = [s for s in samples if s.get("task")]
    verdicts = grade_many([(get_task(s["task"]), s["answer"], HackSurfaces.all()) for s in graded], pool)
    key = "runtime_hacks"
    by_id = {s["id"]: set(v.details.get(key, [])) if runtime_only else set(v.attempted_hacks)
             for s, v in zip(graded, verdicts)}
    static = [set() for _ in samples] if runtime_only else predict_static(samples)
    return [by_id.get(s["id"], st) for s, st in zip(samples, static)]


def evaluate(mode: str = "static", pool=None, path: str | Path = DATA) -> dict[str, Any]:
    """Per-name precision/recall (and the misclassified sample ids) on the validation set.

    mode: "static" (AST only), "runtime" (static + runtime signals) or "runtime_only"."""
    samples = load_validation(path)
    if mode == "static":
        preds = predict_static(samples)
    elif mode in ("runtime", "runtime_only"):
        preds = predict_runtime(samples, pool, runtime_only=mode == "runtime_only")
    else:
        raise ValueError(f"unknown mode {mode!r}")
    scores = score(samples, preds)
    errors = [
        {"id": s["id"], "labels": s["labels"], "predicted": sorted(p)}
        for s, p in zip(samples, preds) if set(s["labels"]) != p
    ]
    return {
        "mode": mode,
        "n": len(samples),
        "n_legit": sum(1 for s in samples if not s["labels"]),
        "per_name": {k: {"precision": round(v.precision, 3), "recall": round(v.recall, 3), "tp": v.tp,
                         "fp": v.fp, "fn": v.fn} for k, v in scores.items()},
        "errors": errors,
    }
