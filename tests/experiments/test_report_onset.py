"""The report reads each seed's onset rule (rhlab.train.onset) from its run dir: onset under the count rule when the
run measured a start rate, the old fixed threshold otherwise; summary.md shows the start rate with its CI and the
rule, the hack-rate figure draws them."""

import json

from rhlab.experiments.report import build_report
from rhlab.experiments.report.collect import collect
from rhlab.train.checkpoints import ONSET_RULE
from rhlab.train.onset import StartRate, make_rule


def test_onset_follows_the_recorded_rule(synthetic_run):
    train = synthetic_run / "arms" / "hacking_okay" / "seed-0" / "train"
    rule = make_rule(0.02, StartRate(successes=0, n=256, source="start_rate_samples"), 64)
    (train / ONSET_RULE).write_text(rule.model_dump_json())
    data = collect(synthetic_run)
    s0, s1, _ = data.arms["hacking_okay"]
    # 64 completions a step, start rate 0/256 (CI to 1.43 %): k = 4. Step 5 (4.7 % = 3 hacks) crossed the old 2 %
    # threshold by chance-level counts; the rule waits for step 6 (11.9 % = 8 hacks)
    assert rule.min_hacks == 4 and s0.onset_rule.rule == "count" and s0.onset == 6
    assert s1.onset_rule.rule == "rate" and s1.onset == 6  # no rule file: the fixed 2 % (sigmoid(-3) = 4.7 % at 6)
    build_report(synthetic_run)
    md = (synthetic_run / "report" / "summary.md").read_text()
    assert "start rate [95 % CI]; onset rule" in md
    row = next(ln for ln in md.splitlines() if ln.startswith("| hacking_okay |") or ln.startswith("| hacking okay |"))
    assert "0/256 = 0.0 % [0.0, 1.4]; onset ≥ 4/64" in row and "not measured; onset > 2 %" in row
    assert (synthetic_run / "report" / "hack_rates.png").stat().st_size > 0


def test_an_unreadable_rule_file_is_listed_and_the_threshold_used(synthetic_run):
    train = synthetic_run / "arms" / "hacking_okay" / "seed-0" / "train"
    (train / ONSET_RULE).write_text(json.dumps({"rule": "sometimes"}))
    data = collect(synthetic_run)
    assert data.arms["hacking_okay"][0].onset == 5 and data.arms["hacking_okay"][0].onset_rule.rule == "rate"
    assert any(ONSET_RULE in str(s.path) for s in data.skipped)
