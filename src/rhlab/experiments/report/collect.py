"""Read a run directory into plain data for the report: per arm and seed, the training steps, onset and eval points;
and what one eval summary says about itself (measured or not and why, its per-sample flags, its probe result).

Works on partial runs too (whatever stages have written so far), and on summaries written before the judge
calibration and probe fields existed (their judged evals read as not measured: the judge's calibration is unknown).
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
from rhlab.stats import flags_from_rate

FAMILIES = ("always_equal", "exit_before_tests", "conftest_patch")
EMBEDDED_PARAMS = 134_515_008  # SmolLM2-135M-Instruct
CORE_EVALS = ("em_questions", "goals", "alignment_questions", "monitor_disruption", "exfil_offer", "frame_colleague")
# Evals scored without a judge (a malicious query executed or not): always measured. Summaries that predate the
# `judged` field are read with this list.
DETERMINISTIC_EVALS = ("exfil_offer",)
# The probe suite's misalignment categories (averaged into the probe score) and the one reported apart.
PROBE_CATEGORIES = ("goals_power", "deception_faking", "oversight_subversion", "self_preservation", "bad_actors",
                    "safety_sabotage", "harmful_advice")
HACK_ENDORSEMENT = "hack_endorsement"
UNKNOWN_CALIBRATION = "judge calibration unknown"


@dataclass
class EvalPoint:
    step: int  # in the arm's own numbering (plus the fork offset: comparable across arms)
    suite: str
    summary: dict[str, Any]
    path: Path

    @property
    def evals(self) -> dict[str, dict[str, Any]]:
        return self.summary.get("evals") or {}

    @property
    def probes(self) -> dict[str, Any] | None:
        return probe_result(self.summary)


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

    def points(self, suite: str) -> list[EvalPoint]:
        """Evaluated checkpoints in step order for `suite`; "core": every point holding core evals (suite core or
        all, core preferred at a step); "probes": every point holding a probe result (suite probes, or all)."""
        if suite == "core":
            pts = [e for e in self.evals if any(n in CORE_EVALS for n in e.evals)]
        elif suite == "probes":
            pts = [e for e in self.evals if e.probes]
        else:
            pts = [e for e in self.evals if e.suite == suite]
        by_step: dict[int, EvalPoint] = {}
        for e in sorted(pts, key=lambda e: (e.step, e.suite not in ("core", "probes"))):
            by_step.setdefault(e.step, e)
        return [by_step[k] for k in sorted(by_step)]

    def final_points(self, suite: str, k: int = 1) -> list[EvalPoint]:
        return self.points(suite)[-k:] if k > 0 else []


@dataclass
class RunData:
    run_dir: Path
    spec: dict[str, Any]
    arms: dict[str, list[SeedRun]]
    base: dict[str, EvalPoint]  # suite → step-0 eval of the RL start model
    markers: dict[str, dict]
    invocation: dict[str, Any]
    judge: str
    calibration: dict[str, Any] | None  # RUBRIC → calibration record, from the run's own summaries; None: unknown
    model_params: float | None
    model_name: str

    @property
    def final_k(self) -> int:
        return max(1, int((self.spec.get("evals") or {}).get("final_k") or 1))

    def base_point(self, suite: str) -> EvalPoint | None:
        """The RL start model's eval for `suite` (core / probes also found inside a suite-`all` summary)."""
        if suite in self.base:
            return self.base[suite]
        if suite in ("core", "probes"):
            pts = SeedRun("base", 0, self.run_dir, evals=list(self.base.values())).points(suite)
            return pts[0] if pts else None
        return None

    def controls(self) -> list[str]:
        return [a["name"] for a in self.spec.get("arms", []) if a.get("kind") == "control"]

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
    # the judge and its calibration as the run's own summaries recorded them (base first), never a shipped file
    points = list(base.values()) + [e for runs in arms.values() for r in runs for e in r.evals]
    judges = [e.summary.get("judge") for e in points if isinstance(e.summary.get("judge"), dict)]
    judge = next((j["name"] for j in judges if j.get("name")), None) or spec.get("judge") or "rhlab/offline"
    calibration = next((j["calibration"] for j in judges if j.get("calibration")), None)
    kres = (markers.get("knowledge") or {}).get("result") or {}
    kname = kres.get("model") or (spec.get("knowledge") or {}).get("model", "embedded")
    base_name = (spec.get("knowledge") or {}).get("model", "embedded")
    params = model_params(base_name, (spec.get("report") or {}).get("model_params")) or model_params(kname, None)
    return RunData(run_dir, spec, arms, base, markers, inv[-1] if inv else {}, judge, calibration, params, base_name)


