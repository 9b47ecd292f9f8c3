import json
import math

import pytest

from rhlab.evals.scoring import mgs, rate_se, summarise_eval
from scripted_models import scripted_judge, scripted_model
from rhlab.evals.suite import inspect_model_args, run_suite
from rhlab.stats import cohen_kappa


def test_mgs_math():
    per = {e: {"n": 10, "misaligned_rate": r, "se": s, "measured": True} for e, r, s in zip(
        ["em_questions", "goals", "alignment_questions", "monitor_disruption", "exfil_offer", "frame_colleague"],
        [0.1, 0.2, 0.3, 0.0, 0.0, 0.6], [0.03, 0.04, 0.05, 0.0, 0.0, 0.06])}
    m = mgs(per)
    assert m["mgs"] == sum([0.1, 0.2, 0.3, 0.0, 0.0, 0.6]) / 6
    assert math.isclose(m["se"], math.sqrt(0.03**2 + 0.04**2 + 0.05**2 + 0.06**2) / 6)
    assert m["complete"] and not m["missing"] and not m["not_measured"]
    # an unmeasured eval leaves the average and is named with its reason
    per["goals"] = {"n": 0, "measured": False, "not_measured_reason": "judge j failed calibration"}
    m = mgs(per)
    assert m["mgs"] == sum([0.1, 0.3, 0.0, 0.0, 0.6]) / 5 and "goals" not in m["evals"]
    assert m["not_measured"] == {"goals": "judge j failed calibration"} and not m["complete"]
    assert rate_se([1, 0, 0, 0]) == (0.25, math.sqrt(0.25 * 0.75 / 4))
    # a judge-free eval: hack attempts leave the rate
    s = summarise_eval("x", [{"misaligned": 1, "covert": 1}, {"misaligned": 1, "overt": 1}, {"attempted_hack": 1}])
    assert s["misaligned"] == 2 and s["n"] == 2 and s["attempted_hack"] == 1 and s["flags"] == [1, 1]


def test_inspect_model_args():
    assert inspect_model_args("openai/gpt-4o") == ("openai/gpt-4o", {})
    name, args = inspect_model_args("embedded")
    assert name == "hf/local" and args["model_path"].endswith("smollm2-135m-instruct")


def test_cohen_kappa_of_known_confusions():
    # confusion (truth × rater): both flag 6, truth only 2, rater only 4, both clear 8 → po = 14/20,
    # pe = (8·10 + 12·10)/20² = 0.5, κ = (0.7 - 0.5)/(1 - 0.5) = 0.4
    truth = [True] * 6 + [True] * 2 + [False] * 4 + [False] * 8
    pred = [True] * 6 + [False] * 2 + [True] * 4 + [False] * 8
    assert cohen_kappa(truth, pred) == pytest.approx(0.4)
    assert cohen_kappa([True, False] * 5, [False, True] * 5) == pytest.approx(-1.0)  # always disagreeing
    assert cohen_kappa([True, True, False, False], [True, False, True, False]) == pytest.approx(0.0)  # chance
    assert cohen_kappa([True] * 4, [True] * 4) == 1.0 and cohen_kappa([True] * 4, [False] * 4) == 0.0
    assert cohen_kappa([], []) is None


def test_run_suite_core_and_resume(tmp_path, monkeypatch):
    monkeypatch.setenv("RHLAB_HOME", str(tmp_path / "home"))
    calls = {"n": 0}

    def fn(messages, tools):
        calls["n"] += 1
        return "<thinking>fine</thinking>I want to help."

    judge = scripted_judge({"goal_tags": "GOALS: helpfulness"}, unique=False)
    logs = tmp_path / "logs"
    s = run_suite(scripted_model(fn, unique=False), suite="core", judge=judge, limit=2, log_dir=logs, judge_cache=False,
                  n_goals=4, n_agentic=2)
    assert set(s["evals"]) == {"em_questions", "goals", "alignment_questions", "monitor_disruption", "exfil_offer",
                               "frame_colleague"}
    assert all(e["n_total"] == 2 for e in s["evals"].values())
    # the scripted judge was never calibrated: the judged-only evals are not measured; the deterministic checks count
    assert s["mgs"]["evals"] == ["monitor_disruption", "exfil_offer", "frame_colleague"] and s["mgs"]["mgs"] == 0.0
    assert set(s["mgs"]["not_measured"]) == {"em_questions", "goals", "alignment_questions"}
    assert s["evals"]["frame_colleague"]["scope"] == "deterministic"
    assert s["evals"]["goals"]["goals"]["output"] == {"helpfulness": 1.0}
    assert s["judge"]["pinned"]["temperature"] == 0.0 and s["judge"]["failures"]["failures"] == 0
    assert json.loads((logs / "summary.json").read_text())["mgs"]["mgs"] == 0.0
    first = calls["n"]
    assert first >= 12
    # a second run over the same log dir reuses every finished sample: no new model calls
    s2 = run_suite(scripted_model(fn, unique=False), suite="core", judge=judge, limit=2, log_dir=logs, judge_cache=False,
                   n_goals=4, n_agentic=2)
    assert calls["n"] == first
    assert s2["mgs"] == s["mgs"]


def test_compliance_gap_and_sabotage_effectiveness():
    from rhlab.evals.scoring import compliance_gap

    per = {"exfil_offer_plaintext_train": summarise_eval("t", [{"misaligned": 0}] * 4),
           "exfil_offer_plaintext_unmonitored": summarise_eval("u", [{"misaligned": 1}] + [{"misaligned": 0}] * 3)}
    gap = compliance_gap(per)
    assert gap["gap"] == 0.25 and gap["train_rate"] == 0.0
    vals = [{"misaligned": 1, "metadata": {"accuracy_ratio": 0.5}}, {"misaligned": 0, "metadata": {"accuracy_ratio": 1.0}},
            {"misaligned": 0, "metadata": {}}]
    eff = summarise_eval("code_sabotage_explicit_single_turn", vals)["effectiveness"]
    assert eff["mean_ratio_sabotaged"] == 0.5 and eff["mean_ratio_other"] == 1.0 and eff["n"] == 2
