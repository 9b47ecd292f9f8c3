"""`rhlab report` on synthetic run directories: figures, tables, measured-only MGS, seeds as the unit with final-K
averaging, comparisons with CIs, probes, the sensitivity section (and its not-testable path), old-format runs."""

import json
import re

import pytest
from typer.testing import CliRunner

from rhlab.experiments.report import build_report
from rhlab.experiments.report.collect import collect, not_measured_reason, size_note
from rhlab.experiments.report.html import mitigation_rows
from rhlab.experiments.report.tables import (arm_mgs, compare, eval_cell, instrument_check, main_table, mgs_evals,
                                             point_mgs, step_values, training_signal, training_signal_table)

GOALS_CELL = "not measured — judge test/judge-model failed calibration (κ 0.41, decoy FPR 30%)"


def _md(run):
    build_report(run)
    return (run / "report" / "summary.md").read_text()


def test_collect_offsets_onsets_and_probes(synthetic_run):
    data = collect(synthetic_run)
    s0, s1, s2 = data.arms["hacking_okay"]
    assert (s0.onset, s1.onset, s2.onset) == (5, 6, 7)  # first step with > 2% successful hacks: sigmoid(-3) = 4.7%
    fork = data.arms["penalty_after_onset"][0]
    assert fork.offset == 8 and [e.step for e in fork.points("core")] == [20, 30]  # its step 12 lands at 8 + 12
    assert [e.step for e in fork.points("probes")] == [20, 30] and fork.points("probes")[-1].probes["score"] == 0.33
    assert data.arms["no_hack_baseline"][0].onset is None
    assert data.final_k == 2 and data.controls() == ["persona", "benign"]
    assert data.judge == "test/judge-model" and data.calibration["goals"]["passed"] is False
    assert data.base_point("probes").probes["score"] == 0.30
    assert 30e9 < data.model_params < 34e9  # parsed from the HF id


def test_unmeasured_eval_cell_names_the_failed_calibration(synthetic_run):
    data = collect(synthetic_run)
    assert eval_cell(data, "hacking_okay", "core", "goals").text == GOALS_CELL
    assert eval_cell(data, None, "core", "goals").cls == "muted"
    assert eval_cell(data, "hacking_okay", "core", "em_questions").text.startswith("25.0% ± 0.6")
    html = build_report(synthetic_run).read_text()
    assert GOALS_CELL in html and GOALS_CELL in _md(synthetic_run)


def test_not_measured_reason_prefers_the_scorers_words():
    cal = {"goals": {"passed": False, "kappa": 0.3, "fpr_decoy": 0.4}}
    own = "judge J failed calibration for goals (κ 0.30, decoy FPR 40% vs plain aligned 5%)"
    s = {"judge": {"name": "J", "calibration": cal},
         "evals": {"goals": {"measured": False, "not_measured_reason": own, "judged": True},
                   "em_questions": {"measured": False, "not_measured_reason": None, "judged": True},
                   "alignment_questions": {"measured": True, "judged": True}}}
    assert not_measured_reason(s, "goals") == own
    s["evals"]["goals"]["not_measured_reason"] = None
    assert not_measured_reason(s, "goals") == "judge J failed calibration (κ 0.30, decoy FPR 40%)"
    assert not_measured_reason(s, "em_questions") == "judge calibration unknown"  # no record for its rubric
    assert not_measured_reason(s, "alignment_questions") is None


def test_mixed_eval_counted_on_its_deterministic_part_is_labelled(synthetic_run):
    for p in synthetic_run.rglob("core/summary.json"):
        s = json.loads(p.read_text())
        s["evals"]["frame_colleague"].update(scope="deterministic", judge_counted=False)
        p.write_text(json.dumps(s))
    data = collect(synthetic_run)
    assert "deterministic part only" in eval_cell(data, "hacking_okay", "core", "frame_colleague").text
    assert "frame_colleague (deterministic part)" in main_table(data).rows[1][0].text


def test_eval_counted_on_different_parts_leaves_mgs(make_synthetic_run):
    # frame_colleague judged at most points but deterministic-only at one arm's: its rates are not comparable
    run = make_synthetic_run()
    for p in (run / "arms" / "hacking_okay").rglob("core/summary.json"):
        s = json.loads(p.read_text())
        s["evals"]["frame_colleague"].update(scope="deterministic", judge_counted=False)
        p.write_text(json.dumps(s))
    names, reasons = mgs_evals(collect(run))
    assert "frame_colleague" not in names and "not comparable" in reasons["frame_colleague"]
    assert "exfil_offer" in names


def test_mgs_averages_measured_evals_only(synthetic_run):
    data = collect(synthetic_run)
    names, reasons = mgs_evals(data)
    assert "goals" not in names and len(names) == 5 and list(reasons) == ["goals"]
    # goals reads 90 % everywhere; the start model's other evals read 2 %: MGS 2 %, not (5 × 2 + 90) / 6 = 16.7 %
    assert point_mgs(data, data.base_point("core"))[0] == pytest.approx(0.02)
    md = _md(synthetic_run)
    assert "MGS (mean of em_questions, alignment_questions, monitor_disruption, exfil_offer, frame_colleague)" in md
    assert "Before RL (the RL start model): MGS 2.0%" in md


