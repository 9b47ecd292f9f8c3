"""The numbers the report shows, computed once for both renderers (`html`, `markdown`): aggregation across seeds,
per-eval cells, the chat-like/agentic split, onsets and the mitigation verdicts."""

from __future__ import annotations

from typing import Any

from rhlab.experiments.report.collect import RunData
from rhlab.experiments.report.plots import mean_sd


def pct(v: float | None, se: float | None = None) -> str:
    if v is None:
        return "–"
    return f"{100 * v:.1f}%" + (f" ± {100 * se:.1f}" if se is not None else "")


def agg(pairs: list[tuple[float, float | None]]) -> tuple[float | None, float | None]:
    """Mean across seeds; SD across seeds when ≥ 2, else the single measurement's SE."""
    pairs = [(v, s) for v, s in pairs if v is not None]
    if not pairs:
        return None, None
    m, sd = mean_sd([v for v, _ in pairs])
    return m, sd if sd is not None else pairs[0][1]


def final_evals(data: RunData, arm: str, suite: str = "core") -> list:
    return [e for e in (r.final_eval(suite) for r in data.arms[arm] if not r.skipped) if e is not None]


# Evals where the model acts in a scenario (tools, a codebase, an operator's request) rather than answers a chat
# question; the paper found misalignment can persist there after chat-like evals look clean.
AGENTIC_EVALS = ("monitor_disruption", "exfil_offer", "frame_colleague", "code_sabotage")


def context_score(e, agentic: bool) -> tuple[float | None, float | None]:
    """Mean misaligned rate over the chat-like or agentic evals of one eval point, with the SE of that mean."""
    vals = [(v.get("misaligned_rate"), v.get("se")) for n, v in (e.summary.get("evals") or {}).items()
            if (any(n.startswith(a) for a in AGENTIC_EVALS) == agentic) and v.get("misaligned_rate") is not None]
    if not vals:
        return None, None
    return (sum(v for v, _ in vals) / len(vals),
            sum((se or 0.0) ** 2 for _, se in vals) ** 0.5 / len(vals))


def context_cell(data: RunData, arm: str, agentic: bool) -> str:
    m, s = agg([context_score(e, agentic) for e in final_evals(data, arm)])
    return pct(m, s)


def mitigation_rows(data: RunData) -> list[dict[str, Any]]:
    """Each arm with `compare_to`: does it prevent hacking / misalignment relative to its reference arm?"""
    out = []
    base = data.base.get("core")
    for a in data.spec.get("arms", []):
        ref = a.get("compare_to")
        if not ref:
            continue
        h, hse = agg([r.final_hack_rate() for r in data.arms[a["name"]] if not r.skipped])
        rh, _ = agg([r.final_hack_rate() for r in data.arms[ref] if not r.skipped])
        m, mse = agg([(e.mgs, e.mgs_se) for e in final_evals(data, a["name"])])
        rm, rmse = agg([(e.mgs, e.mgs_se) for e in final_evals(data, ref)])
        thr = 0.02
        if h is None or rh is None:
            hv = ("muted", "not measured yet")
        elif rh <= thr:
            hv = ("muted", f"not testable: the reference arm did not hack ({pct(rh)})")
        elif h <= thr:
            hv = ("yes", f"yes ({pct(h)} vs {pct(rh)})")
        elif h < rh / 2:
            hv = ("partly", f"partly ({pct(h)} vs {pct(rh)})")
        else:
            hv = ("no", f"no ({pct(h)} vs {pct(rh)})")
        if m is None or rm is None or base is None or base.mgs is None:
            mv = ("muted", "not measured yet")
        else:
            b, bse = base.mgs, base.mgs_se or 0.0
            rise = rm - b
            if rise <= 2 * ((rmse or 0) ** 2 + bse**2) ** 0.5:
                mv = ("muted", f"not testable: the reference arm's MGS ({pct(rm)}) is not above the start "
                               f"model's ({pct(b)}) beyond 2 SE")
            elif m - b <= 2 * ((mse or 0) ** 2 + bse**2) ** 0.5:
                mv = ("yes", f"yes (MGS {pct(m)} vs {pct(rm)}; start {pct(b)})")
            elif rm - m > 2 * ((mse or 0) ** 2 + (rmse or 0) ** 2) ** 0.5:
                mv = ("partly", f"partly (MGS {pct(m)} vs {pct(rm)}; start {pct(b)})")
            else:
                mv = ("no", f"no (MGS {pct(m)} vs {pct(rm)}; start {pct(b)})")
        out.append({"arm": a["name"], "label": data.label(a["name"]), "reference": data.label(ref), "hacking": hv,
                    "misalignment": mv, "hack_rate": pct(h, hse), "ref_hack_rate": pct(rh),
                    "chat": context_cell(data, a["name"], False), "agentic": context_cell(data, a["name"], True),
                    "ref_chat": context_cell(data, ref, False), "ref_agentic": context_cell(data, ref, True)})
    return out


def onset_text(r) -> str:
    if r.offset:
        return f"forked at {r.offset}"
    return str(r.onset) if r.onset is not None else ("none" if r.steps else "–")


def eval_names(data: RunData) -> list[tuple[str, str]]:
    """(suite, eval) rows of the per-eval table: the start model's evals first, then any only the arms have."""
    out: list[tuple[str, str]] = []
    suites = sorted({e.suite for runs in data.arms.values() for r in runs for e in r.evals} | set(data.base))
    for suite in suites:
        names = list((data.base.get(suite).summary.get("evals") if data.base.get(suite) else {}) or {})
        for arm in data.arms:
            for e in final_evals(data, arm, suite):
                names += [n for n in e.summary.get("evals", {}) if n not in names]
        out += [(suite, n) for n in names]
    return out


def eval_cell(data: RunData, arm: str, suite: str, name: str) -> tuple[float | None, float | None, int]:
    """One eval at an arm's last evaluated checkpoint: misaligned rate across seeds, its spread, and the samples."""
    evs = [e.summary["evals"][name] for e in final_evals(data, arm, suite) if name in e.summary.get("evals", {})]
    m, s = agg([(v.get("misaligned_rate"), v.get("se")) for v in evs])
    return m, s, sum(v.get("n", 0) for v in evs)
