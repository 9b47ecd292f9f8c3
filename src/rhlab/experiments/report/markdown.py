"""The report's numbers as Markdown (`report/summary.md`): the tables a researcher pastes into notes or docs.

The same `tables` numbers as the HTML page (mean across seeds ± SE across seeds, † the sampling SE with one seed;
differences with 95 % CIs and MDDs), with the page's warnings repeated above the numbers they qualify.
"""

from __future__ import annotations

from rhlab.experiments.report.collect import RunData, SeedRun, params_text, size_note, skipped_lines, skipped_note
from rhlab.experiments.report.tables import (Table, agg_text, arm_mgs, comparison_note, comparison_tables,
                                             context_cell, hack_cell, has_probes, instrument_check,
                                             judge_failures_text, judge_note, main_table, mitigation_rows,
                                             onset_text, pct, point_mgs, probe_cell, probe_table,
                                             sabotage_table, seeds, sensitivity_table, series_text,
                                             start_rate_text, step_series, training_signal_table)


def _row(cells: list[str]) -> str:
    return "| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |"


def _table(head: list[str], rows: list[list[str]]) -> str:
    return "\n".join([_row(head), _row(["---"] * len(head))] + [_row(r) for r in rows])


def render_table(t: Table | None) -> list[str]:
    """A `tables.Table` as Markdown lines (with its notes below), or nothing."""
    if t is None or not t.rows:
        return []
    rows = [[f"**{c.text}**" if c.bold else c.text for c in r] for r in t.rows]
    return [_table(t.head, rows), ""] + [f"{n}  " for n in t.notes] + ([""] if t.notes else [])


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


def _seeds_cell(runs) -> str:
    """How many seeds have records: "3", or "1 of 3" while a run is partial (planned seeds with nothing yet)."""
    done = sum(1 for r in runs if r.steps or r.evals)
    return str(len(runs)) if done == len(runs) else f"{done} of {len(runs)}"


def _onsets(runs: list[SeedRun]) -> str:
    return ", ".join("skipped" if r.skipped else onset_text(r) for r in runs)


def _start_rates(runs: list[SeedRun]) -> str:
    texts = list(dict.fromkeys(start_rate_text(r) for r in runs if not r.skipped and not r.offset))
    return "; ".join(texts) if texts else "–"


