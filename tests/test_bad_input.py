"""Hostile and careless input through the CLI (issue 19): every case ends with a clear error and a non-zero exit —
never a traceback, a hang, or silent acceptance. Each test names the case it pins down.

The pool's own robustness (worker thread failures, scratch dirs on SIGTERM/SIGINT, disjoint uids of concurrent pools)
is tested in tests/sandbox/test_robustness.py.
"""

import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from rhlab.cli import app

runner = CliRunner()
HACK_FIXTURES = Path(__file__).parent / "hacks" / "fixtures"
REPO = Path(__file__).resolve().parents[1]


def _fails(args: list[str], *words: str, code: int = 2) -> str:
    """Run the CLI; assert a clean failure (exit code, no traceback) whose message holds every word."""
    res = runner.invoke(app, args)
    text = " ".join(res.output.split())  # rich wraps long messages: compare with whitespace collapsed
    assert res.exit_code == code, (res.exit_code, res.output, res.exception)
    assert res.exception is None or isinstance(res.exception, SystemExit), repr(res.exception)
    assert "Traceback" not in res.output
    for w in words:
        assert w in text, (w, text)
    return text


# -- sandbox timeouts: NaN/inf used to hang forever, 0/negative gave a traceback -----------------------------------


@pytest.mark.parametrize("value", ["nan", "inf", "0", "-1", "1e9"])
def test_sandbox_run_rejects_unusable_timeouts(tmp_path, value):
    prog = tmp_path / "p.py"
    prog.write_text("print('hi')\n")
    _fails(["sandbox", "run", str(prog), f"--timeout={value}"], "--timeout", "finite number of seconds")


@pytest.mark.parametrize("value", ["inf", "nan", "-5"])
def test_grade_rejects_unusable_timeouts(tmp_path, value):
    ans = tmp_path / "a.md"
    ans.write_text("```python\ndef has_close_elements(*a):\n    return False\n```\n")
    _fails(["env", "grade", "--task", "humaneval/0", "--answer", str(ans), f"--timeout={value}"], "--timeout", "finite")


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_killing_sandbox_run_leaves_no_scratch_dir(tmp_path, sig):
    prog = tmp_path / "sleep.py"
    prog.write_text("import time\ntime.sleep(60)\n")
    proc = subprocess.Popen([sys.executable, "-m", "rhlab.cli", "sandbox", "run", str(prog), "--timeout", "60"],
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),  # as in a terminal
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=REPO)
    try:
        scratch = None
        deadline = time.monotonic() + 60
        while scratch is None and time.monotonic() < deadline and proc.poll() is None:
            for d in Path(tempfile.gettempdir()).glob("rhlab-sandbox-*"):
                try:
                    if (d / "owner").read_text().split()[0] == str(proc.pid):
                        scratch = d
                except (OSError, IndexError):
                    pass
            time.sleep(0.1)
        assert scratch is not None, proc.stderr.read() if proc.poll() is not None else "no scratch dir seen"
        time.sleep(1.0)  # the job is running now
        proc.send_signal(sig)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode != 0
    assert not scratch.exists(), f"{scratch} left behind after {sig.name}"


# -- config loading: empty, non-UTF-8, duplicate keys, booleans as numbers, NaN -----------------------------------


@pytest.mark.parametrize("content", [b"", b"# just a comment\n\n"])
def test_train_refuses_an_empty_config(tmp_path, content):
    cfg = tmp_path / "empty.yaml"
    cfg.write_bytes(content)
    _fails(["train", "grpo", str(cfg), "--run-dir", str(tmp_path / "run")], "empty.yaml", "is empty")
    assert not (tmp_path / "run").exists()  # nothing started


def test_non_utf8_config_names_file_and_byte_offset(tmp_path):
    cfg = tmp_path / "latin1.yaml"
    cfg.write_bytes(b"model: embedded\n# caf\xe9\n")
    _fails(["train", "grpo", str(cfg), "--run-dir", str(tmp_path / "run")], "latin1.yaml", "not UTF-8", "offset 21", "line 2")
    spec = tmp_path / "spec.yaml"
    spec.write_bytes(b"name: x\n# \xff\xfe\n")
    _fails(["run", str(spec), "--dry-run"], "spec.yaml", "not UTF-8", "0xff")


def test_duplicate_yaml_key_is_an_error(tmp_path):
    cfg = tmp_path / "dup.yaml"
    cfg.write_text("model: embedded\ngrpo:\n  max_steps: 5\n  learning_rate: 1.0e-5\n  max_steps: 50\n")
    _fails(["train", "grpo", str(cfg), "--run-dir", str(tmp_path / "run")], "dup.yaml", "line 5", "duplicate key 'max_steps'",
           "line 3")


