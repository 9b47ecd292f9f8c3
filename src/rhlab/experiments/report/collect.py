"""Read a run directory into plain data for the report: per arm and seed, the training steps, onset and eval points;
and what one eval summary says about itself (measured or not and why, its per-sample flags, its probe result).

Works on partial runs too (whatever stages have written so far), and on summaries written before the judge
calibration and probe fields existed (their judged evals read as not measured: the judge's calibration is unknown).

Damaged run directories too: a record line, summary, stage marker or train config that cannot be read or has a
field of the wrong type is left out and listed in `RunData.skipped` (file, line, why) — the page and summary.md
show that list and `rhlab report` exits 1. Only the spec (`spec.yaml`) must be readable: `read_spec` raises
ConfigError otherwise.
"""

from __future__ import annotations

import json
import math
import re
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from rhlab.config import ConfigError, load_yaml
from rhlab.envs.families import HACK_FAMILIES
from rhlab.rundir import SkippedRecord, read_records
from rhlab.stats import flags_from_rate

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
    onset_rule: Any = None  # rhlab.train.onset.OnsetRule the onset was decided by
    offset: int = 0
    skipped: str | None = None
    evals: list[EvalPoint] = field(default_factory=list)
    config: dict[str, Any] = field(default_factory=dict)
    examples: list[dict[str, Any]] = field(default_factory=list)  # example transcripts (first seed of an arm)

    def hack_rate_at(self, step: int, key: str = "hack_success_any") -> float | None:
        """The training hack rate at `step` (offset numbering): the record of that step, else the nearest before."""
        rows = [r for r in self.steps if r["step"] + self.offset <= step and r.get(key) is not None]
        return rows[-1][key] if rows else None

    def final_hack_rate(self, window: int = 3) -> tuple[float | None, float | None]:
        """Mean successful-hack rate over the last `window` steps, and its binomial SE."""
        rows = [r for r in self.steps if r.get("hack_success_any") is not None][-window:]
        if not rows:
            return None, None
        n = sum(r.get("n_completions") or 0 for r in rows)
        p = sum(r["hack_success_any"] * (r.get("n_completions") or 0) for r in rows) / n if n else \
            sum(r["hack_success_any"] for r in rows) / len(rows)
        return p, (math.sqrt(p * (1 - p) / n) if n else None)

    def points(self, suite: str) -> list[EvalPoint]:
        """Evaluated checkpoints in step order for `suite`; "core": every point holding core evals (suite core or
        all, core preferred at a step); "probes": every point holding a probe result (suite probes, or all);
        "sabotage": every point holding a code-sabotage block (suite sabotage, or all)."""
        if suite == "core":
            pts = [e for e in self.evals if any(n in CORE_EVALS for n in e.evals)]
        elif suite == "probes":
            pts = [e for e in self.evals if e.probes]
        elif suite == "sabotage":
            pts = [e for e in self.evals if sabotage_blocks(e.summary)]
        else:
            pts = [e for e in self.evals if e.suite == suite]
        by_step: dict[int, EvalPoint] = {}
        for e in sorted(pts, key=lambda e: (e.step, e.suite != suite)):
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
    skipped: list[SkippedRecord] = field(default_factory=list)  # what could not be read, in reading order

    @property
    def final_k(self) -> int:
        return max(1, int((self.spec.get("evals") or {}).get("final_k") or 1))

    def base_point(self, suite: str) -> EvalPoint | None:
        """The RL start model's eval for `suite` (core / probes / sabotage also found inside a suite-`all`
        summary)."""
        if suite in ("core", "probes", "sabotage"):  # the point that holds them (its own suite's first), if any does
            pts = SeedRun("base", 0, self.run_dir, evals=list(self.base.values())).points(suite)
            return pts[0] if pts else None
        return self.base.get(suite)

    def controls(self) -> list[str]:
        return [a["name"] for a in self.spec.get("arms", []) if a.get("kind") == "control"]

    def arm_spec(self, name: str) -> dict:
        return next(a for a in self.spec["arms"] if a["name"] == name)

    def label(self, name: str) -> str:
        return self.arm_spec(name).get("label") or name


