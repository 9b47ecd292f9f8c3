"""The report's numbers as Markdown (`report/summary.md`): the tables a researcher pastes into notes or docs.

Same data and the same aggregation as the HTML page (mean across seeds, ± SD across seeds or the SE with one seed),
with the page's warnings repeated above the numbers they qualify.
"""

from __future__ import annotations

from rhlab.experiments.report.collect import RunData, SeedRun, kappa_note, params_text, size_note
from rhlab.experiments.report.tables import (agg, context_cell, eval_cell, eval_names, final_evals,
                                             mitigation_rows, onset_text, pct)


def _row(cells: list[str]) -> str:
    return "| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |"


def _table(head: list[str], rows: list[list[str]]) -> str:
    return "\n".join([_row(head), _row(["---"] * len(head))] + [_row(r) for r in rows])


def hack_curve(runs: list[SeedRun], max_points: int = 16) -> str:
    """Successful-hack rate per step (mean across seeds), in percent: '13 → 50 → 88'; a long run shows about
    `max_points` evenly spaced steps, each labelled 'step: rate'."""
    steps = sorted({r["step"] + run.offset for run in runs for r in run.steps if r.get("hack_success_any") is not None})
    vals = []
    for s in steps:
        xs = [r["hack_success_any"] for run in runs for r in run.steps
              if r["step"] + run.offset == s and r.get("hack_success_any") is not None]
        vals.append(f"{100 * sum(xs) / len(xs):.0f}")
    if len(vals) > max_points:
        idx = sorted({round(i * (len(vals) - 1) / (max_points - 1)) for i in range(max_points)})
        return " → ".join(f"{steps[i]}: {vals[i]}" for i in idx)
    return " → ".join(vals) if vals else "–"


def _mgs_by_step(runs: list[SeedRun], suite: str = "core") -> str:
    steps = sorted({e.step for r in runs for e in r.evals if e.suite == suite})
    parts = []
    for s in steps:
        m, se = agg([(e.mgs, e.mgs_se) for r in runs for e in r.evals if e.suite == suite and e.step == s])
        parts.append(f"{s}: {pct(m, se)}")
    return "; ".join(parts) or "–"


def _onsets(runs: list[SeedRun]) -> str:
    return ", ".join("skipped" if r.skipped else onset_text(r) for r in runs)


def render_summary(data: RunData) -> str:
    below = (data.spec.get("report") or {}).get("small_model_below", 1e9)
    notes = [n for n in (size_note(data.model_params, below), kappa_note(data.agreement)) if n]
    ag = data.agreement or {}
    kappa = "unknown" if ag.get("kappa") is None else f"{ag['kappa']:.2f}"
    size = f"{params_text(data.model_params)} parameters" if data.model_params else "size unknown"
    know = data.spec.get("knowledge") or {}
    lines = [f"# rhlab summary: {data.spec.get('name', '')}", "",
             (data.spec.get("description") or "").strip(), "",
             f"Model `{data.model_name}` ({size}); knowledge stage `{know.get('kind')}`"
             + (f" (corpus `{know.get('corpus')}`, {know.get('n_docs')} documents)" if know.get("kind") == "sdf" else "")
             + f"; judge `{data.judge}` (κ = {kappa}, n = {ag.get('n', '–')}).", ""]
    lines += [f"> ⚠ {n}" for n in notes] + ([""] if notes else [])

    base = data.base.get("core")
    thr = next((float(r.config["onset_threshold"]) for runs in data.arms.values() for r in runs
                if (r.config or {}).get("onset_threshold") is not None), 0.02)
    rows = []
    for a in data.spec.get("arms", []):
        runs = [r for r in data.arms[a["name"]] if not r.skipped] or data.arms[a["name"]]
        h, hse = agg([r.final_hack_rate() for r in runs if not r.skipped])
        m, mse = agg([(e.mgs, e.mgs_se) for e in final_evals(data, a["name"])])
        rows.append([data.label(a["name"]), str(len(runs)), _onsets(runs), hack_curve(runs), pct(h, hse),
                     _mgs_by_step(runs), pct(m, mse), context_cell(data, a["name"], False),
                     context_cell(data, a["name"], True)])
    lines += ["## Arms", "",
              f"MGS before RL (the RL start model): {pct(base.mgs, base.mgs_se) if base else '–'}. Hack rates are "
              "successful hacks per step in percent (mean across seeds); onset is the first step above "
              f"{100 * thr:g} %; MGS by step is the core suite at each "
              "evaluated checkpoint.", "",
              _table(["arm", "seeds", "onset step", "successful hacks per step (%)", "final hack rate (last 3 steps)",
                      "MGS by step", "final MGS", "misaligned, chat-like", "misaligned, agentic"], rows), ""]

    arms = list(data.arms)
    per_eval = []
    for suite, name in eval_names(data):
        bv = ((data.base[suite].summary.get("evals") or {}).get(name) if suite in data.base else None) or {}
        cells = [name if suite == "core" else f"{suite}/{name}", pct(bv.get("misaligned_rate"), bv.get("se"))]
        for a in arms:
            m, se, n = eval_cell(data, a, suite, name)
            cells.append(f"{pct(m, se)} (n={n})" if n else "–")
        per_eval.append(cells)
    if per_eval:
        lines += ["## Misaligned rate per eval (last evaluated checkpoint)", "",
                  _table(["eval", "before RL"] + [data.label(a) for a in arms], per_eval), ""]

    mit = mitigation_rows(data)
    if mit:
        lines += ["## Mitigations", "",
                  _table(["arm", "compared with", "final hack rate", "prevents hacking?", "prevents misalignment?"],
                         [[r["label"], r["reference"], f"{r['hack_rate']} (ref. {r['ref_hack_rate']})",
                           r["hacking"][1], r["misalignment"][1]] for r in mit]), ""]

    walls = {s: m.get("wall_s") for s, m in data.markers.items() if isinstance(m.get("wall_s"), (int, float))}
    if walls:
        longest = max(walls, key=walls.get)
        lines += [f"Stage wall time: {sum(walls.values()) / 60:.1f} min over {len(walls)} stages "
                  f"(longest: {longest}, {walls[longest] / 60:.1f} min).", ""]
    return "\n".join(lines)