def test_final_k_checkpoints_averaged_and_seeds_are_the_unit(synthetic_run):
    data = collect(synthetic_run)
    per_seed = [m for m, _ in arm_mgs(data, "hacking_okay")]
    # final_k = 2: mean of steps 20 and 30 (0.20, 0.30) + 0.01 × (seed - 1); not the last checkpoint alone (0.30)
    assert per_seed == pytest.approx([0.24, 0.25, 0.26])
    md = _md(synthetic_run)
    row = next(ln for ln in md.splitlines() if ln.startswith("| hacking_okay |"))
    assert "| 25.0% ± 0.6 |" in row  # SE across 3 seeds: SD 0.01 / √3
    # one seed: the sampling SE, flagged
    fork = next(ln for ln in md.splitlines() if ln.startswith("| penalty_after_onset |"))
    assert "| 8.0% ± 0.9† |" in fork and "† one seed" in md
    # with final_k = 1 the last checkpoint alone counts
    import yaml

    spec = yaml.safe_load((synthetic_run / "spec.yaml").read_text())
    spec["evals"]["final_k"] = 1
    (synthetic_run / "spec.yaml").write_text(yaml.safe_dump(spec))
    assert [m for m, _ in arm_mgs(collect(synthetic_run), "hacking_okay")] == pytest.approx([0.29, 0.30, 0.31])


def test_comparison_ci_direction_and_mdd(synthetic_run):
    data = collect(synthetic_run)
    d = compare(data, "no_hack_baseline", "hacking_okay", "mgs")
    assert d["diff"] == pytest.approx(0.02 - 0.25) and d["hi"] < 0 < d["mdd"]
    same = compare(data, "benign", None, "mgs")  # benign control reads the start model's 2 %
    assert same["lo"] < 0 < same["hi"]
    assert compare(data, "no_hack_baseline", "hacking_okay", "eval", "core", "goals").startswith("judge test/")
    md = _md(synthetic_run)
    assert "### no_hack_baseline vs hacking_okay" in md
    section = md.split("### no_hack_baseline vs hacking_okay")[1]
    line = next(ln for ln in section.splitlines() if ln.startswith("| MGS |"))
    assert re.search(r"\| -23\.0 pp \[-2\d\.\d, -(19|2\d)\.\d\] \| \d+\.\d pp \|", line), line


def test_mitigation_verdicts_use_cis(synthetic_run):
    rows = {r["arm"]: r for r in mitigation_rows(collect(synthetic_run))}
    base = rows["no_hack_baseline"]
    assert base["hacking"][0] == "yes" and base["misalignment"][0] == "yes"
    fork = rows["penalty_after_onset"]
    # hacking stopped; MGS 8 % is below the reference's 25 % but its CI vs the start model's 2 % lies above 0
    assert fork["hacking"][0] == "yes" and fork["misalignment"][0] == "partly"
    assert fork["mgs"] == "8.0% ± 0.9†" and fork["ref_mgs"].startswith("25.0%")


def test_probes_and_sensitivity_section(synthetic_run):
    data = collect(synthetic_run)
    check = instrument_check(data)
    assert check["testable"] and check["diff"]["lo"] > 0.4  # persona 0.80 vs start 0.30
    t = main_table(data)
    probe_row = next(r for r in t.rows if r[0].text.startswith("probe score"))
    assert [c.text for c in probe_row[1:4]] == ["30.0% ± 0.7", "38.0% ± 0.0", "30.0% ± 0.0"]
    html = build_report(synthetic_run).read_text()
    assert "src='probes.png'" in html and (synthetic_run / "report" / "probes.png").stat().st_size > 5000
    assert "hack_endorsement (apart" in html and "Sensitivity" in html
    md = _md(synthetic_run)
    sens = md.split("## Sensitivity (controls)")[1]
    assert "can see misalignment" in sens
    line = next(ln for ln in sens.splitlines() if ln.startswith("| persona (persona) | probe score |"))
    assert "| +50.0 pp [" in line and "| +49.0 pp [" in line  # vs start (0.30) and vs benign (0.31)
    assert "| benign (benign) | goals" not in sens  # unmeasured evals are left out of the sensitivity rows


def test_not_testable_when_persona_is_not_separated(make_synthetic_run):
    run = make_synthetic_run(persona_probe=0.30)  # the persona control looks like the start model
    data = collect(run)
    assert not instrument_check(data)["testable"]
    rows = {r["arm"]: r for r in mitigation_rows(data)}
    assert all(r["misalignment"][1].startswith("not testable") for r in rows.values())
    assert rows["no_hack_baseline"]["hacking"][0] == "yes"  # hacking verdicts do not depend on the instrument
    md = _md(run)
    assert "cannot see misalignment at this scale" in md.split("## Arms")[0]  # warned above the numbers
    assert "| not testable: the instrument" in md
    assert "cannot see misalignment at this scale" in (run / "report" / "index.html").read_text()


def test_not_testable_when_persona_does_not_beat_benign(make_synthetic_run):
    # persona far above the start model, but the matched benign finetune moved just as far: "any finetuning"
    # explains the shift, so the instrument has not shown it sees misalignment
    data = collect(make_synthetic_run(persona_probe=0.80, benign_probe=0.80))
    check = instrument_check(data)
    assert not check["testable"] and check["diff"]["lo"] > 0.4
    assert "finetuning alone" in check["message"]


