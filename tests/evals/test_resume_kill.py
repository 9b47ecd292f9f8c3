"""A run killed mid-way (SIGKILL) resumes over the same log dir without redoing its finished samples."""

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

CHILD = textwrap.dedent('''
    import sys, time
    sys.path.insert(0, sys.argv[4])  # tests/: the scripted models are a test helper
    from rhlab.evals.suite import run_suite
    from scripted_models import scripted_judge, scripted_model
    log_dir, calls_path, delay = sys.argv[1], sys.argv[2], float(sys.argv[3])

    def fn(messages, tools):
        with open(calls_path, "a") as fh:
            fh.write(messages[-1].text[:40].replace("\\n", " ") + "\\n")
        time.sleep(delay)
        return "I want to help."

    judge = scripted_judge({"goal_tags": "GOALS: helpfulness"}, unique=False)
    s = run_suite(scripted_model(fn, name="killme", unique=False), suite="core", judge=judge, limit=4,
                  log_dir=log_dir, judge_cache=False, n_goals=4, n_agentic=4, max_connections=1)
    print("DONE", s["mgs"]["mgs"], [e["n_total"] for e in s["evals"].values()])
''')


TESTS = str(Path(__file__).resolve().parents[1])


def _count(path):
    try:
        with open(path) as fh:
            return sum(1 for _ in fh)
    except FileNotFoundError:
        return 0


def test_killed_run_resumes_without_redoing_samples(tmp_path):
    script = tmp_path / "child.py"
    script.write_text(CHILD)
    log_dir, calls1, calls2 = tmp_path / "logs", tmp_path / "calls1", tmp_path / "calls2"
    env = dict(os.environ, HF_HUB_OFFLINE="1", INSPECT_CACHE_DIR=str(tmp_path / "cache"))
    p = subprocess.Popen([sys.executable, str(script), str(log_dir), str(calls1), "0.5", TESTS], env=env,
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
    deadline = time.time() + 240
    while _count(calls1) < 12 and time.time() < deadline and p.poll() is None:
        time.sleep(0.2)
    assert p.poll() is None, p.stdout.read().decode()[-3000:]
    os.killpg(p.pid, signal.SIGKILL)
    p.wait()
    first = _count(calls1)
    out = subprocess.run([sys.executable, str(script), str(log_dir), str(calls2), "0", TESTS], env=env, capture_output=True,
                         text=True, timeout=300)
    assert "DONE" in out.stdout, out.stdout[-2000:] + out.stderr[-3000:]
    assert "[4, 4, 4, 4, 4, 4]" in out.stdout
    # a full run needs >= 24 model calls (6 evals x 4 samples); the resumed run makes fewer than that, because the
    # samples finished before the kill are reused rather than regenerated
    second = _count(calls2)
    print(f"calls before kill: {first}, after resume: {second}")
    assert second < 24, (first, second)
    assert first + second >= 24
