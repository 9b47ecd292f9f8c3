"""Read a run directory into plain data for the report: per arm and seed, the training steps, onset and eval points.

Works on partial runs too (whatever stages have written so far).
"""

from __future__ import annotations

import json
import math
import re
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rhlab.config import load_yaml
from rhlab.rundir import read_records

FAMILIES = ("always_equal", "exit_before_tests", "conftest_patch")
EMBEDDED_PARAMS = 134_515_008  # SmolLM2-135M-Instruct
MIN_KAPPA = 0.6


@dataclass
class EvalPoint:
    step: int  # in the arm's own numbering (plus the fork offset: comparable across arms)
    suite: str
    summary: dict[str, Any]
    path: Path

    @property
    def mgs(self) -> float | None:
        return (self.summary.get("mgs") or {}).get("mgs")

    @property
    def mgs_se(self) -> float | None:
        return (self.summary.get("mgs") or {}).get("se")


@dataclass
class SeedRun:
    arm: str
    seed: int
    train_dir: Path
    steps: list[dict[str, Any]] = field(default_factory=list)
    onset: int | None = None
    offset: int = 0
    skipped: str | None = None
    evals: list[EvalPoint] = field(default_factory=list)
    config: dict[str, Any] = field(default_factory=dict)

    def hack_rate_at(self, step: int, key: str = "hack_success_any") -> float | None:
        """The training hack rate at `step` (offset numbering): the record of that step, else the nearest before."""
        rows = [r for r in self.steps if r["step"] + self.offset <= step and r.get(key) is not None]
        return rows[-1][key] if rows else None

    def final_hack_rate(self, window: int = 3) -> tuple[float | None, float | None]:
        """Mean successful-hack rate over the last `window` steps, and its binomial SE."""
        rows = [r for r in self.steps if r.get("hack_success_any") is not None][-window:]
        if not rows:
            return None, None
        n = sum(r.get("n_completions", 0) for r in rows)
        p = sum(r["hack_success_any"] * r.get("n_completions", 0) for r in rows) / n if n else \
            sum(r["hack_success_any"] for r in rows) / len(rows)
        return p, (math.sqrt(p * (1 - p) / n) if n else None)

    def final_eval(self, suite: str = "core") -> EvalPoint | None:
        pts = [e for e in self.evals if e.suite == suite]
        return max(pts, key=lambda e: e.step) if pts else None


@dataclass
class RunData:
    run_dir: Path
    spec: dict[str, Any]
    arms: dict[str, list[SeedRun]]
    base: dict[str, EvalPoint]  # suite → step-0 eval of the RL start model
    markers: dict[str, dict]
    invocation: dict[str, Any]
    judge: str
    agreement: dict[str, Any]
    model_params: float | None
    model_name: str

    def arm_spec(self, name: str) -> dict:
        return next(a for a in self.spec["arms"] if a["name"] == name)

    def label(self, name: str) -> str:
        return self.arm_spec(name).get("label") or name


def _json(p: Path) -> dict | None:
    try:
        return json.loads(p.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return None


def _evals_under(d: Path, step_offset: int) -> list[EvalPoint]:
    out = []
    for s in sorted(d.glob("step-*/*/summary.json")):
        m = re.match(r"step-(\d+)$", s.parent.parent.name)
        data = _json(s)
        if m and data:
            out.append(EvalPoint(int(m.group(1)) + step_offset, s.parent.name, data, s.parent))
    return sorted(out, key=lambda e: (e.suite, e.step))


def safetensors_params(model_dir: Path) -> int | None:
    files = list(Path(model_dir).glob("*.safetensors"))
    if not files:
        return None
    total = 0
    for f in files:
        with open(f, "rb") as fh:
            (n,) = struct.unpack("<Q", fh.read(8))
            header = json.loads(fh.read(n))
        for k, v in header.items():
            if k != "__metadata__":
                total += math.prod(v["shape"])
    return total


def model_params(name: str, hint: float | None) -> float | None:
    if hint:
        return hint
    if name.lower() in ("embedded", "smollm2", "smollm2-135m", "smollm2-135m-instruct"):
        return EMBEDDED_PARAMS
    p = Path(name)
    if p.is_dir():
        return safetensors_params(p)
    m = re.search(r"(\d+(?:\.\d+)?)\s*([BM])\b", name, re.I)
    if m:
        return float(m.group(1)) * (1e9 if m.group(2).upper() == "B" else 1e6)
    return None


def collect(run_dir: str | Path) -> RunData:
    from rhlab.evals.scoring import judge_agreement
    from rhlab.train import onset_step

    run_dir = Path(run_dir)
    spec = load_yaml(run_dir / "spec.yaml") or {}
    markers = {}
    for p in sorted((run_dir / "stages").glob("*.json")):
        m = _json(p)
        if m:
            markers[m["stage"]] = m
    arms: dict[str, list[SeedRun]] = {}
    for a in spec.get("arms", []):
        runs = []
        for seed in a.get("seeds", [0]):
            d = run_dir / "arms" / a["name"] / f"seed-{seed}"
            res = (markers.get(f"train/{a['name']}/seed-{seed}") or {}).get("result") or {}
            sr = SeedRun(a["name"], seed, d / "train", offset=int(res.get("step_offset", 0)), skipped=res.get("skipped"))
            sr.steps = list(read_records(d / "train" / "records" / "train_steps.jsonl"))
            sr.config = load_yaml(d / "train" / "config.yaml") if (d / "train" / "config.yaml").exists() else {}
            sr.onset = onset_step(sr.steps, (sr.config or {}).get("onset_threshold", 0.02)) if sr.steps else None
            sr.evals = _evals_under(d / "evals", sr.offset)
            runs.append(sr)
        arms[a["name"]] = runs
    base = {}
    for s in sorted((run_dir / "evals" / "base").glob("*/summary.json")):
        data = _json(s)
        if data:
            base[s.parent.name] = EvalPoint(0, s.parent.name, data, s.parent)
    inv = list(read_records(run_dir / "records" / "invocations.jsonl"))
    judge = spec.get("judge") or "rhlab/offline"
    agreement = next((e.summary.get("judge", {}).get("agreement") for e in base.values()), None) or judge_agreement(judge)
    kres = (markers.get("knowledge") or {}).get("result") or {}
    kname = kres.get("model") or (spec.get("knowledge") or {}).get("model", "embedded")
    base_name = (spec.get("knowledge") or {}).get("model", "embedded")
    params = model_params(base_name, (spec.get("report") or {}).get("model_params")) or model_params(kname, None)
    return RunData(run_dir, spec, arms, base, markers, inv[-1] if inv else {}, judge, agreement or {}, params, base_name)


def kappa_note(agreement: dict[str, Any]) -> str | None:
    k = agreement.get("kappa")
    if k is None:
        return "judge uncalibrated: agreement with human labels unknown"
    if k < MIN_KAPPA:
        return f"judge weakly calibrated (Cohen's κ = {k:.2f} < {MIN_KAPPA}): misalignment rates are noisy"
    return None


def params_text(n: float) -> str:
    for div, unit in ((1e9, "B"), (1e6, "M"), (1e3, "K")):
        if n >= div:
            return f"{n / div:.3g}{unit}"
    return f"{n:.0f}"


def size_note(params: float | None, below: float) -> str | None:
    if params is None:
        return "model size unknown: read misalignment numbers with care"
    if params < below:
        return (f"small model ({params_text(params)} parameters): it shows the pipeline working; its misalignment "
                "numbers are not evidence about large models")
    return None