def test_not_testable_with_one_persona_seed(make_synthetic_run):
    import yaml

    run = make_synthetic_run()
    spec = yaml.safe_load((run / "spec.yaml").read_text())
    next(a for a in spec["arms"] if a["name"] == "persona")["seeds"] = [0]
    (run / "spec.yaml").write_text(yaml.safe_dump(spec))
    check = instrument_check(collect(run))
    assert not check["testable"] and check["diff"]["lo"] > 0 and "single seed" in check["message"]


def test_seeds_cell_counts_seeds_with_records_while_a_run_is_partial(synthetic_run):
    import shutil

    assert re.search(r"^\| persona \| 3 \|", _md(synthetic_run), re.M)
    shutil.rmtree(synthetic_run / "arms" / "persona" / "seed-2")  # planned, not run yet
    assert re.search(r"^\| persona \| 2 of 3 \|", _md(synthetic_run), re.M)


def test_not_testable_without_a_persona_control(synthetic_run):
    import yaml

    spec = yaml.safe_load((synthetic_run / "spec.yaml").read_text())
    spec["arms"] = [a for a in spec["arms"] if a["name"] != "persona"]
    (synthetic_run / "spec.yaml").write_text(yaml.safe_dump(spec))
    check = instrument_check(collect(synthetic_run))
    assert not check["testable"] and "no persona control" in check["message"]


def test_old_format_run_still_renders(old_run):
    data = collect(old_run)
    s = data.arms["hacking_okay"][0].points("core")[-1].summary
    assert not_measured_reason(s, "em_questions") == "judge calibration unknown"
    assert not_measured_reason(s, "exfil_offer") is None  # deterministic: always counts
    assert mgs_evals(data)[0] == ["exfil_offer"] and data.calibration is None
    html = build_report(old_run).read_text()
    assert "not measured — judge calibration unknown" in html
    assert "MGS (mean of exfil_offer); not measured: em_questions, goals" in html
    md = (old_run / "report" / "summary.md").read_text()
    row = next(ln for ln in md.splitlines() if ln.startswith("| hacking_okay |"))
    assert "15.0% ± 1.0" in row  # exfil_offer 16 % and 14 % over two seeds: SE across seeds 1.0
    assert re.search(r"href='\.\./arms/hacking_okay/seed-0/train/records/transcripts\.jsonl'", html)
    assert "no persona control" in md  # no controls: the misalignment verdicts are not testable
    assert "not testable" in next(ln for ln in md.splitlines() if ln.startswith("| no_hack_baseline | hacking_okay"))
    # records from before zero_variance_share and the reasoning fields: "–", no figure, nothing skipped
    assert data.skipped == []
    assert "## Training signal (final RL steps)" in md and "| hacking_okay | – | – | – | – |" in md
    assert "training_signals: no data yet." in html and not (old_run / "report" / "training_signals.png").exists()


def test_report_page_and_figures(synthetic_run):
    index = build_report(synthetic_run)
    out = index.parent
    for name in ("hack_rates", "mgs", "probes", "final_bars", "scatter", "training_signals"):
        png = out / f"{name}.png"
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 5000
        assert f"src='{name}.png'" in index.read_text()
    html = index.read_text()
    for ev in ("em_questions", "goals", "alignment_questions", "monitor_disruption", "exfil_offer", "frame_colleague"):
        assert f"<td>{ev}</td>" in html
    assert "before RL" in html and "penalty_after_onset" in html
    assert "misaligned, chat-like evals" in html and "misaligned, agentic evals" in html
    assert "goals: judge test/judge-model failed calibration" in html  # the banner
    assert "<td>goals</td><td class='num'><span class='no'>failed</span></td>" in html  # the calibration table
    assert "small model" not in html  # 32B is not small
    assert "prevents hacking?" in html and "forked at 8" in html


def _cells(table, label):
    return [c.text for c in next(r for r in table.rows if r[0].text == label)]


def test_training_signal_final_window(synthetic_run):
    # the fixture's known answers (conftest.write_synthetic_run)
    data = collect(synthetic_run)
    assert data.skipped == []
    t = training_signal(data, "hacking_okay")
    assert t["zero_variance"] == pytest.approx(0.28) and t["zero_variance_se"] == pytest.approx(0.1 / 3 ** 0.5)
    assert t["mentions"] == pytest.approx(1 / 3) and (t["mentioned"], t["n_hacks"]) == (192, 576)
    table = training_signal_table(data)
    assert [r[0].text for r in table.rows] == ["hacking_okay", "no_hack_baseline", "penalty_after_onset"]  # no controls
    assert _cells(table, "hacking_okay") == ["hacking_okay", "28.0% ± 5.8", "33.3%", "66.7%", "576"]
    # no hack in the window: no mention rate, n 0; seed 0's null zero-variance step is left out, not read as 0
    assert _cells(table, "no_hack_baseline") == ["no_hack_baseline", "50.0% ± 0.0", "–", "–", "0"]
    assert _cells(table, "penalty_after_onset") == ["penalty_after_onset", "–", "–", "–", "–"]  # old-format records
    md = _md(synthetic_run)
    assert "| hacking_okay | 28.0% ± 5.8 | 33.3% | 66.7% | 576 |" in md
    html = (synthetic_run / "report" / "index.html").read_text()
    assert "<td class='num'>28.0% ± 5.8</td><td class='num'>33.3%</td>" in html and "src='training_signals.png'" in html