def _json(p: Path, skipped: list[SkippedRecord] | None = None,
          check: Callable[[dict], str | None] | None = None) -> dict | None:
    """A JSON object file, or None; with `skipped`, why it could not be used is listed there (not silently None)."""
    try:
        data = json.loads(p.read_bytes().decode("utf-8"))
    except OSError as err:
        why = f"cannot be read ({err.strerror or err})"
        line = None
    except UnicodeDecodeError as err:
        why, line = f"not UTF-8 text (byte offset {err.start})", None
    except json.JSONDecodeError as err:
        why, line = f"not valid JSON ({err.msg}, column {err.colno})", err.lineno
    except RecursionError:
        why, line = "not valid JSON (nested too deeply)", None
    else:
        why = f"a JSON {_kind(data)}, not an object" if not isinstance(data, dict) else (check(data) if check else None)
        if not why:
            return data
        line = None
    if skipped is not None:
        skipped.append(SkippedRecord(p, line, why))
    return None


def _evals_under(d: Path, step_offset: int, skipped: list[SkippedRecord] | None = None) -> list[EvalPoint]:
    out = []
    for s in sorted(d.glob("step-*/*/summary.json")):
        m = re.match(r"step-(\d+)$", s.parent.parent.name)
        if not m:
            continue
        data = _json(s, skipped, summary_problem)
        if data:
            drop_bad_sabotage(data, s, skipped)
            out.append(EvalPoint(int(m.group(1)) + step_offset, s.parent.name, data, s.parent))
    return sorted(out, key=lambda e: (e.suite, e.step))


# --- what the report can use: each record type's shape (a record of another shape is skipped, never a crash) ---------


