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
        "print(json.dumps({'heavy': heavy, 'totals': est['totals'], 'arms': len(est['arms'])}))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO,
                         env={"HF_HUB_OFFLINE": "1", "PATH": "/usr/bin:/bin"}, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    res = json.loads(out.stdout.strip().splitlines()[-1])
    assert res["heavy"] == []  # a dry run imports no model library, let alone a model
    assert res["totals"]["rl_steps"] > 0 and res["totals"]["eval_samples"] > 0


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


def test_cli_bad_spec_exits_2(tmp_path):
    from rhlab.cli import app

    p = _write(tmp_path, _spec(arms=[]))
    r = CliRunner().invoke(app, ["run", str(p), "--dry-run"])
    assert r.exit_code == 2 and "arms" in r.output