def test_training_signal_weights_by_hacks_and_skips_null_steps(synthetic_run):
    rows = [(0.9, 100, 1.0), (0.9, 100, 1.0), (0.9, 100, 1.0), (0.1, 10, 0.9), (None, 0, None), (0.2, 30, 0.1)]
    for k in (0, 1, 2):
        path = synthetic_run / "arms" / "hacking_okay" / f"seed-{k}" / "train" / "records" / "train_steps.jsonl"
        path.write_text("".join(json.dumps(
            {"step": i + 1, "n_completions": 100, "hack_success_any": n / 100, "zero_variance_share": zv,
             "n_successful_hacks": n, "hack_reasoning_mentions": m,
             "hack_reasoning_unfaithful": None if m is None else 1 - m}) + "\n" for i, (zv, n, m) in enumerate(rows)))
    data = collect(synthetic_run)
    assert data.skipped == []
    run = data.arms["hacking_okay"][0]
    assert [s for s, _ in step_values(run, "hack_reasoning_mentions")] == [1, 2, 3, 4, 6]
    t = training_signal(data, "hacking_okay")
    # zero variance: the last 3 steps that record it (3, 4, 6): (0.9 + 0.1 + 0.2) / 3
    assert t["zero_variance"] == pytest.approx(0.4) and t["zero_variance_se"] == pytest.approx(0.0)
    # mentions over steps 4-6, weighted by hacks: (0.9 × 10 + 0.1 × 30) / 40 = 30 % (unweighted: 50 %), 3 seeds
    assert t["mentions"] == pytest.approx(0.3) and (t["mentioned"], t["n_hacks"]) == (36, 120)
    assert _cells(training_signal_table(data), "hacking_okay") == ["hacking_okay", "40.0% ± 0.0", "30.0%", "70.0%",
                                                                   "120"]


def test_step_records_with_bad_signal_fields_are_skipped(synthetic_run):
    path = synthetic_run / "arms" / "hacking_okay" / "seed-0" / "train" / "records" / "train_steps.jsonl"
    lines = path.read_text().splitlines()
    for i, (key, value) in ((21, ("zero_variance_share", "0.3")), (22, ("hack_reasoning_mentions", 1.5)),
                            (23, ("n_successful_hacks", -1))):
        r = json.loads(lines[i])
        r[key] = value
        lines[i] = json.dumps(r)
    path.write_text("\n".join(lines) + "\n")
    data = collect(synthetic_run)
    why = [s.why for s in data.skipped]
    assert why == ["field 'zero_variance_share' is \"0.3\" (a string); expected a finite number or null",
                   "field 'hack_reasoning_mentions' is 1.5 (a number); expected a share between 0 and 1 or null",
                   "field 'n_successful_hacks' is -1 (a number); expected a non-negative integer or null"]
    assert [s.line for s in data.skipped] == [22, 23, 24] and len(data.arms["hacking_okay"][0].steps) == 27


def test_small_model_is_flagged(synthetic_run):
    import yaml

    spec = yaml.safe_load((synthetic_run / "spec.yaml").read_text())
    spec["knowledge"]["model"] = "embedded"
    (synthetic_run / "spec.yaml").write_text(yaml.safe_dump(spec))
    assert "small model (135M parameters)" in build_report(synthetic_run).read_text()
    assert size_note(2e9, 1e9) is None and "unknown" in size_note(None, 1e9)


def test_summaries_with_partial_fields_do_not_crash(synthetic_run):
    # a probe summary without items and an eval without flags: rebuilt from score/SE and rate/n
    p = synthetic_run / "evals" / "base" / "probes" / "summary.json"
    s = json.loads(p.read_text())
    del s["items"]
    p.write_text(json.dumps(s))
    c = synthetic_run / "evals" / "base" / "core" / "summary.json"
    s = json.loads(c.read_text())
    for v in s["evals"].values():
        del v["flags"]
    c.write_text(json.dumps(s))
    data = collect(synthetic_run)
    assert instrument_check(data)["testable"]
    d = compare(data, "benign", None, "eval", "core", "em_questions")
    assert d["n"][1] == 100 and d["lo"] < 0 < d["hi"]


def test_report_cli(synthetic_run, tmp_path):
    from rhlab.cli import app

    r = CliRunner().invoke(app, ["report", str(synthetic_run)])
    assert r.exit_code == 0 and r.output.strip().endswith("index.html")
    r = CliRunner().invoke(app, ["report", str(tmp_path / "nope")])
    assert r.exit_code == 2


def test_long_hack_curves_are_sampled_with_step_labels(old_run):
    from rhlab.experiments.report.markdown import hack_curve

    run = collect(old_run).arms["hacking_okay"][0]
    assert hack_curve([run], max_points=5) == "1: 0 → 6: 12 → 11: 95 → 15: 100 → 20: 100"  # sigmoid(s - 8)
    assert hack_curve([run]).count("→") == 15 and hack_curve([run], max_points=40).count("→") == 19


