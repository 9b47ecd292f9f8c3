"""The pool never leaves a caller waiting, never leaves scratch behind, and concurrent pools never share a uid.

Issue 19: a NaN timeout killed a slot thread and the caller waited forever; SIGTERM left /tmp/rhlab-sandbox-*
behind; two pools ran jobs as the same uids, so one run's fork bomb starved the other's graders.
"""

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from rhlab.sandbox import Job, SandboxPool


def default_sigint():
    # a shell's background jobs start with SIGINT ignored, and Python then never raises KeyboardInterrupt: give the
    # child the disposition an interactive user's process has, so the test sees what Ctrl-C does
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def test_exception_in_slot_thread_fails_the_job_and_pool_keeps_going():
    with SandboxPool(workers=1) as pool:
        job = Job(files={}, argv=["python", "-c", "print(1)"], timeout_s=5)
        object.__setattr__(job, "timeout_s", float("nan"))  # what Job now refuses: the thread used to die on it
        start = time.monotonic()
        r = pool.submit(job).result(timeout=30)
        assert time.monotonic() - start < 10
        assert r.exit_code is None and "infrastructure" in r.error, r
        ok = pool.run(Job(files={}, argv=["python", "-c", "print(2)"], timeout_s=5))
        assert ok.stdout == "2\n" and ok.error is None, ok
        assert pool.stats["worker_failures"] >= 1


def test_closing_a_pool_answers_every_queued_job():
    pool = SandboxPool(workers=1)
    slow = pool.submit(Job(files={}, argv=["python", "-c", "import time; time.sleep(60)"], timeout_s=60))
    queued = [pool.submit(Job(files={}, argv=["python", "-c", "print(1)"], timeout_s=5)) for _ in range(3)]
    time.sleep(0.5)
    start = time.monotonic()
    pool.close(abort=True)
    assert time.monotonic() - start < 15
    for fut in [slow, *queued]:
        r = fut.result(timeout=1)  # resolved, not left pending
        assert r.error is not None and r.exit_code is None, r


_CHILD = textwrap.dedent("""
    import sys, time
    from rhlab.sandbox import Job, SandboxPool
    with SandboxPool(workers=1) as pool:
        print(pool._state_dir, flush=True)
        pool.submit(Job(files={}, argv=["python", "-c", "import time; time.sleep(60)"], timeout_s=60))
        time.sleep(0.5)
        print("running", flush=True)
        pool.run(Job(files={}, argv=["python", "-c", "import time; time.sleep(60)"], timeout_s=60))
""")


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_scratch_dir_is_removed_when_the_parent_is_signalled(sig):
    proc = subprocess.Popen([sys.executable, "-c", _CHILD], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=default_sigint)
    try:
        state = Path(proc.stdout.readline().strip())
        assert proc.stdout.readline().strip() == "running"
        assert state.is_dir() and state.name.startswith("rhlab-sandbox-")
        proc.send_signal(sig)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode != 0
    deadline = time.monotonic() + 5
    while state.exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not state.exists(), f"{state} left behind after {sig.name}"


def test_stale_scratch_of_a_killed_run_is_swept(tmp_path):
    # SIGKILL cannot be caught: the next pool removes scratch whose owner is gone.
    proc = subprocess.Popen([sys.executable, "-c", _CHILD], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=default_sigint)
    state = Path(proc.stdout.readline().strip())
    assert proc.stdout.readline().strip() == "running"
    proc.kill()
    proc.wait(timeout=30)
    assert state.exists()
    with SandboxPool(workers=1):
        assert not state.exists()


FORK_HOG = """
import os, time
n = 0
while True:
    try:
        if os.fork() == 0:
            time.sleep(60)
            os._exit(0)
        n += 1
    except OSError:
        break
print("forked", n, flush=True)
time.sleep(60)
"""

FORKS_A_FEW = """
import os
for _ in range(8):
    pid = os.fork()
    if pid == 0:
        os._exit(0)
    os.waitpid(pid, 0)
print("forked 8")
"""


@pytest.mark.skipif(os.geteuid() != 0, reason="per-slot uids (and per-uid process limits) only apply as root")
def test_concurrent_pools_have_disjoint_uids_and_one_fork_bomb_does_not_starve_the_other(proc_table):
    with SandboxPool(workers=1) as a, SandboxPool(workers=1) as b:
        assert set(a.uid_range).isdisjoint(b.uid_range)
        hog = a.submit(Job(files={"m.py": FORK_HOG}, argv=["python", "m.py"], timeout_s=15))
        uid = a.uid_range[0]
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            n = sum(1 for _, u, st in proc_table().values() if u == uid and not st.startswith("Z"))
            if n >= 60:
                break
            time.sleep(0.1)
        assert n >= 60, f"the fork bomb only reached {n} processes"  # it holds its uid's whole process limit
        r = b.run(Job(files={"m.py": FORKS_A_FEW}, argv=["python", "m.py"], timeout_s=10))
        assert r.exit_code == 0 and r.stdout == "forked 8\n", r
        assert hog.result(timeout=30).timed_out
