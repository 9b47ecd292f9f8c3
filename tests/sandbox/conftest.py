import os
import time

import pytest

from rhlab.sandbox import Job
from rhlab.sandbox.launcher import SANDBOX_UID_BASE

MARGIN_S = 3.0  # a hostile job must come back within its timeout plus this


def _proc_table() -> dict[int, tuple[int, int, str]]:
    """pid -> (ppid, real uid, state) for every process on the host."""
    table = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/status") as fh:
                fields = dict(line.split(":", 1) for line in fh.read().splitlines() if ":" in line)
            table[int(name)] = (int(fields["PPid"]), int(fields["Uid"].split()[0]), fields["State"].strip())
        except (OSError, KeyError, ValueError):
            continue
    return table


@pytest.fixture
def proc_table():
    """The host's process table reader, for tests that count a uid's live processes."""
    return _proc_table


def sandbox_processes(pool) -> list[int]:
    """Live processes under this pool's workers that run as a job uid (the workers themselves run as root)."""
    table = _proc_table()
    roots = set(pool.worker_process_ids())
    found = []
    for pid, (ppid, uid, state) in table.items():
        if uid < SANDBOX_UID_BASE or state.startswith("Z"):
            continue
        cur, seen = ppid, 0
        while cur and cur not in roots and seen < 64:
            cur, seen = table.get(cur, (0, 0, ""))[0], seen + 1
        if cur in roots:
            found.append(pid)
    return found


def assert_pool_healthy(pool) -> None:
    # One job for each worker kind: the lean worker and the pytest-preloaded one (a job that imports pytest).
    for prefix in ("", "import pytest\n"):
        r = pool.run(Job(files={"ok.py": prefix + "print(sum(range(10)))"}, argv=["python", "ok.py"], timeout_s=10))
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
        while sandbox_processes(pool) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert sandbox_processes(pool) == [], "processes left behind"
    assert_pool_healthy(pool)
    return result


# A job that imports pytest is served by the slot's pytest-preloaded worker, any other by its lean worker: every
# hostile program runs against both (same isolation, different worker process).
PYTEST_WORKER_PREFIX = "import pytest  # routes the job to the pytest-preloaded worker\n"


@pytest.fixture(params=["lean", "pytest"])
def run_contained(request):
    if request.param == "lean":
        return _run_contained

    def run(pool, code: str, *args, **kw):
        return _run_contained(pool, PYTEST_WORKER_PREFIX + code, *args, **kw)

    return run