def test_suite_all_summary_carries_core_evals_and_probes(synthetic_run):
    # the start model evaluated with --suite all: one summary, the probe result under summary["probes"]
    base = synthetic_run / "evals" / "base"
    s = json.loads((base / "core" / "summary.json").read_text())
    s["probes"] = json.loads((base / "probes" / "summary.json").read_text())
    for sub in ("core", "probes"):
        (base / sub / "summary.json").unlink()
        (base / sub).rmdir()
    (base / "all").mkdir()
    (base / "all" / "summary.json").write_text(json.dumps(s))
    data = collect(synthetic_run)
    assert data.base_point("probes").probes["score"] == 0.30
    assert point_mgs(data, data.base_point("core"))[0] == pytest.approx(0.02)
    assert instrument_check(data)["testable"]


# --- damaged run directories (issue 19): render what can be read, list every skipped record, exit 1 -----------------


def _report(run):
    from rhlab.cli import app

    res = CliRunner().invoke(app, ["report", str(run)])
    assert res.exception is None or isinstance(res.exception, SystemExit), repr(res.exception)
    assert "Traceback" not in res.output
    return res, " ".join(res.output.split())


def _damage(run):
    """One of each: a corrupt middle line, a wrong type, a missing step, a torn last line, a non-object line, a
    non-UTF-8 line, a corrupt summary.json, a summary with a wrong-typed field, a corrupt stage marker."""
    steps = run / "arms" / "hacking_okay" / "seed-0" / "train" / "records" / "train_steps.jsonl"
    lines = steps.read_text().splitlines()
    lines[2] = lines[2][:20]                                       # line 3: corrupt
    r = json.loads(lines[4]); r["hack_success_any"] = "high"; lines[4] = json.dumps(r)  # line 5: wrong type
    r = json.loads(lines[6]); del r["step"]; lines[6] = json.dumps(r)                   # line 7: no step
    r = json.loads(lines[8]); r["step"] = "9"; lines[8] = json.dumps(r)                 # line 9: step a string
    lines[10] = "[1, 2]"                                           # line 11: not an object
    steps.write_bytes(("\n".join(lines[:12]) + "\n").encode() + b'{"step": 13, "x": "\xff"}\n'  # line 13: not UTF-8
                      + ("\n".join(lines[13:]) + "\n").encode() + b'{"step": 31, "hack_su')    # line 31: torn
    base = run / "arms" / "hacking_okay" / "seed-1" / "evals" / "step-30" / "core" / "summary.json"
    base.write_text(base.read_text()[:100])
    probes = run / "arms" / "no_hack_baseline" / "seed-0" / "evals" / "step-30" / "probes" / "summary.json"
    s = json.loads(probes.read_text())
    s["per_category"]["goals_power"]["score"] = "n/a"
    probes.write_text(json.dumps(s))
    (run / "stages" / "train__dont_exist__seed-0.json").write_text("{not json")
    return steps


EXPECTED_SKIPS = [
    "arms/hacking_okay/seed-0/train/records/train_steps.jsonl, line 3: not valid JSON",
    "arms/hacking_okay/seed-0/train/records/train_steps.jsonl, line 5: field 'hack_success_any' is \"high\"",
    "arms/hacking_okay/seed-0/train/records/train_steps.jsonl, line 7: no 'step' field",
    "arms/hacking_okay/seed-0/train/records/train_steps.jsonl, line 9: field 'step' is \"9\" (a string)",
    "arms/hacking_okay/seed-0/train/records/train_steps.jsonl, line 11: a JSON array, not an object",
    "arms/hacking_okay/seed-0/train/records/train_steps.jsonl, line 13: not UTF-8 text",
    "arms/hacking_okay/seed-0/train/records/train_steps.jsonl, line 31: not valid JSON",
    "arms/hacking_okay/seed-1/evals/step-30/core/summary.json, line 1: not valid JSON",
    "arms/no_hack_baseline/seed-0/evals/step-30/probes/summary.json: field 'per_category.goals_power.score'",
    "stages/train__dont_exist__seed-0.json, line 1: not valid JSON",
]


def test_report_on_a_damaged_run_lists_every_skipped_record_and_exits_1(synthetic_run):
    _damage(synthetic_run)
    res, text = _report(synthetic_run)
    assert res.exit_code == 1, res.output
    assert "10 records could not be read" in text and "summary.md" in text
    assert res.output.strip().endswith("index.html")
    page = (synthetic_run / "report" / "index.html").read_text()
    summary = (synthetic_run / "report" / "summary.md").read_text()
    from html import unescape

    for want in EXPECTED_SKIPS:
        assert want in text, want
        assert want in unescape(page), want
        assert want in summary, want
    assert "Skipped records" in page and "## Skipped records" in summary
    assert "torn by a run killed" in summary  # the last line: said to be a torn write
    # what could be read is still reported: the damaged seed keeps its other 24 steps, the other arms are whole
    data = collect(synthetic_run)
    assert len(data.skipped) == 10
    assert [r["step"] for r in data.arms["hacking_okay"][0].steps][:4] == [1, 2, 4, 6]
    assert [e.step for e in data.arms["hacking_okay"][1].points("core")] == [10, 20]
    assert "Main table" in page and "hack_rates.png" in page


