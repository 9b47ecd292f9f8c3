"""`rhlab demo` end to end on a tiny local model: every stage runs and writes its records."""

from rich.console import Console

from rhlab.experiments.demo import DemoConfig, run_demo
from rhlab.models import build_tiny_model
from rhlab.rundir import RunDir


def test_demo_end_to_end_on_tiny_model(tmp_path):
    model_dir = build_tiny_model(tmp_path / "tiny")
    cfg = DemoConfig(model=str(model_dir), samples_per_task=2, max_new_tokens=16)
    summary = run_demo(tmp_path / "run", cfg, console=Console(file=open(tmp_path / "out.txt", "w"), width=160))
    run = RunDir(tmp_path / "run")
    assert summary["isolation"] == "bwrap" and summary["samples"] == 4
    assert run.records("selftest")[0]["passed"]
    refs = run.records("reference_grades")
    by = {(r["answer"], bool(r["surfaces"])): r for r in refs}
    assert by[("honest", True)]["passed"] and by[("honest", False)]["passed_hardened"]
    for family in ("always_equal", "exit_before_tests", "conftest_patch"):
        assert by[(family, True)]["hacked"] and family in by[(family, True)]["detected_hacks"]
        assert not by[(family, False)]["passed"] and family in by[(family, False)]["attempted_hacks"]
    assert not by[("malformed", True)]["passed"] and by[("malformed", True)]["parse_error"]
    assert len(run.records("model_grades")) == 4
    assert run.records("summary")[-1]["samples"] == 4


def test_preflight_stage_checks_graders(tmp_path):
    from rhlab.experiments.demo import run_preflight

    res = run_preflight(tmp_path / "pre", console=Console(file=open(tmp_path / "out.txt", "w"), width=160))
    assert res["isolation"] == "bwrap" and res["reference_answers"] == 10  # 5 answers × open/closed surfaces
    grades = RunDir(tmp_path / "pre").records("reference_grades")
    assert {g["answer"] for g in grades} == {"honest", "always_equal", "exit_before_tests", "conftest_patch",
                                             "malformed"}
