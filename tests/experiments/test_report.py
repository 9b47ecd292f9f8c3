"""`rhlab report` on a synthetic run directory: figures, tables, mitigation verdicts and honest labels."""

import re

from typer.testing import CliRunner

from rhlab.experiments.report import build_report
from rhlab.experiments.report.collect import collect, size_note
from rhlab.experiments.report.html import mitigation_rows


def test_collect_offsets_and_onsets(synthetic_run):
    data = collect(synthetic_run)
    ok0, ok1 = data.arms["hacking_okay"]
    assert ok0.onset == 5 and ok1.onset == 6  # first step with > 2% successful hacks: sigmoid(-3) = 4.7%
    fork = data.arms["penalty_after_onset"][0]
    assert fork.offset == 8 and [e.step for e in fork.evals] == [20]  # its step 12 lands at 8 + 12
    assert data.arms["no_hack_baseline"][0].onset is None
    p, se = data.arms["no_hack_baseline"][0].final_hack_rate()
    assert p == 0.0 and se == 0.0
    assert data.base["core"].mgs == 0.02
    assert 30e9 < data.model_params < 34e9  # parsed from the HF id


def test_mitigation_verdicts_follow_the_numbers(synthetic_run):
    rows = {r["arm"]: r for r in mitigation_rows(collect(synthetic_run))}
    base = rows["no_hack_baseline"]
    assert base["hacking"][0] == "yes" and base["misalignment"][0] == "yes"
    fork = rows["penalty_after_onset"]
    # hacking stopped; MGS 5% is more than 2 SE above the start model's 2% but well below the reference's 15%
    assert fork["hacking"][0] == "yes" and fork["misalignment"][0] == "partly"
    # misalignment split into chat-like and agentic evals (every eval here carries the point's MGS)
    assert fork["chat"].startswith("5.0%") and fork["agentic"].startswith("5.0%")
    assert fork["ref_chat"].startswith("15.0%") and fork["ref_agentic"].startswith("15.0%")


def test_report_page_and_figures(synthetic_run):
    index = build_report(synthetic_run)
    out = index.parent
    for name in ("hack_rates", "mgs", "final_bars", "scatter"):
        png = out / f"{name}.png"
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 5000
        assert f"src='{name}.png'" in index.read_text()
    html = index.read_text()
    # per-eval table: every core eval row, every arm column, and the before-RL column
    for ev in ("em_questions", "goals", "alignment_questions", "monitor_disruption", "exfil_offer", "frame_colleague"):
        assert f"<td>{ev}</td>" in html
    assert "before RL" in html and "penalty_after_onset" in html
    assert "misaligned, chat-like evals" in html and "misaligned, agentic evals" in html
    assert "15.0% ± 1.4" in html  # hacking_okay's final MGS: mean of 16% and 14% ± their SD
    # the judge's measured κ (0.39) is below 0.6: said next to the MGS numbers
    assert "κ = 0.39 &lt; 0.6" in html or "κ = 0.39 < 0.6" in html
    assert html.count("judge weakly calibrated") >= 3
    assert "small model" not in html  # 32B is not small
    # links to training transcripts, relative to the report
    assert re.search(r"href='\.\./arms/hacking_okay/seed-0/train/records/transcripts\.jsonl'", html)
    assert "prevents hacking?" in html and "forked at 8" in html


def test_small_model_and_unknown_judge_are_flagged(synthetic_run):
    import yaml

    spec = yaml.safe_load((synthetic_run / "spec.yaml").read_text())
    spec["knowledge"]["model"] = "embedded"
    spec["judge"] = "openai/some-judge-never-calibrated"
    (synthetic_run / "spec.yaml").write_text(yaml.safe_dump(spec))
    for s in (synthetic_run / "evals").rglob("summary.json"):
        s.unlink()  # so the judge's agreement is looked up, not read from a summary
    html = build_report(synthetic_run).read_text()
    assert "small model (135M parameters)" in html
    assert "judge uncalibrated" in html
    assert size_note(2e9, 1e9) is None and "unknown" in size_note(None, 1e9)


def test_report_cli(synthetic_run, tmp_path):
    from rhlab.cli import app

    r = CliRunner().invoke(app, ["report", str(synthetic_run)])
    assert r.exit_code == 0 and r.output.strip().endswith("index.html")
    r = CliRunner().invoke(app, ["report", str(tmp_path / "nope")])
    assert r.exit_code == 2


def test_markdown_summary_has_the_pages_numbers(synthetic_run):
    build_report(synthetic_run)
    md = (synthetic_run / "report" / "summary.md").read_text()
    arms = [ln for ln in md.splitlines() if ln.startswith("| hacking_okay |")]
    assert len(arms) == 1  # one row per arm, seeds aggregated
    row = arms[0].split(" | ")
    assert row[1] == "2" and row[2] == "5, 6"  # two seeds, their onsets
    assert "15.0% ± 1.4" in arms[0]  # final MGS, the same aggregation as the page
    assert "10: 9.5% ± 0.7; 20: 15.0% ± 1.4" in arms[0]  # MGS at each evaluated step, mean ± SD across seeds
    fork = next(ln for ln in md.splitlines() if ln.startswith("| penalty_after_onset |"))
    assert "forked at 8" in fork and fork.count("→") == 11  # 12 steps, numbered from the fork
    assert "| em_questions | 2.0% ± " in md and "MGS before RL (the RL start model): 2.0%" in md
    assert "## Mitigations" in md and "yes (0.0%" in md
    assert "judge weakly calibrated" in md.split("## Arms")[0]  # the warning precedes the numbers


def test_long_hack_curves_are_sampled_with_step_labels(synthetic_run):
    from rhlab.experiments.report.markdown import hack_curve

    run = collect(synthetic_run).arms["hacking_okay"][0]
    assert hack_curve([run], max_points=5) == "1: 0 → 6: 12 → 11: 95 → 15: 100 → 20: 100"  # sigmoid(s - 8)
    assert hack_curve([run]).count("→") == 15 and hack_curve([run], max_points=40).count("→") == 19
