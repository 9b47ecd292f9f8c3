"""Pool behaviour: results come back once per job, through sync, batch and async APIs, even when a worker
crashes or hangs; weak isolation is refused unless explicitly allowed."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest

import rhlab
from rhlab.sandbox import Job, Limits, SandboxPool, SandboxUnavailable
from rhlab.sandbox import launcher


def _worker_pids(pool):
    pids = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            cmd = open(f"/proc/{name}/cmdline", "rb").read().split(b"\0")
        except OSError:
            continue
        if any(part == launcher.WORKER_IN_SANDBOX.encode() for part in cmd) and b"bwrap" not in cmd[0]:
            pids.append(int(name))
    return pids


def test_batch_results_match_their_jobs(pool):
    jobs = [Job(files={"m.py": f"print({i} * {i})"}, argv=["python", "m.py"]) for i in range(40)]
    results = pool.run_many(jobs)
    assert [r.stdout.strip() for r in results] == [str(i * i) for i in range(40)]
    assert all(r.isolation == "bwrap" for r in results)


async def test_async_api(pool):
    jobs = [Job(files={"m.py": f"import sys; sys.exit({i % 3})"}, argv=["python", "m.py"]) for i in range(12)]
    results = await pool.arun_many(jobs)
    assert [r.exit_code for r in results] == [i % 3 for i in range(12)]
    single = await pool.arun(Job(files={}, argv=["python", "-c", "print('async')"]))
    assert single.stdout == "async\n"


def test_stdin_files_and_pytest(pool):
    r = pool.run(Job(files={"m.py": "import sys; print(sys.stdin.read().upper())"}, argv=["python", "m.py"],
                     stdin="hello"))
    assert r.stdout.strip() == "HELLO"
    tests = "from sol import f\n\ndef test_ok():\n    assert f(2) == 4\n\ndef test_bad():\n    assert f(3) == 10\n"
    r = pool.run(Job(files={"sol.py": "def f(x):\n    return x * x\n", "test_sol.py": tests},
                     argv=["python", "-m", "pytest", "-q", "-p", "no:cacheprovider"]))
    assert r.exit_code == 1
    assert "1 failed, 1 passed" in r.stdout


def test_exit_semantics_match_python(pool):
    cases = {
        "import sys; sys.exit(0)": 0,
        "import sys; sys.exit(7)": 7,
        "import sys; sys.exit('message')": 1,
        "raise ValueError('x')": 1,
        "import os; os._exit(5)": 5,
        "import atexit, os; atexit.register(lambda: os._exit(9))": 9,
        "import sys; sys.excepthook = lambda *a: print('hooked'); raise RuntimeError": 1,
    }
    for code, expected in cases.items():
        r = pool.run(Job(files={"m.py": code}, argv=["python", "m.py"]))
        fresh = subprocess.run([sys.executable, "-c", code], capture_output=True)
        assert r.exit_code == expected == fresh.returncode, (code, r)


def test_crashed_worker_is_replaced_and_job_reported_once():
    with SandboxPool(workers=1) as pool:
        fut = pool.submit(Job(files={"m.py": "import time; time.sleep(3)"}, argv=["python", "m.py"], timeout_s=10))
        time.sleep(0.5)
        for pid in _worker_pids(pool):
            os.kill(pid, signal.SIGKILL)
        r = fut.result(timeout=20)
        assert r.exit_code is None and "worker" in r.error
        ok = pool.run(Job(files={}, argv=["python", "-c", "print(42)"]))
        assert ok.stdout == "42\n" and ok.error is None


def test_hung_worker_is_replaced():
    with SandboxPool(workers=1) as pool:
        fut = pool.submit(Job(files={}, argv=["python", "-c", "import time; time.sleep(30)"], timeout_s=1))
        time.sleep(0.3)
        pids = _worker_pids(pool)
        for pid in pids:
            os.kill(pid, signal.SIGSTOP)
        start = time.monotonic()
        r = fut.result(timeout=30)
        assert r.timed_out and "hung" in r.error
        assert time.monotonic() - start < 1 + 5 + 3
        ok = pool.run(Job(files={}, argv=["python", "-c", "print(1)"]))
        assert ok.stdout == "1\n"


def test_memory_limit_is_configurable(pool):
    code = "x = bytearray(300 * 1024 * 1024)\nprint('ok')"
    small = pool.run(Job(files={"m.py": code}, argv=["python", "m.py"], limits=Limits(memory_mb=200)))
    big = pool.run(Job(files={"m.py": code}, argv=["python", "m.py"], limits=Limits(memory_mb=1024)))
    assert small.exit_code == 1 and "MemoryError" in small.stderr
    assert big.exit_code == 0 and big.stdout == "ok\n"


def test_bad_job_specs_are_rejected():
    with pytest.raises(ValueError):
        Job(files={"../escape.py": ""}, argv=["python", "x"])
    with pytest.raises(ValueError):
        Job(files={"/abs.py": ""}, argv=["python", "x"])
    with pytest.raises(ValueError):
        Job(files={}, argv=[])
    # A NaN or infinite timeout made the deadline unreachable (the caller hung); 0 or less cannot run anything.
    for bad in (float("nan"), float("inf"), 0, -1, True, "5", 10_000):
        with pytest.raises(ValueError, match="timeout"):
            Job(files={}, argv=["python", "x"], timeout_s=bad)
    for bad in (dict(memory_mb=0), dict(nproc=-1), dict(cpu_s=float("nan")), dict(output_bytes=True)):
        with pytest.raises(ValueError, match="Limits"):
            Limits(**bad)
    with pytest.raises(ValueError, match="workers"):
        SandboxPool(workers=0)


def test_weak_mode_needs_explicit_opt_in(monkeypatch):
    monkeypatch.delenv("RHLAB_ALLOW_WEAK_SANDBOX", raising=False)
    with pytest.raises(SandboxUnavailable, match="allow_weak"):
        SandboxPool(workers=1, isolation="none")
    monkeypatch.setattr(launcher, "bwrap_path", lambda: None)
    with pytest.raises(SandboxUnavailable, match="bubblewrap"):
        SandboxPool(workers=1)
    with SandboxPool(workers=1, allow_weak=True) as weak:
        assert weak.isolation == "none"
        assert not weak.selftest_report.passed  # honest: host files and network are reachable
        r = weak.run(Job(files={"m.py": "import os; print(sorted(os.environ))"}, argv=["python", "m.py"]))
        assert r.isolation == "none" and "OPENAI_API_KEY" not in r.stdout


def test_cli_run_json(tmp_path):
    f = tmp_path / "prog.py"
    f.write_text("import sys\nprint('out')\nprint('err', file=sys.stderr)\nsys.exit(3)\n")
    out = subprocess.run([sys.executable, "-m", "rhlab.cli", "sandbox", "run", str(f), "--timeout", "5", "--json"],
                         capture_output=True, text=True, timeout=60)
    data = json.loads(out.stdout)
    assert data["exit_code"] == 3 and data["stdout"] == "out\n" and data["stderr"] == "err\n"
    assert data["timed_out"] is False and data["isolation"] == "bwrap" and data["duration_s"] > 0


def test_cli_selftest_json():
    out = subprocess.run([sys.executable, "-m", "rhlab.cli", "sandbox", "selftest", "--json"],
                         capture_output=True, text=True, timeout=60)
    data = json.loads(out.stdout)
    assert data["mode"] == "bwrap" and data["passed"]
    assert set(data["checks"]) >= {"env_clean", "host_file_invisible", "network_refused", "non_root"}


def test_read_only_mount_under_tmp_survives_wipes(tmp_path):
    # A virtualenv (or any runtime mount) under /tmp must neither break the per-job wipe nor be deletable.
    shared = tmp_path / "shared-data"
    shared.mkdir()
    (shared / "data.txt").write_text("keep me")
    os.chmod(tmp_path, 0o755)
    with SandboxPool(workers=1, extra_ro_binds=[str(shared)]) as pool:
        code = (f"import os\nprint(open({str(shared / 'data.txt')!r}).read())\n"
                f"try:\n    os.unlink({str(shared / 'data.txt')!r})\nexcept OSError as e:\n    print('refused')\n"
                "open('/tmp/scratch', 'w').write('x')\n")
        for _ in range(3):
            r = pool.run(Job(files={"m.py": code}, argv=["python", "m.py"]))
            assert r.stdout == "keep me\nrefused\n", r
        assert pool.stats["anomalies"] == 0 and pool.stats["worker_starts"] == 1
        r = pool.run(Job(files={}, argv=["python", "-c", "import os; print(os.path.exists('/tmp/scratch'))"]))
        assert r.stdout == "False\n"
    assert (shared / "data.txt").read_text() == "keep me"


def test_pytest_runs_atexit_handlers_like_an_interpreter(pool):
    conftest = "import atexit, os\natexit.register(lambda: os._exit(0))\n"
    tests = "def test_fails():\n    assert False\n"
    for argv in (["python", "-m", "pytest", "-q", "-p", "no:cacheprovider"], ["pytest", "-q", "-p", "no:cacheprovider"]):
        r = pool.run(Job(files={"conftest.py": conftest, "test_x.py": tests}, argv=argv))
        # The test failed, yet the status is 0: the atexit exit ran, as it does after a real `python -m pytest`.
        assert r.stdout.startswith("F") and r.exit_code == 0, (argv, r)


def test_job_kind_routing():
    from rhlab.sandbox.launcher import DEFAULT_PREIMPORT, job_kind, worker_kinds

    kinds = worker_kinds(DEFAULT_PREIMPORT)
    assert set(kinds) == {"lean", "pytest"}
    assert not any(m.startswith(("pytest", "_pytest")) for m in kinds["lean"])
    assert set(DEFAULT_PREIMPORT) <= set(kinds["pytest"])
    assert worker_kinds(["json", "re"]) == {"lean": ["json", "re"]}  # nothing to split off
    lean = {"m.py": "import os\nprint(open('/tmp/pytest-of-root/pytest-1/x').read())\n"}  # a path is not an import
    assert job_kind(kinds, ["python", "m.py"], lean) == "lean"
    for files in ({"m.py": "import os\nimport pytest\n"}, {"m.py": "from _pytest import reports\n"},
                  {"code.bin": b"\x00_pytest.reports\x00"}):
        assert job_kind(kinds, ["python", "m.py"], files) == "pytest", files
    assert job_kind(kinds, ["pytest", "-q"], {}) == "pytest"
    assert job_kind(kinds, ["python", "-m", "pytest"], {}) == "pytest"
    assert job_kind({"lean": []}, ["pytest"], {}) == "lean"


def test_lean_and_pytest_workers_serve_their_jobs():
    # Script jobs run in a worker without pytest loaded (pytest still importable there); jobs that use pytest run in
    # a second, pytest-preloaded worker of the same slot, started on first need.
    probe = "import sys\nprint(sorted(m for m in ('py' + 'test', '_py' + 'test.helpconfig') if m in sys.modules))\n"
    with SandboxPool(workers=1) as pool:
        r = pool.run(Job(files={"m.py": probe}, argv=["python", "m.py"]))
        assert r.ok and r.stdout == "[]\n", r
        assert pool.stats["worker_starts"] == 1
        dodge = "import importlib; print(importlib.import_module('py' + 'test').__name__)"  # not routed: still imports
        r = pool.run(Job(files={}, argv=["python", "-c", dodge]))
        assert r.ok and r.stdout == "pytest\n", r
        r = pool.run(Job(files={"m.py": "import pytest\n" + probe}, argv=["python", "m.py"]))
        assert r.ok and r.stdout == "['_pytest.helpconfig', 'pytest']\n", r
        assert pool.stats["worker_starts"] == 2 and len(pool.worker_process_ids()) == 2
        # Losing one kind's worker leaves the other serving; the lost one is replaced on its next job.
        for pid in _worker_pids(pool):
            if b'"warm_pytest": true' in open(f"/proc/{pid}/cmdline", "rb").read():
                os.kill(pid, signal.SIGKILL)
        handle = pool._live[(0, "pytest")]
        deadline = time.monotonic() + 10
        while handle.alive() and time.monotonic() < deadline:
            time.sleep(0.05)
        r = pool.run(Job(files={"m.py": "print('lean ok')"}, argv=["python", "m.py"]))
        assert r.ok and r.stdout == "lean ok\n", r
        r = pool.run(Job(files={"m.py": "import pytest\nprint('pytest ok')"}, argv=["python", "m.py"]))
        assert r.ok and r.stdout == "pytest ok\n", r


def test_venv_reached_through_a_symlink(tmp_path):
    # `.venv -> /elsewhere/venv` (or a symlinked home): the sandbox mounts the runtime at its real path, so the worker
    # must be started through that path, with the venv's packages (pytest) still importable in there.
    link = tmp_path / "linked-prefix"
    link.symlink_to(os.path.realpath(sys.prefix), target_is_directory=True)
    python = link / os.path.relpath(sys.executable, sys.prefix)
    code = ("from rhlab.sandbox import Job, SandboxPool\n"
            "with SandboxPool(workers=1) as pool:\n"
            "    r = pool.run(Job(files={'m.py': 'import sys, pytest; print(sys.prefix)'}, argv=['python', 'm.py']))\n"
            "print(pool.isolation, r.exit_code, r.stdout.strip())\n")
    src = os.path.dirname(os.path.dirname(rhlab.__file__))  # this checkout's rhlab, wherever it is installed from
    out = subprocess.run([str(python), "-c", code], capture_output=True, text=True, timeout=120,
                         env={**os.environ, "PYTHONPATH": src})
    assert out.returncode == 0, out.stderr[-2000:]
    isolation, status, prefix = out.stdout.split()
    assert (isolation, status) == ("bwrap", "0")
    assert prefix == os.path.realpath(sys.prefix)


def test_interpreter_path_in_sandbox_follows_the_real_prefix(monkeypatch, tmp_path):
    real = tmp_path / "real-venv"
    (real / "bin").mkdir(parents=True)
    (tmp_path / "link").symlink_to(real, target_is_directory=True)
    monkeypatch.setattr(sys, "prefix", str(tmp_path / "link"))
    monkeypatch.setattr(sys, "executable", str(tmp_path / "link" / "bin" / "python"))
    assert launcher._python_in_sandbox() == str(real / "bin" / "python")
    # an interpreter outside its prefix (a system python) keeps its own path
    monkeypatch.setattr(sys, "executable", "/usr/bin/python3")
    assert launcher._python_in_sandbox() == "/usr/bin/python3"
