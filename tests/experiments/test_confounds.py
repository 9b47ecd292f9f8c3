"""Arms compared in the report differ only in what the comparison is about (issue 15 item 5): each rl arm's setting
(sdf | prompted | both), no prompted hints in an SDF-setting arm unless the spec asks for both, and no framing
comparison that also differs in hints or any other setting; the dry run prints each arm's setting."""

from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from rhlab.config import ConfigError
from rhlab.experiments.spec import check_arm_confounds, framing_confounds, load_spec

REPO = Path(__file__).resolve().parents[2]
SHIPPED = sorted((REPO / "configs" / "experiments").glob("*.yaml"))


def _load(tmp_path, arms, kind="sdf", **over):
    data = {"name": "t", "knowledge": {"kind": kind},
            "train": {"config": {"grpo": {"max_steps": 10}, "checkpoint_every": 5}}, "arms": arms, **over}
    p = tmp_path / "spec.yaml"
    p.write_text(yaml.safe_dump(data))
    return load_spec(p)


def test_the_old_demo_pairing_is_refused(tmp_path):
    """The demo once compared sdf_hacking_okay (no hints) with dont_hack (hints): hints and framing at once."""
    arms = [{"kind": "rl", "name": "hacking_okay", "framing": "sdf_hacking_okay"},
            {"kind": "rl", "name": "dont_hack", "framing": "dont_hack"}]
    with pytest.raises(ConfigError, match=r"arm dont_hack: framing dont_hack puts the hack hints .*`setting: both`"):
        _load(tmp_path, arms)
    # asking for both settings on the hinted arm is not enough: the pair still differs in hints
    arms[1]["setting"] = "both"
    with pytest.raises(ConfigError, match=r"hacking_okay and dont_hack \(framing comparison\) differ in more than "
                                          r"the framing: .*hints in the prompt "
                                          r"\(hacking_okay without, dont_hack with\)"):
        _load(tmp_path, arms)


def test_framings_in_one_setting_pass_and_settings_are_derived(tmp_path):
    sdf = _load(tmp_path, [{"kind": "rl", "name": "a", "framing": "sdf_hacking_okay"},
                           {"kind": "rl", "name": "b", "framing": "no_hints"},
                           {"kind": "rl", "name": "c", "framing": "no_hints", "compare_to": "b",
                            "overrides": {"reward.penalty.mode": "from_start"}}])
    assert check_arm_confounds(sdf) == {"a": "sdf", "b": "sdf", "c": "sdf"}
    both = _load(tmp_path, [{"kind": "rl", "name": "a", "framing": "hacking_okay", "setting": "both"},
                            {"kind": "rl", "name": "b", "framing": "dont_hack", "setting": "both"}])
    assert check_arm_confounds(both) == {"a": "both", "b": "both"}
    prompted = _load(tmp_path, [{"kind": "rl", "name": "a", "framing": "hacking_okay"},
                                {"kind": "rl", "name": "b", "framing": "dont_hack"}], kind="prompted")
    assert check_arm_confounds(prompted) == {"a": "prompted", "b": "prompted"}


def test_a_declared_setting_must_match(tmp_path):
    with pytest.raises(ConfigError, match="setting: sdf, but knowledge.kind prompted"):
        _load(tmp_path, [{"kind": "rl", "name": "a", "framing": "hacking_okay", "setting": "sdf"}], kind="prompted")
    with pytest.raises(ConfigError, match=r"setting: both, but .* \(without hints\) is setting sdf"):
        _load(tmp_path, [{"kind": "rl", "name": "a", "framing": "no_hints", "setting": "both"}])


def test_compare_to_across_framings_must_differ_only_in_framing(tmp_path):
    arms = [{"kind": "rl", "name": "ref", "framing": "neutral"},
            {"kind": "rl", "name": "inoc", "framing": "hacking_okay", "compare_to": "ref",
             "overrides": {"grpo.learning_rate": 1.0e-5}}]
    with pytest.raises(ConfigError, match=r"ref and inoc \(compare_to\) differ in more than the framing: framing "
                                          r"\(neutral vs hacking_okay\); grpo.learning_rate"):
        _load(tmp_path, arms, kind="prompted")
    arms[1]["overrides"] = {}
    assert check_arm_confounds(_load(tmp_path, arms, kind="prompted")) == {"ref": "prompted", "inoc": "prompted"}


def test_two_treatments_side_by_side_are_not_a_framing_comparison(tmp_path):
    """cpu-study: please_hack next to the penalty baseline (hacking_okay + penalty) is not compared."""
    spec = _load(tmp_path, [{"kind": "rl", "name": "please", "framing": "please_hack"},
                            {"kind": "rl", "name": "ok", "framing": "hacking_okay"},
                            {"kind": "rl", "name": "base", "framing": "hacking_okay", "compare_to": "ok",
                             "overrides": {"reward.penalty.mode": "from_start"}}], kind="prompted")
    assert framing_confounds(spec) == []


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.stem)
def test_shipped_specs_have_no_confounds(path):
    spec = load_spec(path)  # raises on a confound
    settings = check_arm_confounds(spec)
    assert set(settings) == {a.name for a in spec.arms if a.kind == "rl"}
    if path.stem == "demo":  # the fixed demo: every arm SDF, the two hacking arms differ only in framing
        assert set(settings.values()) == {"sdf"}


def test_dry_run_prints_each_arms_setting_and_start_rate(monkeypatch):
    from rhlab.cli import app

    monkeypatch.setenv("COLUMNS", "250")
    out = CliRunner().invoke(app, ["run", str(REPO / "configs/experiments/cpu-onset.yaml"), "--dry-run"])
    assert out.exit_code == 0, out.output
    assert "setting" in out.output and "start rate" in out.output
    spec = load_spec(REPO / "configs/experiments/cpu-onset.yaml")
    lines = out.output.splitlines()
    cells = {ln.split("│")[1].strip(): [c.strip() for c in ln.split("│")[1:-1]] for ln in lines if ln.startswith("│")}
    header = [c.strip() for c in next(ln for ln in lines if "start rate" in ln).split("┃")[1:-1]]
    setting, start = header.index("setting"), header.index("start rate")
    assert all(cells[a.name][setting] == "sdf" for a in spec.arms)
    # every hacking arm has a start rate (measured or given); its control (every surface closed) cannot hack: none
    for a in spec.arms:
        assert (cells[a.name][start] == "-") == bool(a.compare_to), (a.name, cells[a.name][start])