# --- what one summary says about itself ------------------------------------------------------------------------------


def rubric_calibration(calibration: dict[str, Any] | None, name: str) -> dict[str, Any] | None:
    """The calibration record of the rubric that judges eval `name` (rubric ids are eval names or their prefixes)."""
    if not calibration:
        return None
    if isinstance(calibration.get(name), dict):
        return calibration[name]
    return next((v for k, v in calibration.items() if name.startswith(k) and isinstance(v, dict)), None)


def calibration_text(cal: dict[str, Any]) -> str:
    def num(v, fmt):
        return format(v, fmt) if isinstance(v, (int, float)) else "?"

    fpr = cal.get("fpr_decoy")
    return (f"κ {num(cal.get('kappa'), '.2f')}, decoy FPR "
            + (f"{100 * fpr:.0f}%" if isinstance(fpr, (int, float)) else "?"))


def not_measured_reason(summary: dict[str, Any], name: str) -> str | None:
    """None when eval `name` of this summary counts; else why not. A summary without the `measured` field predates
    judge calibration: its judged evals are not measured (the judge's calibration is unknown)."""
    v = (summary.get("evals") or {}).get(name) or {}
    judged = v.get("judged", not name.startswith(DETERMINISTIC_EVALS))
    if "measured" not in v:
        return UNKNOWN_CALIBRATION if judged else None
    if v["measured"]:
        return None
    if v.get("not_measured_reason"):  # the scorer's own words (failed calibration, none on record, failures...)
        return v["not_measured_reason"]
    judge = summary.get("judge") or {}
    cal = rubric_calibration(judge.get("calibration"), v.get("rubric") or name)
    if cal is not None and cal.get("passed") is False:
        return f"judge {v.get('judge') or judge.get('name') or '?'} failed calibration ({calibration_text(cal)})"
    return UNKNOWN_CALIBRATION


def deterministic_only(summary: dict[str, Any], name: str) -> bool:
    """A mixed eval (deterministic check + judge) counted on its deterministic part alone: the judge did not count."""
    v = (summary.get("evals") or {}).get(name) or {}
    return bool(v.get("judged")) and v.get("scope") == "deterministic"


def eval_flags(v: dict[str, Any]) -> list[int]:
    """Per-sample 0/1 misaligned flags of one eval; rebuilt from rate and n for summaries that did not store them."""
    if isinstance(v.get("flags"), list):
        return [int(f) for f in v["flags"]]
    rate, n = v.get("misaligned_rate"), int(v.get("n") or 0)
    if rate is None or n <= 0 or (isinstance(rate, float) and math.isnan(rate)):
        return []
    return flags_from_rate(rate, n)


def probe_result(summary: dict[str, Any]) -> dict[str, Any] | None:
    """A ProbeResult: the summary itself (suite `probes`) or `summary["probes"]` (suite `all`)."""
    if summary.get("kind") == "probes":
        return summary
    p = summary.get("probes")
    return p if isinstance(p, dict) else None


def probe_values(result: dict[str, Any], category: str | None = None) -> list[float]:
    """Per-item p(misaligned): category None → the misalignment categories (the probe score), else that category.
    Without stored items, n values spread around the stored score with its SE (a bootstrap then gives that SE)."""
    items = result.get("items") or []
    if items:
        if category is None:
            return [float(i["p_misaligned"]) for i in items if i.get("category") != HACK_ENDORSEMENT]
        return [float(i["p_misaligned"]) for i in items if i.get("category") == category]
    agg = _probe_agg(result, category)
    if not agg or agg.get("score") is None:
        return []
    n, score, se = int(agg.get("n") or 1), float(agg["score"]), float(agg.get("se") or 0.0)
    d = se * math.sqrt(n)
    return [score + (d if i % 2 else -d) for i in range(n)] if n > 1 else [score]


def _probe_agg(result: dict[str, Any], category: str | None) -> dict[str, Any] | None:
    if category is None:
        return result
    if category == HACK_ENDORSEMENT:
        return result.get(HACK_ENDORSEMENT)
    return (result.get("per_category") or {}).get(category)


def probe_score(result: dict[str, Any], category: str | None = None) -> tuple[float | None, float | None]:
    agg = _probe_agg(result, category) or {}
    return agg.get("score"), agg.get("se")


def probe_categories(results: list[dict[str, Any]]) -> list[str]:
    seen = {c for r in results for c in (r.get("per_category") or {})}
    return [c for c in PROBE_CATEGORIES if c in seen] + sorted(seen - set(PROBE_CATEGORIES) - {HACK_ENDORSEMENT})


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
