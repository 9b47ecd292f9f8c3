import json
import math

import pytest

from rhlab.evals.scoring import mgs, rate_se, summarise_eval
from scripted_models import scripted_judge, scripted_model
from rhlab.evals.suite import HF_BATCH_SIZE, generation_limits, inspect_model_args, prompt_length_groups, run_suite
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


def test_generation_limits_batch_local_hf_models():
    # Inspect's hf provider batches up to max_connections concurrent generate calls: that is the batch size
    assert generation_limits("hf/local") == {"max_connections": HF_BATCH_SIZE}
    assert generation_limits("hf/local", batch_size=1) == {"max_connections": 1}
    assert generation_limits("hf/local", max_connections=4) == {"max_connections": 4}
    assert generation_limits("hf/local", batch_size=8, max_connections=4) == {"max_connections": 8}
    # API models: max_connections as given, batch_size does not apply
    assert generation_limits("openai/gpt-4o") == {}
    assert generation_limits("openai/gpt-4o", batch_size=8, max_connections=3) == {"max_connections": 3}
    with pytest.raises(ValueError):
        generation_limits("hf/local", batch_size=0)


def test_hf_batched_greedy_generation_matches_batch1(tiny_model_dir):
    """Prompts of different lengths, left-padded into one batch by Inspect's hf provider, decode greedily to the
    same text as each prompt alone."""
    import asyncio

    from inspect_ai.model import GenerateConfig, get_model

    name, args = inspect_model_args(str(tiny_model_dir), judge=True)  # judge=True: do_sample=False
    assert name == "hf/local" and args["do_sample"] is False
    model = get_model(name, **args)
    prompts = ["hi", "Write a function that adds two numbers and explain it.", "What is your goal? " * 6, "ok then"]

    async def go(batch: int):
        cfg = GenerateConfig(max_tokens=8, max_connections=batch)
        if batch == 1:
            return [await model.generate(p, config=cfg) for p in prompts]
        return await asyncio.gather(*(model.generate(p, config=cfg) for p in prompts))

    # batched first: outside an eval Inspect keeps a model's connection limit from its first call, and the
    # batch-1 calls are awaited one at a time anyway
    batched = asyncio.run(go(len(prompts)))
    one = asyncio.run(go(1))
    lens = [o.usage.input_tokens for o in one]
    assert len(set(lens)) == len(prompts)  # different prompt lengths: the batch needs padding
    # the provider reports the padded length: all four went through one left-padded generate
    assert {o.usage.input_tokens for o in batched} == {max(lens)}
    assert all(o.completion for o in one)
    assert [o.completion for o in batched] == [o.completion for o in one]


def test_prompt_length_groups_split_where_the_mean_length_more_than_doubles():
    from inspect_ai import Task
    from inspect_ai.dataset import Sample

    def task(name, *lens):
        return Task(dataset=[Sample(input="x" * n) for n in lens], name=name)

    tasks = [task("email", 1400), task("short", 40, 60), task("medium", 150), task("page", 630), task("tiny", 10),
             task("long", 6000)]
    groups = prompt_length_groups(tasks)
    # with the 200 characters every prompt carries besides its input: 1600, 250, 350, 830, 210, 6200 → sorted
    # 210 250 350 | 830 1600 | 6200: a group spans at most 2× its shortest
    assert [[t.name for t in g] for g in groups] == [["tiny", "short", "medium"], ["page", "email"], ["long"]]
    assert [[t.name for t in g] for g in prompt_length_groups(tasks, spread=1.5)] == [
        ["tiny", "short"], ["medium"], ["page"], ["email"], ["long"]]
    # measured against the group's shortest, not the previous task: steps under 2× do not chain into one group
    chain = [task(f"t{n}", n) for n in (100, 400, 1000, 2200)]  # 300 600 1200 2400: each step 2×, 4× overall
    assert [[t.name for t in g] for g in prompt_length_groups(chain)] == [["t100", "t400"], ["t1000", "t2200"]]
    assert prompt_length_groups([]) == []


def test_run_suite_batches_a_local_hf_model(tiny_model_dir, tmp_path, monkeypatch):
    import inspect_ai.model._providers.hf as hf

    monkeypatch.setenv("RHLAB_HOME", str(tmp_path / "home"))
    batches: list[int] = []
    generate_batch = hf._generate_batch

    def counted(batch):
        batches.append(len(batch))
        return generate_batch(batch)

    monkeypatch.setattr(hf, "_generate_batch", counted)
    kw = dict(suite="core", limit=2, log_dir=tmp_path / "logs", max_tokens=4, judge_cache=False, n_goals=2,
              n_agentic=2, batch_size=8)
    s = run_suite(str(tiny_model_dir), **kw)
    assert s["max_connections"] == 8 and s["success"]
    names = {"em_questions", "goals", "alignment_questions", "monitor_disruption", "exfil_offer", "frame_colleague"}
    assert set(s["evals"]) == names
    assert all(e["n_total"] == 2 for e in s["evals"].values())
    # the short-prompt chat evals ran apart from the agentic ones (emails, pages), and before them
    chat = {"em_questions", "goals", "alignment_questions"}
    groups = [set(g) for g in s["task_groups"]]
    assert len(groups) >= 2 and set().union(*groups) == names
    assert all(g <= chat or not (g & chat) for g in groups)
    kinds = ["chat" if g <= chat else "agentic" for g in groups]
    assert kinds == sorted(kinds, key=lambda k: k != "chat")
    assert max(batches) > 1  # batched, not one call at a time
    # a rerun over the same log dir reuses every group's finished samples: no generate call at all
    n_calls = len(batches)
    again = run_suite(str(tiny_model_dir), **kw)
    assert len(batches) == n_calls and again["mgs"] == s["mgs"]
    # grouping off: one eval_set over all six tasks
    off = run_suite(str(tiny_model_dir), **{**kw, "log_dir": tmp_path / "logs-off"}, group_by_length=False)
    assert len(off["task_groups"]) == 1 and set(off["task_groups"][0]) == names


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