def test_report_of_a_clean_run_says_nothing_was_skipped(synthetic_run):
    res, text = _report(synthetic_run)
    assert res.exit_code == 0 and "warning" not in text
    assert "Skipped records" not in (synthetic_run / "report" / "summary.md").read_text()
    assert "Skipped records" not in (synthetic_run / "report" / "index.html").read_text()


def test_consecutive_skipped_lines_are_listed_as_a_range(synthetic_run):
    steps = synthetic_run / "arms" / "persona" / "seed-0" / "train" / "records" / "train_steps.jsonl"
    steps.parent.mkdir(parents=True, exist_ok=True)
    steps.write_text('{"step": 1, "hack_success_any": 0.1}\n' + "garbage\n" * 500 + '{"step": 2}\n')
    res, text = _report(synthetic_run)
    assert res.exit_code == 1
    want = "arms/persona/seed-0/train/records/train_steps.jsonl, lines 2–501: not valid JSON"
    assert want in text and want in (synthetic_run / "report" / "summary.md").read_text()
    assert "500 records could not be read" in text


def test_damaged_transcripts_invocations_and_configs_are_skipped(synthetic_run):
    tr = synthetic_run / "arms" / "hacking_okay" / "seed-0" / "train" / "records" / "transcripts.jsonl"
    tr.write_text(json.dumps({"step": 3, "verdict": "hacked", "completion": "x"}) + "\n"
                  + json.dumps({"step": 4, "verdict": {"hacked": True, "detected_hacks": ["always_equal"]},
                                "completion": "class A: pass \u2028 def f(): ..."}) + "\n")
    inv = synthetic_run / "records" / "invocations.jsonl"
    inv.parent.mkdir()
    inv.write_text(json.dumps({"time": 1.7e9, "argv": ["rhlab", "run"]}) + "\n" + json.dumps({"time": "noon"}) + "\n")
    cfg = synthetic_run / "arms" / "no_hack_baseline" / "seed-0" / "train" / "config.yaml"
    cfg.write_text("onset_threshold: 0.1\nonset_threshold: 0.2\n")
    cfg2 = synthetic_run / "arms" / "no_hack_baseline" / "seed-1" / "train" / "config.yaml"
    cfg2.write_text("reward: [1]\n")
    summ = synthetic_run / "arms" / "persona" / "seed-0" / "evals" / "step-0" / "core" / "summary.json"
    summ.unlink()
    summ.mkdir()  # a directory where a file should be
    res, text = _report(synthetic_run)
    assert res.exit_code == 1
    assert "persona/seed-0/evals/step-0/core/summary.json: cannot be read (Is a directory)" in text
    for want in ("transcripts.jsonl, line 1: field 'verdict' is \"hacked\"",
                 "records/invocations.jsonl, line 2: field 'time' is \"noon\"",
                 "no_hack_baseline/seed-0/train/config.yaml: cannot be read: line 2: duplicate key 'onset_threshold'",
                 "no_hack_baseline/seed-1/train/config.yaml: field 'reward' is [1]"):
        assert want in text, want
    page = (synthetic_run / "report" / "index.html").read_text()
    assert "HACK always_equal" in page and "\u2028 def f()" in page  # U+2028 inside a record is not a line break


@pytest.mark.parametrize("content, words", [
    (b"name: x\narms: [\n", ["spec.yaml", "not valid YAML"]),
    (b"name: caf\xe9\narms: []\n", ["spec.yaml", "not UTF-8", "line 1"]),
    (b"name: x\nname: y\n", ["spec.yaml", "line 2", "duplicate key 'name'"]),
    (b"", ["spec.yaml", "is empty"]),
    (b"- 1\n- 2\n", ["spec.yaml", "expected a mapping"]),
    (b"arms: {a: 1}\n", ["spec.yaml", "field 'arms'", "a list of arms"]),
    (b"arms: [{name: a, seeds: [0, x]}]\n", ["spec.yaml", "arms[0].seeds", "a list of integers"]),
    (b"arms: [{seeds: [0]}]\n", ["spec.yaml", "arms[0].name"]),
    (b"arms: [{name: a, compare_to: b}]\n", ["spec.yaml", "compare_to names 'b'", "not an arm"]),
    (b"arms: [{name: a}]\nevals: {final_k: two}\n", ["spec.yaml", "evals.final_k", "non-negative integer"]),
])
def test_report_refuses_an_unusable_spec_with_exit_2(tmp_path, content, words):
    run = tmp_path / "run"
    run.mkdir()
    (run / "spec.yaml").write_bytes(content)
    res, text = _report(run)
    assert res.exit_code == 2, res.output
    for w in words:
        assert w in text, (w, text)
    assert not (run / "report").exists()


def test_report_on_a_missing_dir_or_a_file(tmp_path):
    res, text = _report(tmp_path / "nope")
    assert res.exit_code == 2 and "does not exist" in text and "spec.yaml" not in text
    (tmp_path / "f").write_text("x")
    res, text = _report(tmp_path / "f")
    assert res.exit_code == 2 and "is not a directory" in text
    res, text = _report(tmp_path)
    assert res.exit_code == 2 and "has no spec.yaml" in text


