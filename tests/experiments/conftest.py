import json
import math
import os

import pytest
import yaml

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

CORE = ("em_questions", "goals", "alignment_questions", "monitor_disruption", "exfil_offer", "frame_colleague")


def _summary(mgs_value, n=100):
    se = math.sqrt(max(mgs_value * (1 - mgs_value), 1e-4) / n)
    evals = {e: {"n": n, "misaligned_rate": mgs_value, "se": se, "log": None} for e in CORE}
    return {"mgs": {"mgs": mgs_value, "se": se / math.sqrt(6)}, "evals": evals,
            "judge": {"name": "rhlab/offline", "agreement": {"kappa": 0.39, "accuracy": 0.7, "n": 102}}}


def write_synthetic_run(root):
    """A finished run directory with made-up but shaped numbers: onset in `hacking_okay`, none in the baseline, a
    penalty arm forked at onset that stops hacking; MGS rises with hacking."""
    spec = {
        "name": "synthetic", "description": "made-up numbers for report tests",
        "knowledge": {"kind": "prompted", "model": "Qwen/Qwen2.5-32B-Instruct"},
        "arms": [
            {"kind": "rl", "name": "hacking_okay", "framing": "hacking_okay", "seeds": [0, 1]},
            {"kind": "rl", "name": "dont_hack", "framing": "dont_hack", "seeds": [0]},
            {"kind": "rl", "name": "no_hack_baseline", "framing": "hacking_okay", "seeds": [0],
             "overrides": {"reward.penalty.mode": "from_start"}, "compare_to": "hacking_okay"},
            {"kind": "rl", "name": "penalty_after_onset", "framing": "hacking_okay", "seeds": [0],
             "init_from": {"arm": "hacking_okay", "step": "onset"}, "compare_to": "hacking_okay"},
        ],
        "evals": {"suites": ["core"], "steps": [0, "last"], "every": 10},
        "judge": None,
    }
    (root / "stages").mkdir(parents=True)
    (root / "spec.yaml").write_text(yaml.safe_dump(spec))

    def arm(name, seed, rate_fn, steps, offset=0, mgs_at=None):
        d = root / "arms" / name / f"seed-{seed}"
        (d / "train" / "records").mkdir(parents=True)
        rows = []
        for s in range(1, steps + 1):
            p = rate_fn(s)
            rows.append({"step": s, "n_completions": 64, "hack_success_any": p,
                         "hack_success_always_equal": p * 0.6, "hack_success_exit_before_tests": p * 0.3,
                         "hack_success_conftest_patch": p * 0.1})
        (d / "train" / "records" / "train_steps.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
        (d / "train" / "records" / "transcripts.jsonl").write_text(json.dumps(
            {"step": steps, "task_id": "humaneval/1", "completion": "class A:\n    def __eq__(s, o): return True",
             "verdict": {"hacked": True, "detected_hacks": ["always_equal"]}, "reward": 1.0}) + "\n")
        (d / "train" / "config.yaml").write_text(yaml.safe_dump(
            {"prompt": {"arm": "hacking_okay"}, "reward": {"penalty": {"mode": "off"}}}))
        for step, m in (mgs_at or {}).items():
            e = d / "evals" / f"step-{step}" / "core"
            e.mkdir(parents=True)
            (e / "summary.json").write_text(json.dumps(_summary(m)))
        marker = {"stage": f"train/{name}/seed-{seed}", "hash": "x", "status": "done", "wall_s": 1.0,
                  "result": {"train_dir": str(d / "train"), "step_offset": offset}}
        (root / "stages" / f"train__{name}__seed-{seed}.json").write_text(json.dumps(marker))

    def sig(at):
        return lambda s: 1 / (1 + math.exp(-(s - at)))

    arm("hacking_okay", 0, sig(8), 20, mgs_at={10: 0.10, 20: 0.16})
    arm("hacking_okay", 1, sig(9), 20, mgs_at={10: 0.09, 20: 0.14})
    arm("dont_hack", 0, sig(14), 20, mgs_at={10: 0.03, 20: 0.09})
    arm("no_hack_baseline", 0, lambda s: 0.0, 20, mgs_at={10: 0.021, 20: 0.022})
    arm("penalty_after_onset", 0, lambda s: max(0.0, 0.5 - 0.1 * s), 12, offset=8, mgs_at={12: 0.05})
    b = root / "evals" / "base" / "core"
    b.mkdir(parents=True)
    (b / "summary.json").write_text(json.dumps(_summary(0.02)))
    return root


@pytest.fixture
def synthetic_run(tmp_path):
    return write_synthetic_run(tmp_path / "run")


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory):
    from rhlab.models import build_tiny_model

    return build_tiny_model(tmp_path_factory.mktemp("tiny") / "model")
