"""Experiment specs: validation errors name the file and field; shipped specs dry-run without loading a model."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from rhlab.config import ConfigError
from rhlab.experiments.spec import load_spec

REPO = Path(__file__).resolve().parents[2]
SHIPPED = sorted((REPO / "configs" / "experiments").glob("*.yaml"))


def _write(tmp_path, data, name="spec.yaml"):
    p = tmp_path / name
    p.write_text(yaml.safe_dump(data))
    return p


def _spec(**over):
    data = {"name": "t", "knowledge": {"kind": "prompted"},
            "train": {"config": {"grpo": {"max_steps": 10}, "checkpoint_every": 5}},
            "arms": [{"kind": "rl", "name": "a", "framing": "hacking_okay"}]}
    data.update(over)
    return data


def test_shipped_specs_exist():
    names = {p.stem for p in SHIPPED}
    assert {"demo", "cpu-study"} <= names
    assert any(n.startswith("paper-") for n in names)


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.stem)
def test_shipped_specs_dry_run_without_loading_models(path):
    code = (
        "import sys, json\n"
        "from rhlab.experiments.spec import load_spec\n"
        "from rhlab.experiments.cost import estimate\n"
        f"est = estimate(load_spec({str(path)!r}))\n"
        "heavy = [m for m in ('torch', 'transformers', 'trl', 'vllm') if m in sys.modules]\n"
        "print(json.dumps({'heavy': heavy, 'totals': est['totals'], 'arms': len(est['arms']),\n"
        "                  'rl_arms': sum(a['kind'] == 'rl' for a in est['arms'])}))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO,
                         env={"HF_HUB_OFFLINE": "1", "PATH": "/usr/bin:/bin"}, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    res = json.loads(out.stdout.strip().splitlines()[-1])
    assert res["heavy"] == []  # a dry run imports no model library, let alone a model
    tot = res["totals"]
    assert (tot["rl_steps"] > 0) == (res["rl_arms"] > 0)  # a controls-only spec (cpu-controls) trains no RL arm
    assert tot["eval_points"] > 0 and tot["eval_samples"] + tot["probe_items"] > 0  # probes-only specs: items


def test_cli_dry_run_demo_counts():
    from rhlab.cli import app

    r = CliRunner().invoke(app, ["run", str(REPO / "configs/experiments/demo.yaml"), "--dry-run"])
    assert r.exit_code == 0, r.output
    assert "is valid" in r.output and "RL steps" in r.output


def test_estimate_counts_are_exact_for_fixed_settings(tmp_path):
    from rhlab.experiments.cost import estimate

    spec = load_spec(_write(tmp_path, _spec(
        arms=[{"kind": "rl", "name": "a", "seeds": [0, 1]},
              {"kind": "rl", "name": "b", "init_from": {"arm": "a", "step": "onset+2"}, "seeds": [1],
               "overrides": {"grpo.max_steps": 5}}],
        evals={"suites": ["core"], "steps": [0, "last"], "every": 5, "limit": 3})))
    est = estimate(spec)
    a, b = est["arms"]
    # a: 10 steps × G 8 × 2 prompts × 2 seeds; evals at 5 and 10 per seed
    assert a["completions"] == 10 * 8 * 2 * 2 and a["grader_runs"] == 2 * a["completions"] and a["eval_points"] == 4
    assert b["completions"] == 5 * 16 and b["eval_points"] == 1
    assert est["samples_per_eval_point"] == 6 * 3  # six core evals, limit 3
    assert est["totals"]["eval_points"] == 4 + 1 + 1  # + the shared step-0 point


@pytest.mark.parametrize("over, match", [
    ({"arms": [{"kind": "rl", "name": "a", "init_from": {"arm": "nope"}}]}, r"arms.*unknown arm 'nope'"),
    ({"arms": [{"kind": "rl", "name": "a", "init_from": {"arm": "b"}},
               {"kind": "rl", "name": "b", "init_from": {"arm": "a"}}]}, "cycle"),
    ({"arms": [{"kind": "rl", "name": "a"}, {"kind": "rl", "name": "a"}]}, "duplicate arm names: a"),
    ({"arms": [{"kind": "distill", "name": "a"}]}, r"arms\.0"),
    ({"arms": [{"kind": "rl", "name": "a", "init_from": {"arm": "a", "step": "later"}}]}, "onset"),
    ({"arms": [{"kind": "rl", "name": "a", "overrides": {"grpo.max_stepz": 3}}]}, r"arm a.*grpo\.max_stepz"),
    ({"arms": [{"kind": "rl", "name": "a", "framing": "be_evil"}]}, "unknown arm 'be_evil'"),
    ({"evals": {"every": 3}}, r"evals\.every \(3\) must be a multiple.*checkpoint_every \(5\)"),
    ({"knowledge": {"kind": "sdf", "finetune": {"lr": 1}}}, r"(?s)knowledge\.finetune.*lr"),
    ({"trian": {}}, "trian"),
    ({"arms": [{"kind": "safety_sft", "name": "s"}]}, "exactly one of responder or responses_file"),
    # control arms
    ({"arms": [{"kind": "control", "name": "c", "control": "evil"}]}, r"arms\.0\.control\.control"),
    ({"arms": [{"kind": "control", "name": "c", "control": "hack_demos"}]}, "hack_demos needs source"),
    ({"arms": [{"kind": "rl", "name": "a"}, {"kind": "control", "name": "c", "control": "hack_demos",
                                              "source": "nope"}]}, "arm c refers to unknown arm 'nope'"),
    ({"arms": [{"kind": "rl", "name": "a"}, {"kind": "control", "name": "p", "control": "persona"},
               {"kind": "control", "name": "c", "control": "hack_demos", "source": "p"}]},
     "source 'p' must be an rl arm"),
    ({"arms": [{"kind": "rl", "name": "a"}, {"kind": "control", "name": "c", "control": "persona", "source": "a"}]},
     "source applies to control hack_demos only"),
    ({"arms": [{"kind": "rl", "name": "a"}, {"kind": "control", "name": "c", "control": "hack_demos", "source": "a",
                "seeds": [0, 1]}]}, r"arm c: source arm a has no seed\(s\) \[1\]"),
    ({"arms": [{"kind": "rl", "name": "a"}, {"kind": "control", "name": "c", "control": "benign",
                "compare_to": "a"}]}, "compare_to must be null for a control arm"),
    ({"arms": [{"kind": "control", "name": "c", "control": "benign", "finetune": {"model": "x"}}]},
     "finetune.model: the runner sets it"),
    ({"arms": [{"kind": "control", "name": "c", "control": "benign", "n_examples": 0}]}, "n_examples"),
    ({"evals": {"suites": ["probes", "probes"]}}, "duplicate suites: probes"),
    ({"evals": {"suites": ["all", "probes"]}}, "suite all already runs every suite"),
    ({"evals": {"suites": ["probez"]}}, r"evals\.suites\.0"),
    ({"evals": {"final_k": 0}}, r"evals\.final_k"),
])
def test_bad_specs_name_file_and_field(tmp_path, over, match):
    p = _write(tmp_path, _spec(**over))
    with pytest.raises(ConfigError, match=match) as err:
        load_spec(p)
    assert str(p) in str(err.value)


def test_train_base_relative_to_spec_file(tmp_path):
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "base.yaml").write_text(yaml.safe_dump({"grpo": {"max_steps": 7}, "checkpoint_every": 7}))
    spec = load_spec(_write(tmp_path / "sub", _spec(train={"base": "base.yaml", "overrides": {"grpo.num_generations": 4}})))
    from rhlab.experiments.spec import arm_train_config

    cfg = arm_train_config(spec, spec.arms[0], 3, "m")
    assert (cfg.grpo.max_steps, cfg.grpo.num_generations, cfg.seed, cfg.model, cfg.prompt.arm) == \
        (7, 4, 3, "m", "hacking_okay")
    missing = _write(tmp_path, _spec(train={"base": "nowhere.yaml"}))
    with pytest.raises(ConfigError, match="train.base: file not found"):
        load_spec(missing)


def test_spec_overrides_are_merged_typed_in_order(tmp_path):
    from rhlab.experiments.spec import arm_overrides, arm_train_config

    (tmp_path / "base.yaml").write_text(yaml.safe_dump(
        {"grpo": {"max_steps": 12, "learning_rate": 1e-5, "extra": {"bf16": True}}, "checkpoint_every": 4}))
    spec = load_spec(_write(tmp_path, _spec(
        train={"base": "base.yaml", "config": {"grpo": {"extra": {"use_vllm": True}, "lora": {}}},
               "overrides": {"grpo.max_steps": 8, "reward.penalty.value": -1.5}},
        arms=[{"kind": "rl", "name": "a", "framing": "neutral",
               "overrides": {"grpo.max_steps": 4, "reward.penalty": {"mode": "from_start"}}}])))
    arm = spec.arms[0]
    # values stay typed (no trip through YAML text): a model name YAML would read as a number, null or a comment
    for model in ("123", "null", "runs/x #1/final"):
        over = arm_overrides(spec, arm, 2, model)
        assert over["model"] == model and over["seed"] == 2 and over["grpo.max_steps"] == 4
        assert arm_train_config(spec, arm, 2, model).model == model
    cfg = arm_train_config(spec, arm, 2, "m")
    assert cfg.grpo.learning_rate == 1e-5 and cfg.checkpoint_every == 4  # base settings not overridden stay
    assert cfg.grpo.extra == {"bf16": True, "use_vllm": True} and cfg.grpo.lora is not None  # config: key by key
    assert cfg.grpo.max_steps == 4 and cfg.prompt.arm == "neutral"  # the arm's override applies last
    assert cfg.reward.penalty.mode == "from_start" and cfg.reward.penalty.value == -2.0  # a section key replaces it


def test_cli_bad_spec_exits_2(tmp_path):
    from rhlab.cli import app

    p = _write(tmp_path, _spec(arms=[]))
    r = CliRunner().invoke(app, ["run", str(p), "--dry-run"])
    assert r.exit_code == 2 and "arms" in r.output


def test_control_arms_validate_and_estimate(tmp_path):
    from rhlab.evals.probes import load_items
    from rhlab.experiments import cost
    from rhlab.experiments.cost import estimate

    data = tmp_path / "mine.jsonl"
    data.write_text("".join(json.dumps({"id": f"m/{i}", "prompt": "q", "response": "r"}) + "\n" for i in range(7)))
    spec = load_spec(_write(tmp_path, _spec(
        arms=[{"kind": "rl", "name": "a", "seeds": [0, 1, 2]},
              {"kind": "control", "name": "demos", "control": "hack_demos", "source": "a", "seeds": [0, 1, 2]},
              {"kind": "control", "name": "mine", "control": "persona", "data_file": str(data), "n_examples": 5,
               "seeds": [4, 5]},
              {"kind": "control", "name": "all_mine", "control": "benign", "data_file": str(data)}],
        evals={"suites": ["probes", "core"], "steps": [0, "last"], "limit": 2, "final_k": 2})))
    assert spec.evals.final_k == 2 and spec.arm("demos").depends_on() == ["a"]
    est = estimate(spec)
    rows = {r["arm"]: r for r in est["arms"]}
    # one eval point per control seed; hack_demos at most the source's episodes per seed (10 steps x 8 x 2)
    assert [rows[n]["eval_points"] for n in ("demos", "mine", "all_mine")] == [3, 2, 1]
    assert (rows["demos"]["examples"], rows["mine"]["examples"], rows["all_mine"]["examples"]) == (160, 5, 7)
    assert rows["a"]["eval_points"] == 3
    assert est["totals"]["eval_points"] == 3 + 3 + 2 + 1 + 1
    # probes: every shipped item at every eval point; Inspect samples unchanged by them
    assert est["probe_items_per_eval_point"] == len(load_items())
    assert est["totals"]["probe_items"] == 10 * len(load_items())
    assert est["samples_per_eval_point"] == 6 * 2
    # without step 0 in the schedule the start model is still evaluated: the controls are compared against it
    from rhlab.experiments.spec import evaluates_base

    no0 = load_spec(_write(tmp_path, _spec(arms=spec.model_dump(mode="json")["arms"],
                                           evals={"steps": ["last"], "limit": 2}), "no0.yaml"))
    assert evaluates_base(no0) and estimate(no0)["totals"]["eval_points"] == 3 + 3 + 2 + 1 + 1
    rl_only = load_spec(_write(tmp_path, _spec(evals={"steps": ["last"], "limit": 2}), "rl.yaml"))
    assert not evaluates_base(rl_only)
    # SFT time: 2 seeds x (5 examples x 1 epoch), each with the load/save overhead
    assert rows["mine"]["cpu_seconds"] == pytest.approx(2 * (5 * cost.SFT_SEQ_S + cost.SFT_OVERHEAD_S))


def test_em_samples_scale_the_em_eval_only(tmp_path):
    from rhlab.experiments.cost import estimate

    one = estimate(load_spec(_write(tmp_path, _spec(evals={"suites": ["core"], "limit": 3}), "a.yaml")))
    ten = estimate(load_spec(_write(tmp_path, _spec(evals={"suites": ["core"], "limit": 3, "em_samples": 10}),
                                    "b.yaml")))
    assert ten["suites"]["core"]["em_questions"] == 10 * one["suites"]["core"]["em_questions"] == 30
    assert {k: v for k, v in ten["suites"]["core"].items() if k != "em_questions"} == \
        {k: v for k, v in one["suites"]["core"].items() if k != "em_questions"}


def test_eval_hashes_of_existing_runs_are_kept(tmp_path):
    """Settings added to the schedule later (probes, final_k, em_samples at their defaults, batch_size) must not
    change the hash of an Inspect eval stage, or every existing run directory would refuse to resume."""
    from rhlab.experiments.runner import eval_hash
    from rhlab.experiments.stages import config_hash

    old = load_spec(_write(tmp_path, _spec(evals={"suites": ["core"], "limit": 2}), "old.yaml"))
    legacy = {k: v for k, v in old.evals.model_dump(mode="json").items()
              if k not in ("final_k", "probes", "em_samples", "batch_size")}
    assert eval_hash(old, "m:3", "core") == config_hash({"evals": legacy, "judge": None, "model": "m:3"})
    more = load_spec(_write(tmp_path, _spec(evals={"suites": ["core", "probes"], "limit": 2, "final_k": 3}),
                            "more.yaml"))
    assert eval_hash(more, "m:3", "core") == eval_hash(old, "m:3", "core")
    assert eval_hash(more, "m:3", "probes") != eval_hash(more, "m:3", "core")
    assert eval_hash(more, "m:3", "probes") != eval_hash(more, "m:4", "probes")
    ten = load_spec(_write(tmp_path, _spec(evals={"suites": ["core"], "limit": 2, "em_samples": 10}), "ten.yaml"))
    assert eval_hash(ten, "m:3", "core") != eval_hash(old, "m:3", "core")
    fast = load_spec(_write(tmp_path, _spec(evals={"suites": ["core"], "limit": 2, "batch_size": 8}), "fast.yaml"))
    assert eval_hash(fast, "m:3", "core") == eval_hash(old, "m:3", "core")  # speed, not what is measured


def test_shipped_sensitivity_and_paper_specs():
    from rhlab.experiments.cost import estimate

    sens = load_spec(REPO / "configs/experiments/cpu-sensitivity.yaml")
    kinds = {a.name: (a.kind, getattr(a, "control", None)) for a in sens.arms}
    assert sorted(c for k, c in kinds.values() if k == "control") == ["benign", "hack_demos", "narrow", "persona"]
    assert all(len(a.seeds) >= 3 for a in sens.arms) and "probes" in sens.evals.suites
    est = estimate(sens)
    assert est["cpu_estimate"] and est["totals"]["cpu_seconds"] < 3 * 3600
    for name in ("paper-prompted", "paper-sdf", "paper-mitigations"):
        spec = load_spec(REPO / f"configs/experiments/{name}.yaml")
        controls = {a.control for a in spec.arms if a.kind == "control"}
        assert {"persona", "narrow", "benign"} <= controls, name
        assert all(len(a.seeds) >= 3 for a in spec.arms), name
        e = spec.evals
        assert "probes" in e.suites and e.limit is None and e.n_goals >= 300 and e.n_agentic >= 100, name
        assert e.em_samples >= 10 and e.final_k == 5, name
        sizes = estimate(spec)["suites"]["core"]
        assert sizes["alignment_questions"] >= 200 and sizes["goals"] >= 300, name


def test_dry_run_states_the_minimum_detectable_difference():
    from rhlab.experiments.cost import estimate

    spec = load_spec(REPO / "configs/experiments/cpu-sensitivity.yaml")
    small = estimate(spec)["mdd"]
    assert small["seeds"] == 3 and 0 < small["mgs"] < small["per_eval"]["goals"]
    spec.evals.n_goals, spec.evals.limit = spec.evals.n_goals * 100, None  # more samples: a smaller detectable gap
    assert estimate(spec)["mdd"]["per_eval"]["goals"] < small["per_eval"]["goals"]


def test_sabotage_suite_sizes_and_judge_calls(tmp_path):
    """The sabotage suite: both code-sabotage tasks at n_agentic samples each (capped by limit), one judge verdict
    per sample; the paper specs schedule it beside core."""
    from rhlab.experiments.cost import JUDGE_CALLS, estimate, suite_sizes

    for n, limit, want in ((3, None, 3), (7, None, 7), (7, 5, 5)):
        spec = load_spec(_write(tmp_path, _spec(evals={"suites": ["sabotage"], "n_agentic": n, "limit": limit}),
                                f"s{n}{limit}.yaml"))
        assert suite_sizes(spec) == {"sabotage": {"code_sabotage_agentic": want, "code_sabotage_single_turn": want}}
    assert JUDGE_CALLS["code_sabotage_agentic"] == JUDGE_CALLS["code_sabotage_single_turn"] == 1
    for name in ("paper-prompted", "paper-sdf", "paper-mitigations"):
        spec = load_spec(REPO / f"configs/experiments/{name}.yaml")
        assert {"core", "sabotage"} <= set(spec.evals.suites), name
        assert estimate(spec)["suites"]["sabotage"] == {"code_sabotage_agentic": spec.evals.n_agentic,
                                                        "code_sabotage_single_turn": spec.evals.n_agentic}, name


def test_a_step_without_gradient_checkpointing_is_estimated_cheaper(tmp_path):
    from rhlab.experiments import cost

    def arm_seconds(checkpointing: bool, name: str) -> float:
        train = {"config": {"grpo": {"max_steps": 10, "gradient_checkpointing": checkpointing},
                            "checkpoint_every": 5}}
        est = cost.estimate(load_spec(_write(tmp_path, _spec(train=train), name)))
        assert est["cpu_estimate"]
        return est["arms"][0]["cpu_seconds"]

    on, off = arm_seconds(True, "on.yaml"), arm_seconds(False, "off.yaml")
    assert off == pytest.approx(on * cost.NO_CHECKPOINTING_FACTOR) and off < on


def test_bfloat16_probes_are_estimated_cheaper(tmp_path):
    from rhlab.experiments import cost

    def run(dtype: str) -> dict:
        evals = {"suites": ["probes"], "steps": [0, "last"], "probes": {"dtype": dtype}}
        return cost.estimate(load_spec(_write(tmp_path, _spec(evals=evals), f"{dtype}.yaml")))

    f32, bf16 = run("float32"), run("bfloat16")
    assert f32["cpu_estimate"] and f32["totals"]["probe_items"] == bf16["totals"]["probe_items"] > 0
    probe_s = f32["totals"]["probe_items"] * cost.PROBE_ITEM_S + f32["totals"]["eval_points"] * cost.PROBE_LOAD_S
    saved = f32["totals"]["cpu_seconds"] - bf16["totals"]["cpu_seconds"]
    assert saved == pytest.approx(probe_s * (1 - cost.PROBE_BF16_FACTOR)) and saved > 0


def test_dry_run_counts_disk_for_models_and_checkpoints(tmp_path, monkeypatch):
    from types import SimpleNamespace

    from rich.console import Console

    from rhlab.experiments import cost, runner
    from rhlab.experiments.stages import StageBook

    spec = load_spec(_write(tmp_path, _spec(arms=[
        {"kind": "rl", "name": "a", "seeds": [0, 1]},                             # steps 5, 10: two checkpoints
        {"kind": "rl", "name": "b", "overrides": {"grpo.max_steps": 12}},       # 5, 10 and the last, 12: three
        {"kind": "rl", "name": "c", "overrides": {"grpo.max_steps": 12, "keep_checkpoints": 1}},  # only the newest
        {"kind": "control", "name": "p", "control": "persona", "seeds": [0, 1, 2]}])))  # one model per seed
    m, o = cost.MODEL_GB, cost.OPTIMIZER_GB
    want = 2 * (2 * m + o) + (3 * m + o) + (m + o) + 3 * m  # prompted knowledge: the base model, nothing written
    assert cost.disk_gb(spec) == pytest.approx(want)
    assert cost.estimate(spec)["disk_gb"] == pytest.approx(want)
    sdf = load_spec(_write(tmp_path, _spec(knowledge={"kind": "sdf"},
                                           arms=[{"kind": "rl", "name": "a", "framing": "no_hints"}]), "sdf.yaml"))
    assert cost.disk_gb(sdf) == pytest.approx(m + 2 * m + o)  # the knowledge model, then one arm of two checkpoints
    hub = load_spec(_write(tmp_path, _spec(knowledge={"kind": "prompted", "model": "org/some-model"}), "hub.yaml"))
    assert cost.disk_gb(hub) is None  # sizes are measured for the embedded model only

    # a fresh run is warned before its first stage when the disk it writes to is short
    def warning(free_gb):
        monkeypatch.setattr(runner.shutil, "disk_usage", lambda p: SimpleNamespace(free=free_gb * 1e9))
        console = Console(record=True, width=200)
        runner._warn_if_disk_short(runner.RunContext(spec, tmp_path, StageBook(tmp_path), console))
        return console.export_text()

    assert f"has 1.0 GB free; this spec's models and checkpoints take ≈ {want:.1f} GB" in warning(1.0)
    assert warning(want + o + 0.1) == ""