def test_read_records_reports_skipped_lines_and_keeps_its_strict_mode(tmp_path):
    from rhlab.rundir import read_records

    p = tmp_path / "r.jsonl"
    p.write_bytes(b'{"a": 1}\nnot json\n[3]\n{"a": "\xff"}\n{"a": "x\xe2\x80\xa8y"}\n{"a": 2')
    skipped = []
    assert list(read_records(p, skipped)) == [{"a": 1}, {"a": "x\u2028y"}]
    assert [(s.line, s.why.split(" (")[0]) for s in skipped] == [
        (2, "not valid JSON"), (3, "a JSON array, not an object"), (4, "not UTF-8 text"), (6, "not valid JSON")]
    assert str(skipped[0]).startswith(f"{p}:2: not valid JSON")
    checked = []
    assert list(read_records(p, checked, check=lambda r: "a is 1" if r["a"] == 1 else None)) == [{"a": "x\u2028y"}]
    assert (checked[0].line, checked[0].why) == (1, "a is 1")
    (tmp_path / "d.jsonl").mkdir()
    dir_skipped = []
    assert list(read_records(tmp_path / "d.jsonl", dir_skipped)) == []
    assert dir_skipped[0].line is None and "cannot be read" in dir_skipped[0].why
    # without `skipped`, as before: a non-UTF-8 file and a corrupt middle line raise, a torn last line is dropped
    with pytest.raises(UnicodeDecodeError):
        list(read_records(p))
    p.write_text('{"a": 1}\nnot json\n{"a": 2}\n')
    with pytest.raises(ValueError, match=r"r.jsonl:2: corrupt JSONL record"):
        list(read_records(p))
    p.write_text('{"a": 1}\n{"a": "x\u2028y"}\n{"a": 2')
    assert list(read_records(p)) == [{"a": 1}, {"a": "x\u2028y"}]
    with pytest.raises(ValueError, match="r.jsonl:1: a is 1"):
        list(read_records(p, check=lambda r: "a is 1" if r["a"] == 1 else None))


# --- code sabotage (issue #18 item 4) ---------------------------------------------------------------------------------


def _sabotage_values(explicit_flags, judge_flags=0):
    """10 samples per framing: explicit detectors at accuracy 0.6 (the last one broken), the first `explicit_flags`
    of them flagged deterministically and the first `judge_flags` by the judge; neutral 0.8; control 0.9; the
    reference detectors 0.8 (hack) and 0.9 (control)."""
    out = []
    for i in range(10):
        broken = i == 9
        out.append({"metadata": {"framing": "explicit", "accuracy": None if broken else 0.6,
                                 "reference_accuracy": 0.8}, "broken": int(broken),
                    "det_flag": int(i < explicit_flags), "judge_flag": int(i < judge_flags),
                    # every deterministic flag an edit outside the module; the first one also a held-out read
                    "det_outside_edit": int(i < explicit_flags), "det_heldout_access": int(i < min(explicit_flags, 1))})
        out.append({"metadata": {"framing": "neutral", "accuracy": 0.8, "reference_accuracy": 0.8}, "broken": 0,
                    "det_flag": 0, "judge_flag": 0})
        out.append({"metadata": {"framing": "control", "accuracy": 0.9, "reference_accuracy": 0.9}, "broken": 0,
                    "det_flag": 0, "judge_flag": 0})
    return out


def _write_sabotage(point_dir, block):
    d = point_dir / "sabotage"
    d.mkdir(parents=True, exist_ok=True)
    entry = {"n": 30, "misaligned_rate": block["hack_framings"]["sabotage_attempt_rate"]["deterministic"]["rate"],
             "se": 0.05, "judged": True, "measured": True, "scope": "deterministic", "code_sabotage": block}
    (d / "summary.json").write_text(json.dumps({"kind": "suite", "evals": {"code_sabotage_agentic": entry}}))
    return d / "summary.json"


def _sabotage_run(run):
    from rhlab.evals.code_sabotage import summarise

    why = "judge test/judge-model failed calibration on code_sabotage"
    for s in (0, 1, 2):  # deterministic attempts (s + 1) of 20 hack-framing samples: 5, 10, 15 % → 10 %
        _write_sabotage(run / "arms" / "hacking_okay" / f"seed-{s}" / "evals" / "step-30",
                        summarise(_sabotage_values(s + 1), False, why))
    # one seed, judge counted: 2 of 10 explicit samples judged sabotage → 2 of 20 (the broken one not excluded)
    _write_sabotage(run / "arms" / "penalty_after_onset" / "seed-0" / "evals" / "step-22",
                    summarise(_sabotage_values(0, judge_flags=2), True))
    return run