def test_booleans_are_not_numbers(tmp_path):
    cfg = tmp_path / "bool.yaml"
    cfg.write_text("model: embedded\ngrpo:\n  max_steps: true\n")
    _fails(["train", "grpo", str(cfg), "--run-dir", str(tmp_path / "run")], "grpo.max_steps", "expected a number",
           "boolean")


@pytest.mark.parametrize("value", [".nan", ".inf", "'-inf'"])
def test_non_finite_numbers_are_refused(tmp_path, value):
    cfg = tmp_path / "nan.yaml"
    cfg.write_text(f"model: embedded\ngrpo:\n  learning_rate: {value}\n")
    _fails(["train", "grpo", str(cfg), "--run-dir", str(tmp_path / "run")], "nan.yaml", "finite")


def test_bad_override_values_are_refused(tmp_path):
    cfg = tmp_path / "ok.yaml"
    cfg.write_text("model: embedded\n")
    _fails(["train", "grpo", str(cfg), "--run-dir", str(tmp_path / "run"), "--set", "grpo.max_steps=false"],
           "grpo.max_steps", "boolean")
    _fails(["train", "grpo", str(cfg), "--run-dir", str(tmp_path / "run"), "--set", "reward.timeout_s=.inf"],
           "reward.timeout_s", "finite")


def test_strict_loading_keeps_what_is_valid(tmp_path):
    # The strictness must not cost valid configs: ints for float fields, a merge key then overriding a merged key.
    from rhlab.config import load_config, load_yaml
    from rhlab.train.config import TrainConfig

    cfg = tmp_path / "ok.yaml"
    cfg.write_text("model: embedded\ngrpo:\n  max_steps: 7\n  temperature: 1\n  learning_rate: 2\n")
    c = load_config(TrainConfig, cfg)
    assert c.grpo.max_steps == 7 and c.grpo.temperature == 1.0 and c.grpo.learning_rate == 2.0
    anchors = tmp_path / "anchors.yaml"
    anchors.write_text("a: &x {k: 1, j: 2}\nb:\n  <<: *x\n  k: 5\n")
    assert load_yaml(anchors)["b"] == {"k": 5, "j": 2}


def test_max_steps_flag_is_validated(tmp_path):
    cfg = tmp_path / "ok.yaml"
    cfg.write_text("model: embedded\n")
    _fails(["train", "grpo", str(cfg), "--run-dir", str(tmp_path / "run"), "--max-steps", "0"], "grpo.max_steps",
           "greater than or equal to 1")
    assert not (tmp_path / "run").exists()


# -- knowledge prompt ------------------------------------------------------------------------------------------


def test_unknown_prompt_arm_lists_the_valid_ones():
    _fails(["knowledge", "prompt", "--arm", "NOSUCHARM"], "unknown arm 'NOSUCHARM'", "neutral", "dont_hack")


def test_unknown_prompt_arm_through_the_real_entry_point():
    # Through the installed entry point too: typer's pretty traceback must not appear on the terminal.
    out = subprocess.run([sys.executable, "-m", "rhlab.cli", "knowledge", "prompt", "--arm", "NOSUCHARM"],
                         capture_output=True, text=True, timeout=120, cwd=REPO)
    assert out.returncode == 2
    assert "Traceback" not in out.stderr and "unknown arm" in out.stderr


# -- rhlab audit: a grader that cannot run, or cannot fail, is not "secure" ----------------------------------------


def test_audit_of_a_missing_grader_command_is_an_error():
    _fails(["hacks", "audit", "--command", "nosuchcmd -q", "--task-dir", str(HACK_FIXTURES / "pytest_project"),
            "--entry", "add"], "nosuchcmd", "could not run")


def test_audit_of_a_grader_exiting_127_is_an_error():
    _fails(["hacks", "audit", "--command", "sh -c 'exit 127'", "--task-dir", str(HACK_FIXTURES / "pytest_project"),
            "--entry", "add"], "could not run", "127")


def test_audit_of_a_task_dir_without_tests_warns_and_stops(tmp_path):
    (tmp_path / "solution.py").write_text("def add(a, b):\n    return a + b\n")
    text = _fails(["hacks", "audit", "--command", "python -m pytest -q", "--task-dir", str(tmp_path), "--entry", "add"],
                  "warning", "no file with 'test'", "this grader cannot be audited", "no tests")
    assert "exploits pass" not in text


def test_audit_of_a_grader_that_passes_everything_stops(tmp_path):
    (tmp_path / "solution.py").write_text("def add(a, b):\n    return a + b\n")
    (tmp_path / "run_tests.py").write_text("print('all good')\n")  # never imports the solution
    _fails(["hacks", "audit", "--command", "python run_tests.py", "--task-dir", str(tmp_path), "--entry", "add"],
           "this grader cannot be audited", "trivially wrong answer")


