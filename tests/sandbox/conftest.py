import os
import time

import pytest

from rhlab.sandbox import Job, SandboxPool
from rhlab.sandbox.launcher import SANDBOX_UID_BASE

MARGIN_S = 3.0  # a hostile job must come back within its timeout plus this


@pytest.fixture(scope="module")
def pool():
    os.environ["OPENAI_API_KEY"] = "sk-rhlab-test-secret-do-not-leak"
    with SandboxPool(workers=2) as p:
        yield p


def sandbox_processes(n_slots: int = 8) -> list[int]:
    """Host pids running as a sandbox job uid (only meaningful when the pool runs as root)."""
    uids = set(range(SANDBOX_UID_BASE, SANDBOX_UID_BASE + n_slots))
    found = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/status") as fh:
                status = fh.read()
        except OSError:
            continue
        uid_line = next((l for l in status.splitlines() if l.startswith("Uid:")), "")
        state = next((l for l in status.splitlines() if l.startswith("State:")), "")
        if uid_line and int(uid_line.split()[1]) in uids and "Z" not in state:
            found.append(int(name))
    return found


def assert_pool_healthy(pool) -> None:
    r = pool.run(Job(files={"ok.py": "print(sum(range(10)))"}, argv=["python", "ok.py"], timeout_s=10))
    assert r.error is None, r.error
    assert r.exit_code == 0 and r.stdout.strip() == "45", r


def _run_contained(pool, code: str, timeout_s: float = 5.0, **kw):
    """Run hostile code; check the contract every hostile job must meet; return the result."""
    start = time.monotonic()
    result = pool.run(Job(files={"main.py": code}, argv=["python", "main.py"], timeout_s=timeout_s, **kw))
    elapsed = time.monotonic() - start
    assert elapsed < timeout_s + MARGIN_S, f"took {elapsed:.1f}s"
    if os.geteuid() == 0:
        deadline = time.monotonic() + 2
        while sandbox_processes() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert sandbox_processes() == [], "processes left behind"
    assert_pool_healthy(pool)
    return result


@pytest.fixture
def run_contained():
    return _run_contained