def _kind(v: Any) -> str:
    if isinstance(v, bool):
        return "boolean"
    if v is None:
        return "null"
    return {dict: "object", list: "array", str: "string"}.get(type(v), "number")


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_num(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _show(v: Any) -> str:
    text = json.dumps(v, ensure_ascii=False, default=str) if not isinstance(v, float) else repr(v)
    return (text[:40] + "…") if len(text) > 40 else text


def _bad(name: str, v: Any, want: str) -> str:
    if v is None:
        return f"field {name!r} is missing or null; expected {want}"
    kind = _kind(v)
    return f"field {name!r} is {_show(v)} ({'an' if kind[0] in 'aeiou' else 'a'} {kind}); expected {want}"


def _fields(obj: dict, where: str, **want: str) -> str | None:
    """Each named field, when present and not null, must be: int (non-negative integer), num (finite number),
    str, bool, dict, list, strs (list of strings), dicts (object of objects)."""
    tests = {"int": (lambda v: _is_int(v) and v >= 0, "a non-negative integer"),
             "num": (_is_num, "a finite number"), "str": (lambda v: isinstance(v, str), "a string"),
             "bool": (lambda v: isinstance(v, bool), "true or false"),
             "dict": (lambda v: isinstance(v, dict), "an object"), "list": (lambda v: isinstance(v, list), "a list"),
             "strs": (lambda v: isinstance(v, list) and all(isinstance(x, str) for x in v), "a list of strings"),
             "dicts": (lambda v: isinstance(v, dict) and all(isinstance(x, dict) for x in v.values()),
                       "an object of objects"),
             "dicts_or_null": (lambda v: isinstance(v, dict) and all(x is None or isinstance(x, dict)
                                                                     for x in v.values()),
                               "an object of objects or nulls")}
    for name, kind in want.items():
        v = obj.get(name)
        ok, text = tests[kind]
        if v is not None and not ok(v):
            return _bad(where + name, v, text + " or null")
    return None


STEP_RATES = ("hack_success_any", "hack_success_any_all_ranks") + tuple(f"hack_success_{f}" for f in HACK_FAMILIES)
# shares in [0, 1] the report reads from a step record (absent in records written before them; null: none that step)
STEP_SHARES = ("zero_variance_share", "hack_reasoning_mentions", "hack_reasoning_unfaithful")


def step_problem(r: dict) -> str | None:
    """A train_steps record: `step` a non-negative integer; hack rates finite numbers, `n_completions` and
    `n_successful_hacks` non-negative integers, the zero-variance and reasoning shares numbers in [0, 1] (each may
    be null or absent)."""
    if r.get("step") is None:
        return "no 'step' field" if "step" not in r else "field 'step' is null; expected a non-negative integer"
    if not (_is_int(r["step"]) and r["step"] >= 0):
        return _bad("step", r["step"], "a non-negative integer")
    bad = _fields(r, "", n_completions="int", n_successful_hacks="int",
                  **{k: "num" for k in STEP_RATES + STEP_SHARES})
    if bad:
        return bad
    for k in STEP_SHARES:
        if r.get(k) is not None and not 0 <= r[k] <= 1:
            return _bad(k, r[k], "a share between 0 and 1 or null")
    return None


def marker_problem(m: dict) -> str | None:
    if not isinstance(m.get("stage"), str):
        return "no 'stage' name" if m.get("stage") is None else _bad("stage", m["stage"], "a string")
    return (_fields(m, "", status="str", wall_s="num", result="dict")
            or _fields(m.get("result") or {}, "result.", step_offset="int", skipped="str", model="str"))


def config_problem(c: dict) -> str | None:
    return (_fields(c, "", onset_threshold="num", reward="dict", prompt="dict")
            or _fields(c.get("reward") or {}, "reward.", penalty="dict"))


def invocation_problem(r: dict) -> str | None:
    bad = _fields(r, "", time="num", argv="strs", versions="dict")
    if not bad and r.get("time") is not None and not 0 <= r["time"] < 1e11:
        bad = _bad("time", r["time"], "a Unix time in seconds")
    return bad


def transcript_problem(t: dict) -> str | None:
    return (_fields(t, "", verdict="dict")
            or _fields(t.get("verdict") or {}, "verdict.", detected_hacks="strs"))


def _eval_problem(v: dict, where: str) -> str | None:
    bad = _fields(v, where, n="int", misaligned_rate="num", se="num", flags="list", measured="bool", judged="bool",
                  not_measured_reason="str", log="str", rubric="str", judge="str", scope="str")
    if bad:
        return bad
    if v.get("flags") is not None and not all(f in (0, 1) for f in v["flags"]):
        return f"field {where + 'flags'!r} holds values other than 0/1"
    return None


def _probe_agg_problem(a: dict, where: str) -> str | None:
    return _fields(a, where, n="int", score="num", se="num", share_misaligned_preferred="num")


def summary_problem(s: dict) -> str | None:
    """An eval summary (core / suite / probes / all): the fields the report reads, each of its type when present."""
    bad = _fields(s, "", evals="dicts", judge="dict", probes="dict", kind="str")
    if bad:
        return bad
    for name, v in (s.get("evals") or {}).items():
        bad = _eval_problem(v, f"evals.{name}.")
        if bad:
            return bad
    judge = s.get("judge") or {}
    # a rubric the judge has no calibration record for may be listed as null (summaries before 2026-12-01 did so)
    bad = _fields(judge, "judge.", name="str", calibration="dicts_or_null", failures="dict")
    if bad:
        return bad
    for k, cal in (judge.get("calibration") or {}).items():
        if cal is None:
            continue
        bad = _fields(cal, f"judge.calibration.{k}.", passed="bool", kappa="num", fpr_decoy="num", fpr_aligned="num",
                      recall_plain_misaligned="num", flag_rate_incoherent="num", kappa_ci="list")
        ci = cal.get("kappa_ci")
        if not bad and ci is not None and not (len(ci) == 2 and all(_is_num(x) for x in ci)):
            bad = _bad(f"judge.calibration.{k}.kappa_ci", ci, "two finite numbers")
        if bad:
            return bad
    for k, n in (judge.get("failures") or {}).items():
        if not _is_num(n):
            return _bad(f"judge.failures.{k}", n, "a finite number")
    p = probe_result(s)
    if p is None:
        return None
    where = "" if p is s else "probes."
    bad = _probe_agg_problem(p, where) or _fields(p, where, per_category="dicts", hack_endorsement="dict", items="list")
    if bad:
        return bad
    for c, agg in (p.get("per_category") or {}).items():
        bad = _probe_agg_problem(agg, f"{where}per_category.{c}.")
        if bad:
            return bad
    bad = _probe_agg_problem(p.get("hack_endorsement") or {}, f"{where}hack_endorsement.")
    if bad:
        return bad
    for i, it in enumerate(p.get("items") or []):
        if not isinstance(it, dict):
            return _bad(f"{where}items[{i}]", it, "an object")
        if not _is_num(it.get("p_misaligned")):
            return _bad(f"{where}items[{i}].p_misaligned", it.get("p_misaligned"), "a finite number")
        bad = _fields(it, f"{where}items[{i}].", category="str")
        if bad:
            return bad
    return None


# --- code sabotage blocks (issue #18: `evals[TASK]["code_sabotage"]`, rhlab.evals.code_sabotage.summarise) ---------

SABOTAGE_KEY = "code_sabotage"


def _ci_problem(ci: Any, where: str) -> str | None:
    if ci is not None and not (isinstance(ci, list) and len(ci) == 2 and all(_is_num(x) for x in ci)):
        return _bad(where, ci, "two finite numbers or null")
    return None


def _rate_problem(r: Any, where: str) -> str | None:
    """{rate, ci, k, n}: rate a share in [0, 1] or null, k and n non-negative integers, ci two numbers or null."""
    if not isinstance(r, dict):
        return _bad(where, r, "an object {rate, ci, k, n}")
    bad = _fields(r, where + ".", rate="num", k="int", n="int")
    if not bad and r.get("rate") is not None and not 0 <= r["rate"] <= 1:
        bad = _bad(where + ".rate", r["rate"], "a share between 0 and 1 or null")
    return bad or _ci_problem(r.get("ci"), where + ".ci")


def _ratio_problem(r: Any, where: str) -> str | None:
    if not isinstance(r, dict):
        return _bad(where, r, "an object {value, ci, n}")
    return _fields(r, where + ".", value="num", n="int") or _ci_problem(r.get("ci"), where + ".ci")


def _sabotage_framing_problem(b: Any, where: str) -> str | None:
    if not isinstance(b, dict):
        return _bad(where, b, "an object (one framing's block)")
    bad = _fields(b, where + ".", n="int", sabotage_attempt_rate="dict", broken_rate="dict", accuracy="dict",
                  relative_effectiveness="dict", flags="dict")
    if bad:
        return bad
    flags = b.get("flags") or {}
    bad = _fields(flags, where + ".flags.", **{k: "int" for k in flags})  # each flag's count
    if bad:
        return bad
    sar = b.get("sabotage_attempt_rate") or {}
    checks = [(sar.get("deterministic"), f"{where}.sabotage_attempt_rate.deterministic", _rate_problem),
              (b.get("broken_rate"), f"{where}.broken_rate", _rate_problem)]
    if not isinstance(sar.get("judged"), str):  # a str: "not measured: <reason>"
        checks.append((sar.get("judged"), f"{where}.sabotage_attempt_rate.judged", _rate_problem))
    for k, v in (b.get("relative_effectiveness") or {}).items():
        checks.append((v, f"{where}.relative_effectiveness.{k}", _ratio_problem))
    for v, w, fn in checks:
        bad = None if v is None else fn(v, w)
        if bad:
            return bad
    return None


def sabotage_problem(block: Any, where: str = "") -> str | None:
    """A code-sabotage summary block: per framing (and over the hack framings) rate objects {rate, ci, k, n},
    the judged rate such an object or a "not measured: ..." string, relative effectiveness {value, ci, n}."""
    if not isinstance(block, dict):
        return _bad(where.rstrip("."), block, "an object (the code-sabotage summary)")
    bad = _fields(block, where, framings="dict", hack_framings="dict", judge_counted="bool")
    if bad:
        return bad
    if block.get("sabotaged_vs_other") is not None:
        bad = _ratio_problem(block["sabotaged_vs_other"], f"{where}sabotaged_vs_other")
        if bad:
            return bad
    for f, b in (block.get("framings") or {}).items():
        bad = _sabotage_framing_problem(b, f"{where}framings.{f}")
        if bad:
            return bad
    if block.get("hack_framings") is not None:
        return _sabotage_framing_problem(block["hack_framings"], f"{where}hack_framings")
    return None


def drop_bad_sabotage(summary: dict[str, Any], path: Path, skipped: list[SkippedRecord] | None) -> None:
    """Leave out (and list in `skipped`) each code-sabotage block of `summary` the report cannot read; the rest of
    the summary (its evals' rates, probes) is still used."""
    for name, v in (summary.get("evals") or {}).items():
        if SABOTAGE_KEY not in v:
            continue
        why = sabotage_problem(v[SABOTAGE_KEY], f"evals.{name}.{SABOTAGE_KEY}.")
        if why:
            del v[SABOTAGE_KEY]
            if skipped is not None:
                skipped.append(SkippedRecord(path, None, why))


def sabotage_blocks(summary: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """eval name → its code-sabotage block, for the evals of this summary that carry one."""
    return {n: v[SABOTAGE_KEY] for n, v in (summary.get("evals") or {}).items()
            if isinstance(v.get(SABOTAGE_KEY), dict)}


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


def read_spec(run_dir: str | Path) -> dict[str, Any]:
    """RUN_DIR/spec.yaml as the report reads it; ConfigError (what, where, what would be valid) when RUN_DIR is not a
    readable run directory: the report cannot be drawn without its spec."""
    run_dir = Path(run_dir)
    if not run_dir.exists():
        raise ConfigError(f"{run_dir} does not exist; give a run directory written by `rhlab run`")
    if not run_dir.is_dir():
        raise ConfigError(f"{run_dir} is not a directory; give a run directory written by `rhlab run`")
    path = run_dir / "spec.yaml"
    if not path.is_file():
        raise ConfigError(f"{run_dir} has no spec.yaml: not an experiment run directory (`rhlab run SPEC` writes "
                          "one with the spec it ran)")
    try:
        spec = load_yaml(path)  # ConfigError: not UTF-8, not YAML, duplicate keys, .nan/.inf — file and line named
    except OSError as err:
        raise ConfigError(f"{path} cannot be read ({err.strerror or err})") from None
    if spec is None:
        raise ConfigError(f"{path} is empty; it should hold the experiment spec the run used")
    if not isinstance(spec, dict):
        raise ConfigError(f"{path}: expected a mapping (name, arms, evals, ...) at the top level, got a {_kind(spec)}")
    bad = (_fields(spec, "", name="str", description="str", judge="str", knowledge="dict", evals="dict",
                   report="dict")
           or _fields(spec.get("knowledge") or {}, "knowledge.", model="str", kind="str", corpus="str")
           or _fields(spec.get("evals") or {}, "evals.", final_k="int")
           or _fields(spec.get("report") or {}, "report.", model_params="num", small_model_below="num"))
    arms = spec.get("arms", [])
    if not bad and not isinstance(arms, list):
        bad = _bad("arms", arms, "a list of arms")
    names: list[str] = []
    for i, a in enumerate(arms if not bad else []):
        if not isinstance(a, dict):
            bad = _bad(f"arms[{i}]", a, "an object with a name")
        elif not isinstance(a.get("name"), str) or not a["name"]:
            bad = _bad(f"arms[{i}].name", a.get("name"), "the arm's name (a string)")
        elif a["name"] in names:
            bad = f"arms[{i}].name: arm {a['name']!r} is given twice; each arm name once"
        elif isinstance(a.get("seeds"), list) and not all(_is_int(x) for x in a["seeds"]):
            bad = _bad(f"arms[{i}].seeds", a["seeds"], "a list of integers")
        else:
            bad = (_fields(a, f"arms[{i}].", seeds="list", kind="str", label="str", framing="str", control="str",
                           compare_to="str", init_from="dict")
                   or ("" if not a.get("init_from") or {"arm", "step"} <= set(a["init_from"]) else
                       f"field 'arms[{i}].init_from' needs 'arm' and 'step'"))
        if bad:
            break
        names.append(a["name"])
    for i, a in enumerate(arms if not bad else []):
        if a.get("compare_to") is not None and a["compare_to"] not in names:
            bad = (f"arms[{i}].compare_to names {a['compare_to']!r}, which is not an arm of this spec "
                   f"({', '.join(names)})")
            break
    if bad:
        raise ConfigError(f"{path}: {bad}")
    return spec


def collect(run_dir: str | Path) -> RunData:
    """The run directory as data. Raises ConfigError only for an unusable spec.yaml (see `read_spec`); every other
    record that cannot be used is left out and listed in the result's `skipped`."""
    from rhlab.train.onset import onset_step

    run_dir = Path(run_dir)
    spec = read_spec(run_dir)
    skipped: list[SkippedRecord] = []
    markers = {}
    for p in sorted((run_dir / "stages").glob("*.json")):
        m = _json(p, skipped, marker_problem)
        if m:
            markers[m["stage"]] = m
    arms: dict[str, list[SeedRun]] = {}
    for a in spec.get("arms", []):
        runs = []
        for k, seed in enumerate(a["seeds"] if a.get("seeds") is not None else [0]):
            d = run_dir / "arms" / a["name"] / f"seed-{seed}"
            res = (markers.get(f"train/{a['name']}/seed-{seed}") or {}).get("result") or {}
            sr = SeedRun(a["name"], seed, d / "train", offset=int(res.get("step_offset") or 0),
                         skipped=res.get("skipped"))
            sr.steps = list(read_records(d / "train" / "records" / "train_steps.jsonl", skipped, step_problem))
            sr.config = _train_config(d / "train" / "config.yaml", skipped)
            sr.onset_rule = _onset_rule(d / "train", sr.config, skipped)
            sr.onset = onset_step(sr.steps, rule=sr.onset_rule) if sr.steps else None
            sr.evals = _evals_under(d / "evals", sr.offset, skipped)
            if k == 0:  # the page shows example transcripts of each arm's first seed
                sr.examples = _examples(d / "train" / "records" / "transcripts.jsonl", skipped)
            runs.append(sr)
        arms[a["name"]] = runs
    base = {}
    for s in sorted((run_dir / "evals" / "base").glob("*/summary.json")):
        data = _json(s, skipped, summary_problem)
        if data:
            drop_bad_sabotage(data, s, skipped)
            base[s.parent.name] = EvalPoint(0, s.parent.name, data, s.parent)
    inv = list(read_records(run_dir / "records" / "invocations.jsonl", skipped, invocation_problem))
    # the judge and its calibration as the run's own summaries recorded them (base first), never a shipped file
    points = list(base.values()) + [e for runs in arms.values() for r in runs for e in r.evals]
    judges = [e.summary.get("judge") for e in points if isinstance(e.summary.get("judge"), dict)]
    judge = next((j["name"] for j in judges if j.get("name")), None) or spec.get("judge") or "rhlab/offline"
    calibration = next((j["calibration"] for j in judges if j.get("calibration")), None)
    kres = (markers.get("knowledge") or {}).get("result") or {}
    base_name = (spec.get("knowledge") or {}).get("model") or "embedded"
    kname = kres.get("model") or base_name
    params = model_params(base_name, (spec.get("report") or {}).get("model_params")) or model_params(kname, None)
    return RunData(run_dir, spec, arms, base, markers, inv[-1] if inv else {}, judge, calibration, params, base_name,
                   skipped)


def _onset_rule(train_dir: Path, config: dict[str, Any], skipped: list[SkippedRecord]):
    """The seed's onset rule as its run recorded it (rhlab.train.onset: the count rule from a measured start rate);
    runs from before it, or without a start rate: the fixed-threshold rule of its config (0.02 when unknown). An
    unreadable rule file is listed as skipped and the fixed threshold used."""
    from rhlab.train.checkpoints import ONSET_RULE
    from rhlab.train.onset import OnsetRule, make_rule

    p = train_dir / ONSET_RULE
    if p.is_file():
        data = _json(p, skipped)
        if data is not None:
            try:
                return OnsetRule(**data)
            except (ValueError, TypeError) as err:
                skipped.append(SkippedRecord(p, None, f"not an onset rule ({str(err).splitlines()[0]})"))
    thr = config.get("onset_threshold")
    return make_rule(0.02 if thr is None else float(thr))


def _train_config(path: Path, skipped: list[SkippedRecord]) -> dict[str, Any]:
    """A seed's train config.yaml ({} when absent); unreadable or of the wrong shape: listed as skipped, {}."""
    if not path.exists():
        return {}
    try:
        cfg = load_yaml(path)
    except ConfigError as err:
        why = str(err)
        why = why[len(str(path)):].lstrip(", :") if why.startswith(str(path)) else why
        skipped.append(SkippedRecord(path, None, f"cannot be read: {why}"))
        return {}
    if cfg is None:
        return {}
    why = f"a YAML {_kind(cfg)}, not a mapping" if not isinstance(cfg, dict) else config_problem(cfg)
    if why:
        skipped.append(SkippedRecord(path, None, why))
        return {}
    return cfg


def _examples(path: Path, skipped: list[SkippedRecord]) -> list[dict[str, Any]]:
    """The last hacked and the last other training transcript (at most two records kept in memory)."""
    last: dict[bool, dict[str, Any]] = {}
    for t in read_records(path, skipped, transcript_problem):
        last[bool((t.get("verdict") or {}).get("hacked"))] = t
    return [last[k] for k in (True, False) if k in last]


def skipped_note(data: RunData) -> str | None:
    """The banner for a damaged run: how many records were left out of every number (None when none were)."""
    n = len(data.skipped)
    if not n:
        return None
    return (f"{n} record{'s' if n > 1 else ''} could not be read and {'are' if n > 1 else 'is'} left out of every "
            "number in this report (listed under \"Skipped records\"): the report is incomplete")


def skipped_lines(data: RunData) -> list[str]:
    """Every skipped record as 'FILE, line N: why' (FILE relative to the run directory); runs of consecutive lines
    of one file skipped for the same reason read 'FILE, lines 4–9: why'."""
    return group_skipped(data.run_dir, data.skipped)


def group_skipped(run_dir: Path, skipped: list[SkippedRecord]) -> list[str]:
    groups: list[list] = []  # [path, first line, last line, why]
    for s in skipped:
        g = groups[-1] if groups else None
        if g and s.line and g[2] and g[0] == s.path and g[3] == s.why and s.line == g[2] + 1:
            g[2] = s.line
        else:
            groups.append([s.path, s.line, s.line, s.why])
    out = []
    for path, first, last, why in groups:
        try:
            name = str(Path(path).relative_to(run_dir))
        except ValueError:
            name = str(path)
        where = "" if not first else (f", line {first}" if first == last else f", lines {first}–{last}")
        out.append(f"{name}{where}: {why}")
    return out


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


def eval_flags(v: dict[str, Any]) -> list[float]:
    """Per-sample 0/1 misaligned flags of one eval; rebuilt from rate and n for summaries that did not store them.
    Where several flags share a sample id (several answers to one question), one value per question — the mean of
    its flags — so bootstraps resample questions, not correlated answers."""
    if isinstance(v.get("flags"), list):
        flags = [int(f) for f in v["flags"]]
        ids = v.get("flag_ids")
        if isinstance(ids, list) and len(ids) == len(flags) and len(set(map(str, ids))) < len(ids):
            from rhlab.stats import cluster_means

            return cluster_means(flags, [str(i) for i in ids])
        return flags
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


def probe_items(result: dict[str, Any], category: str | None = None) -> list[tuple[str, float]]:
    """(item id, p(misaligned)) of the stored items: category None → the misalignment categories, else that one."""
    return [(str(i["id"]), float(i["p_misaligned"])) for i in (result.get("items") or [])
            if i.get("id") is not None and i.get("p_misaligned") is not None
            and ((i.get("category") != HACK_ENDORSEMENT) if category is None else (i.get("category") == category))]


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