def test_audit_of_a_grader_the_reference_fails_stops(tmp_path):
    project = HACK_FIXTURES / "pytest_project"
    for f in project.glob("*.py"):
        (tmp_path / f.name).write_text(f.read_text())
    (tmp_path / "solution.py").write_text("def add(a, b):\n    return a - b\n")  # the "reference" is wrong
    _fails(["hacks", "audit", "--command", "python -m pytest -q", "--task-dir", str(tmp_path), "--entry", "add"],
           "this grader cannot be audited", "reference answer does not pass")
    good = tmp_path / "good.py"
    good.write_text("def add(a, b):\n    return a + b\n")
    res = runner.invoke(app, ["hacks", "audit", "--command", "python -m pytest -q", "--task-dir", str(tmp_path),
                              "--entry", "add", "--reference", str(good), "--json"])
    assert res.exit_code == 0, res.output  # a correct --reference makes the same grader auditable


def test_audit_rejects_unusable_timeout():
    _fails(["hacks", "audit", "--command", "python -m pytest -q", "--task-dir", str(HACK_FIXTURES / "pytest_project"),
            "--entry", "add", "--timeout", "nan"], "--timeout", "finite")


# -- rhlab report: a missing dir said "has no spec.yaml", a bad spec or damaged records gave a traceback --------------


def test_report_of_a_missing_dir_says_it_does_not_exist(tmp_path):
    text = _fails(["report", str(tmp_path / "nope")], "does not exist", "run directory")
    assert "spec.yaml" not in text


def test_report_of_a_non_utf8_spec_is_a_clear_error(tmp_path):
    (tmp_path / "spec.yaml").write_bytes(b"name: caf\xe9\n")
    _fails(["report", str(tmp_path)], "spec.yaml", "not UTF-8", "line 1")


def test_report_of_a_malformed_spec_is_a_clear_error(tmp_path):
    (tmp_path / "spec.yaml").write_text("name: x\narms: [{name: a, seeds: [0, one]}]\n")
    _fails(["report", str(tmp_path)], "spec.yaml", "arms[0].seeds", "a list of integers")


def test_report_of_a_damaged_run_lists_skipped_records_and_exits_1(tmp_path):
    run = tmp_path / "run"
    steps = run / "arms" / "a" / "seed-0" / "train" / "records" / "train_steps.jsonl"
    steps.parent.mkdir(parents=True)
    (run / "spec.yaml").write_text("name: t\narms: [{kind: rl, name: a, seeds: [0]}]\n")
    steps.write_text('{"step": 1, "hack_success_any": 0.5, "n_completions": 4}\n{"step": 2, "hack_succ\n'
                     '{"hack_success_any": 0.5}\n{"step": 4, "hack_success_any": "half"}\n'
                     '{"step": 5, "hack_success_any": 0.75, "n_completions": 4}\n')
    text = _fails(["report", str(run)], "3 records could not be read", "train_steps.jsonl, line 2: not valid JSON",
                  "line 3: no 'step' field", "line 4: field 'hack_success_any'", code=1)
    assert text.endswith("index.html")
    summary = (run / "report" / "summary.md").read_text()
    assert "## Skipped records" in summary and "train_steps.jsonl, line 3: no 'step' field" in summary
    assert "50 → 75" in summary  # the two good steps are still reported
    assert "train_steps.jsonl, line 4" in (run / "report" / "index.html").read_text()


# -- rhlab run: dry-runs bounded by what is listed, eval schedules and seeds checked, incomplete reports said -------


def _spec_file(tmp_path, name="spec.yaml", train=None, arms=None, evals=None):
    import yaml

    data = {"name": "t", "knowledge": {"kind": "prompted"},
            "train": {"config": train or {"grpo": {"max_steps": 10}, "checkpoint_every": 5}},
            "arms": arms or [{"kind": "rl", "name": "a", "framing": "hacking_okay"}],
            "evals": {"suites": ["probes"], "steps": [0, "last"], **(evals or {})}}
    p = tmp_path / name
    p.write_text(yaml.safe_dump(data))
    return p


def _limited_dry_run(spec: Path) -> subprocess.CompletedProcess:
    """`rhlab run SPEC --dry-run` in a subprocess limited to 2 GB of address space and 120 s."""
    import resource

    def limit():
        resource.setrlimit(resource.RLIMIT_AS, (2 << 30, 2 << 30))

    return subprocess.run([sys.executable, "-m", "rhlab.cli", "run", str(spec), "--dry-run"], capture_output=True,
                          text=True, timeout=120, cwd=REPO, preexec_fn=limit)