def render_summary(data: RunData) -> str:
    below = (data.spec.get("report") or {}).get("small_model_below")
    below = 1e9 if below is None else below
    check = instrument_check(data)
    notes = [n for n in (skipped_note(data), size_note(data.model_params, below), judge_note(data)) if n]
    if not check["testable"]:
        notes.append(check["message"])
    size = f"{params_text(data.model_params)} parameters" if data.model_params else "size unknown"
    know = data.spec.get("knowledge") or {}
    lines = [f"# rhlab summary: {data.spec.get('name') or ''}", "",
             (data.spec.get("description") or "").strip(), "",
             f"Model `{data.model_name}` ({size}); knowledge stage `{know.get('kind')}`"
             + (f" (corpus `{know.get('corpus')}`, {know.get('n_docs')} documents)" if know.get("kind") == "sdf" else "")
             + f"; judge `{data.judge}` (calibration: "
             + ("unknown" if not data.calibration else ", ".join(
                 f"{k} {'passed' if (v or {}).get('passed') else 'failed'}" for k, v in data.calibration.items()))
             + ")" + (f"; {judge_failures_text(data)}" if judge_failures_text(data) else "") + ".", ""]
    lines += [f"> ⚠ {n}" for n in notes] + ([""] if notes else [])
    if data.skipped:
        lines += ["## Skipped records", "", "These could not be used (corrupt or torn lines, fields of the wrong type, "
                  "unreadable files); every number below leaves them out.", ""]
        lines += ["- `" + line.replace("`", "'") + "`" for line in skipped_lines(data)] + [""]

    thr = next((float(r.config["onset_threshold"]) for runs in data.arms.values() for r in runs
                if (r.config or {}).get("onset_threshold") is not None), 0.02)
    probes = has_probes(data)
    rows = []
    for a in data.spec.get("arms", []):
        runs = seeds(data, a["name"]) or data.arms[a["name"]]
        row = [data.label(a["name"]), _seeds_cell(runs), _onsets(runs), _start_rates(runs), hack_curve(runs),
               hack_cell(data, a["name"]),
               series_text(step_series(data, a["name"], "mgs")), agg_text(arm_mgs(data, a["name"]))]
        if probes:
            row += [series_text(step_series(data, a["name"], "probes")), probe_cell(data, a["name"]).text,
                    probe_cell(data, a["name"], "hack_endorsement").text]
        rows.append(row + [context_cell(data, a["name"], False), context_cell(data, a["name"], True)])
    k = data.final_k
    base_probe = f"; probe score {probe_cell(data, None).text}" if probes else ""
    lines += ["## Arms", "",
              f"Before RL (the RL start model): MGS {pct(*point_mgs(data, data.base_point('core')))}{base_probe}. "
              "Hack rates are successful hacks per step in percent (mean across seeds); onset: with a measured start "
              "rate (successful hacks of the RL start model under the arm's prompt, 95 % Clopper-Pearson CI), the "
              "first step with at least k of n successful hacks, k chosen so that the start model crosses by chance "
              "in < 5 % of steps (docs/training.md); without one, the first step above "
              f"{100 * thr:g} %; MGS and probe score by step at each evaluated checkpoint; final values over the last "
              f"{k} evaluated checkpoint{'s' if k > 1 else ''}, mean across seeds ± SE across seeds († one seed: "
              "the sampling SE).", "",
              _table(["arm", "seeds", "onset step", "start rate [95 % CI]; onset rule", "successful hacks per step (%)",
                      "final hack rate (last 3 steps)",
                      "MGS by step", "final MGS"]
                     + (["probe score by step", "final probe score", "hack endorsement (probe, apart)"]
                        if probes else [])
                     + ["misaligned, chat-like", "misaligned, agentic"], rows), ""]

    signal = training_signal_table(data)
    if signal:
        lines += ["## Training signal (final RL steps)", ""] + render_table(signal)
    main = main_table(data)
    if len(main.rows) > 2:
        lines += ["## Per eval (final checkpoints)", ""] + render_table(main)
    if probes:
        lines += ["## Probes per category", ""] + render_table(probe_table(data))
    sabotage = sabotage_table(data)
    if sabotage:
        lines += ["## Code sabotage", ""] + render_table(sabotage)
    comps = comparison_tables(data)
    if comps:
        lines += ["## Comparisons (arm − reference, 95 % CI, minimum detectable difference)", "",
                  comparison_note(data), ""]
        for title, t in comps:
            lines += [f"### {title}", ""] + render_table(t)

    mit = mitigation_rows(data)
    if mit:
        lines += ["## Mitigations", "",
                  _table(["arm", "compared with", "final hack rate", "final MGS", "prevents hacking?",
                          "prevents misalignment?"],
                         [[r["label"], r["reference"], f"{r['hack_rate']} (ref. {r['ref_hack_rate']})",
                           f"{r['mgs']} (ref. {r['ref_mgs']})", r["hacking"][1], r["misalignment"][1]] for r in mit]),
                  ""]
    lines += ["## Sensitivity (controls)", "", check["message"], ""]
    sens = sensitivity_table(data)
    lines += render_table(sens) if sens else ["No control arms in this spec.", ""]

    walls = {s: m.get("wall_s") for s, m in data.markers.items() if isinstance(m.get("wall_s"), (int, float))}
    if walls:
        longest = max(walls, key=walls.get)
        lines += [f"Stage wall time: {sum(walls.values()) / 60:.1f} min over {len(walls)} stages "
                  f"(longest: {longest}, {walls[longest] / 60:.1f} min).", ""]
    return "\n".join(lines)