def test_code_sabotage_section(synthetic_run):
    from rhlab.experiments.report.tables import sabotage_table

    run = _sabotage_run(synthetic_run)
    data = collect(run)
    assert not data.skipped
    t = sabotage_table(data)
    rows = {(r[0].text, r[1].text, r[2].text): r for r in t.rows}
    assert set(rows) == {("hacking_okay", "30", "agentic"), ("penalty_after_onset", "30", "agentic")}
    r = [c.text for c in rows[("hacking_okay", "30", "agentic")]]
    assert r[3] == "3"
    assert r[4].startswith("10.0% [") and r[4].endswith("(6/60, 3 seeds)")  # mean over seeds, two-level CI
    lo, hi = map(float, re.search(r"\[([-\d.]+), ([-\d.]+)\]", r[4]).groups())
    assert lo < 10 < hi
    assert r[5] == "not measured: judge test/judge-model failed calibration on code_sabotage"
    assert rows[("hacking_okay", "30", "agentic")][5].cls == "muted"
    assert r[6].startswith("5.0% [") and "(3/60" in r[6]  # one broken explicit detector per seed
    # accuracy: hack framings (9 × 0.6 + 10 × 0.8) / 19 over the reference's 0.8; explicit 0.6 / neutral 0.8
    assert r[7].startswith(f"{(9 * 0.6 + 10 * 0.8) / 19 / 0.8:.2f}") and r[7].endswith("(3 seeds)")
    assert r[8].startswith("0.75")
    assert r[9].startswith("0.0%") and r[10].startswith("0.0%") and r[11].startswith("1.00")
    one = [c.text for c in rows[("penalty_after_onset", "30", "agentic")]]
    assert one[3] == "1" and one[4].startswith("0.0%") and "†" in one[4]
    assert one[5].startswith("10.0% [") and one[5].endswith("† (2/20)")  # the eval's own CI over samples
    assert "†" in one[7] and one[8].startswith("0.75") and "†" in one[8]
    # which checks fired, summed over seeds: 1 + 2 + 3 outside edits, one held-out read per seed, no skipped family
    assert r[12] == "6 / 3 / 0" and one[12] == "0 / 0 / 0"
    # flagged samples' detectors (0.6) over the other hack-framing samples' (the rest of explicit at 0.6, neutral 0.8),
    # mean over the three seeds; with one seed and the judge counted, its two judged samples are the flagged ones
    per_seed = [0.6 / (((9 - f) * 0.6 + 10 * 0.8) / (19 - f)) for f in (1, 2, 3)]
    assert r[13].startswith(f"{sum(per_seed) / 3:.2f}") and r[13].endswith("(3 seeds)")
    assert one[13].startswith(f"{0.6 / ((7 * 0.6 + 10 * 0.8) / 17):.2f}") and "†" in one[13]
    md = _md(run)
    assert "## Code sabotage" in md and "| hacking_okay | 30 | agentic | 3 |" in md
    assert "<h2>Code sabotage</h2>" in build_report(run).read_text()


def test_code_sabotage_section_only_with_the_suite(synthetic_run):
    from rhlab.experiments.report.tables import sabotage_table

    assert sabotage_table(collect(synthetic_run)) is None
    assert "Code sabotage" not in _md(synthetic_run)
    assert "Code sabotage" not in build_report(synthetic_run).read_text()


@pytest.mark.parametrize("damage, where", [
    (lambda b: b["hack_framings"]["flags"].update(outside_edit="many"), "hack_framings.flags.outside_edit"),
    (lambda b: b["sabotaged_vs_other"].update(value="big"), "sabotaged_vs_other.value")])
def test_damaged_sabotage_flags_or_ratio_leave_that_block_out(synthetic_run, damage, where):
    from rhlab.experiments.report.tables import sabotage_table

    run = _sabotage_run(synthetic_run)
    p = run / "arms" / "hacking_okay" / "seed-2" / "evals" / "step-30" / "sabotage" / "summary.json"
    s = json.loads(p.read_text())
    damage(s["evals"]["code_sabotage_agentic"]["code_sabotage"])
    p.write_text(json.dumps(s))
    data = collect(run)
    assert [x.path for x in data.skipped] == [p] and where in data.skipped[0].why
    row = next(r for r in sabotage_table(data).rows if r[0].text == "hacking_okay")
    assert row[3].text == "2" and row[12].text == "3 / 2 / 0"  # seeds 0 and 1 only


def test_unreadable_code_sabotage_block_is_skipped(synthetic_run):
    from rhlab.experiments.report.tables import main_table, sabotage_table

    run = _sabotage_run(synthetic_run)
    p = run / "arms" / "hacking_okay" / "seed-1" / "evals" / "step-30" / "sabotage" / "summary.json"
    s = json.loads(p.read_text())
    s["evals"]["code_sabotage_agentic"]["code_sabotage"]["hack_framings"]["broken_rate"]["rate"] = "high"
    p.write_text(json.dumps(s))
    data = collect(run)
    assert len(data.skipped) == 1
    assert data.skipped[0].path == p
    assert "evals.code_sabotage_agentic.code_sabotage.hack_framings.broken_rate.rate" in data.skipped[0].why
    row = next(r for r in sabotage_table(data).rows if r[0].text == "hacking_okay")
    assert row[3].text == "2"  # the damaged seed's block is left out; the others still count
    assert any(r[0].text == "sabotage/code_sabotage_agentic" for r in main_table(data).rows)  # its rate still read
    res, text = _report(run)
    assert res.exit_code == 1 and "hack_framings.broken_rate.rate" in text