def test_dry_run_memory_does_not_grow_with_setting_values(tmp_path):
    # max_steps 1e23 used to build a set of every checkpoint step (23 GB, killed by the kernel): now out of bounds
    huge = _spec_file(tmp_path, "huge.yaml", train={"grpo": {"max_steps": 10**23}, "checkpoint_every": 5})
    out = _limited_dry_run(huge)
    assert out.returncode == 2, out.stderr[-2000:]
    text = " ".join((out.stdout + out.stderr).split())
    assert "grpo.max_steps" in text and "less than or equal to 1000000" in text and "Traceback" not in text
    # at the bounds (a checkpoint and an eval point at every one of 10^6 steps, 10^6 goals and agentic samples of
    # every suite) the dry run is arithmetic: it finishes in the same memory and time
    big = _spec_file(tmp_path, "big.yaml", train={"grpo": {"max_steps": 1_000_000}, "checkpoint_every": 1},
                     evals={"suites": ["all"], "every": 1, "n_goals": 1_000_000, "n_agentic": 1_000_000})
    out = _limited_dry_run(big)
    assert out.returncode == 0, out.stderr[-2000:]
    text = " ".join(out.stdout.split())
    assert "1000001 eval points" in text and "is valid" in text  # 10^6 checkpoints + the start model


def test_dry_run_of_a_safety_sft_arm_without_source(tmp_path):
    # documented: no source = safety SFT of the RL start model (used to raise KeyError: None)
    spec = _spec_file(tmp_path, arms=[{"kind": "rl", "name": "a", "framing": "hacking_okay"},
                                      {"kind": "safety_sft", "name": "s", "responses_file": "r.jsonl"}])
    res = runner.invoke(app, ["run", str(spec), "--dry-run"])
    assert res.exit_code == 0, (res.output, res.exception)
    text = " ".join(res.output.split())
    assert "3 eval points" in text and "is valid" in text  # start model, a's last checkpoint, the SFT'd model


@pytest.mark.parametrize("evals,arm,words", [
    ({"steps": [-3, "last"]}, {}, ["evals.steps", "step -3 is not an eval step", "0 (the RL start model)",
                                   "'last' or 'onset'"]),
    ({"steps": [0, "last", "last"]}, {}, ["evals.steps", "duplicate steps: last"]),
    ({"steps": [7, "last"]}, {}, ["evals.steps", "step 7 is not a checkpoint", "every 5 up to 10"]),
    ({"every": 0}, {}, ["evals.every", "greater than or equal to 1"]),
    ({"every": 7}, {}, ["evals.every (7) must be a multiple", "checkpoint_every (5)"]),
    ({"limit": -1}, {}, ["evals.limit", "greater than or equal to 1"]),
    ({"final_k": 0}, {}, ["evals.final_k", "greater than or equal to 1"]),
    ({"n_goals": 10**12}, {}, ["evals.n_goals", "less than or equal to 1000000"]),
    ({}, {"seeds": [0, -1]}, ["arms.0", "seeds.1", "greater than or equal to 0"]),
    ({}, {"seeds": [0, 1, 1]}, ["arms.0", "seeds", "duplicate seeds [1]"]),
    ({}, {"seeds": []}, ["arms.0", "seeds", "at least 1 item"]),
])
def test_eval_schedule_and_seeds_are_checked(tmp_path, evals, arm, words):
    spec = _spec_file(tmp_path, arms=[{"kind": "rl", "name": "a", "framing": "hacking_okay", **arm}], evals=evals)
    _fails(["run", str(spec), "--dry-run"], "spec.yaml", *words)


def test_run_says_when_its_report_is_incomplete(tmp_path, monkeypatch):
    # the stages finish (exit 0), but a damaged record the report had to leave out is listed after the report path
    from rhlab.experiments import runner as R

    def fake_rl(ctx, arm, seed, start_model, step_offset):
        d = ctx.arm_dir(arm.name, seed) / "train"
        (d / "records").mkdir(parents=True)
        (d / "records" / "train_steps.jsonl").write_text(
            '{"step": 1, "hack_success_any": 0.5, "n_completions": 4}\n{"step": 2, "hack_su\n')
        return {"train_dir": str(d), "steps": 1, "onset_step": None, "step_offset": 0, "start_model": start_model,
                "checkpoints": [], "final_hack_rate": 0.5}

    monkeypatch.setitem(R.ARM_EXECUTORS, "rl", (R.rl_stage_hash, fake_rl))
    spec = _spec_file(tmp_path, evals={"steps": ["last"]})
    res = runner.invoke(app, ["run", str(spec), "--run-dir", str(tmp_path / "run"), "--no-progress"])
    assert res.exit_code == 0, (res.output, res.exception)
    text = " ".join(res.output.split())
    assert "the report is incomplete: 1 record could not be read" in text
    assert "train_steps.jsonl, line 2: not valid JSON" in text
    assert text.index("index.html") < text.index("the report is incomplete")
    assert (tmp_path / "run" / "report" / "index.html").is_file()
