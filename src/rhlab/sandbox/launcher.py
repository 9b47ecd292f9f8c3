"""How a fork-server worker is started: inside bubblewrap (isolated) or as a plain process (weak mode)."""

from __future__ import annotations

import json
import os
import re
import shutil
import sys
import sysconfig
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

from rhlab.sandbox import seccomp

WORKER_SOURCE = Path(__file__).with_name("_worker.py")
WORKER_IN_SANDBOX = "/opt/rhlab/worker.py"
JOB_DIR_IN_SANDBOX = "/sandbox/job"
TMP_DIR_IN_SANDBOX = "/tmp"
# One uid per worker slot when we are root, so rlimits (NPROC) really apply; each pool takes its own block of
# uids from `uids.UidBlock` (this is the lowest), so concurrent pools never share a per-uid limit.
SANDBOX_UID_BASE = 61000

# What a job sees: nothing from the host's environment, whatever the host has set.
BASE_ENV = {
    "PATH": "/usr/local/bin:/usr/bin:/bin",
    "HOME": "/tmp",
    "TMPDIR": "/tmp",
    "LANG": "C.UTF-8",
    "LC_ALL": "C.UTF-8",
    "PYTHONDONTWRITEBYTECODE": "1",
    "PYTHONHASHSEED": "0",
    "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1",
}

DEFAULT_PREIMPORT = [
    "pytest", "_pytest.python", "_pytest.runner", "_pytest.assertion", "_pytest.reports", "_pytest.main",
    "_pytest.config", "_pytest.fixtures", "_pytest.terminal", "_pytest.capture",
    "json", "re", "math", "collections", "itertools", "functools", "typing", "string", "heapq", "bisect",
    "random", "decimal", "fractions", "statistics", "dataclasses", "copy", "unittest", "io", "textwrap",
    "hashlib", "operator", "enum", "atexit", "runpy", "threading", "traceback", "inspect", "ast", "datetime",
]

# What a pytest session imports lazily on every run even with the plugins the graders' harness turns off (measured:
# these builtin plugins, and readline via the capture plugin's workaround): imported once in the pytest worker
# instead of in every job child. Plugins a session can turn off (doctest, junitxml, logging, ...) are left out:
# they would make every fork of the pytest worker dearer for the sessions that never load them.
PYTEST_SESSION_IMPORTS = [
    "_pytest._argcomplete", "_pytest.helpconfig", "_pytest.skipping", "_pytest.unittest", "readline",
]


def is_pytest_module(name: str) -> bool:
    return name.split(".", 1)[0] in ("pytest", "_pytest", "pluggy", "iniconfig")


def worker_kinds(preimport: Sequence[str]) -> dict[str, list[str]]:
    """The worker kinds a pool runs per slot and what each preimports: a lean one (no pytest: smaller, so each
    fork, copy-on-write fault set and exit is cheaper) for jobs that never touch pytest, and, when the preimport
    list includes pytest, a pytest-preloaded one for the jobs that do."""
    lean = [m for m in preimport if not is_pytest_module(m)]
    if len(lean) == len(preimport):
        return {"lean": lean}
    full = list(preimport) + [m for m in PYTEST_SESSION_IMPORTS if m not in preimport]
    return {"lean": lean, "pytest": full}


_IMPORTS_PYTEST = re.compile(r"\b(?:import|from)\s+_?pytest\b|\b_pytest\b")
_IMPORTS_PYTEST_B = re.compile(_IMPORTS_PYTEST.pattern.encode())


def job_kind(kinds: Sequence[str], argv: Sequence[str], files) -> str:
    """Which worker kind serves a job: `pytest` for pytest commands and for jobs with a file that imports pytest
    (`import pytest`, `from pytest`, or any mention of `_pytest`, which also catches compiled code); `lean` for
    everything else. Only a matter of speed: both kinds run jobs with exactly the same isolation, and pytest stays
    importable in the lean one (a job the rule misses imports it in its own process, as a fresh interpreter
    would)."""
    if "pytest" not in kinds:
        return "lean"
    prog = os.path.basename(str(argv[0])) if argv else ""
    if prog in ("pytest", "py.test") or "pytest" in [str(a) for a in argv[1:3]]:
        return "pytest"
    for content in files.values():
        if isinstance(content, str):
            if "pytest" in content and _IMPORTS_PYTEST.search(content):
                return "pytest"
        elif b"pytest" in content and _IMPORTS_PYTEST_B.search(content):
            return "pytest"
    return "lean"


@dataclass
class WorkerSpec:
    """Everything needed to start one worker process."""

    argv: list[str]
    pass_fds: tuple[int, ...] = ()
    env: dict[str, str] = field(default_factory=dict)  # the worker process's own environment
    job_env: dict[str, str] = field(default_factory=lambda: dict(BASE_ENV))  # what each job starts with
    job_dir: str = JOB_DIR_IN_SANDBOX
    cwd: str | None = None


def bwrap_path() -> str | None:
    return shutil.which("bwrap")


def _runtime_roots() -> list[str]:
    """Directories the sandboxed Python needs read-only: its base install and the active venv."""
    roots: list[str] = []
    for p in (sys.base_prefix, sys.prefix, sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]):
        real = os.path.realpath(p)
        if not any(real == r or real.startswith(r + os.sep) for r in roots + ["/usr"]):
            roots.append(real)
    return sorted(set(roots))


def _parents(path: str) -> list[str]:
    parts = Path(path).parts[1:-1]
    out, cur = [], ""
    for part in parts:
        cur += "/" + part
        out.append(cur)
    return out


def _python_in_sandbox() -> str:
    """The interpreter's path inside the sandbox. The runtime roots are mounted at their real paths, so a venv
    reached through a symlink (`.venv -> /data/venvs/x`, a symlinked home) is invoked through its real prefix: the
    path as given does not exist in there. Not `realpath(sys.executable)`: a venv's `bin/python` links to the base
    interpreter, which would start without the venv's packages."""
    prefix = os.path.abspath(sys.prefix)
    exe = os.path.abspath(sys.executable)
    if exe.startswith(prefix + os.sep):
        return os.path.join(os.path.realpath(prefix), os.path.relpath(exe, prefix))
    return exe


def write_identity_files(state_dir: Path, uid: int, gid: int) -> tuple[Path, Path]:
    passwd = state_dir / f"passwd-{uid}"
    group = state_dir / f"group-{gid}"
    passwd.write_text(f"root:x:0:0:root:/root:/usr/sbin/nologin\nsandbox:x:{uid}:{gid}:sandbox:/tmp:/bin/sh\n")
    group.write_text(f"root:x:0:\nsandbox:x:{gid}:\n")
    return passwd, group


def bwrap_spec(
    slot: int,
    state_dir: Path,
    disk_mb: int,
    tmp_mb: int,
    preimport: list[str],
    extra_ro_binds: Sequence[str] = (),
    uid_base: int = SANDBOX_UID_BASE,
    warm_pytest: bool = False,
) -> WorkerSpec:
    """A worker inside bubblewrap. As root: no user namespace, jobs run as a per-slot uid with no caps.
    As an ordinary user: a user namespace (jobs share the user's uid, contained by the namespaces)."""
    bwrap = bwrap_path()
    if bwrap is None:
        raise FileNotFoundError("bwrap (bubblewrap) is not installed")
    as_root = os.geteuid() == 0
    job_uid = uid_base + slot if as_root else os.getuid()
    job_gid = uid_base + slot if as_root else os.getgid()
    argv = [bwrap, "--unshare-ipc", "--unshare-pid", "--unshare-net", "--unshare-uts", "--unshare-cgroup-try"]
    if not as_root:
        argv += ["--unshare-user", "--disable-userns"]
    argv += ["--die-with-parent", "--new-session", "--hostname", "sandbox"]
    # Writable, size-capped scratch first, so runtime mounts below may nest inside them if a venv lives there.
    argv += ["--size", str(disk_mb * 1024 * 1024), "--perms", "0755", "--tmpfs", "/sandbox"]
    argv += ["--size", str(tmp_mb * 1024 * 1024), "--perms", "1777", "--tmpfs", "/tmp"]
    argv += ["--ro-bind", "/usr", "/usr"]
    for top in ("/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32"):
        if os.path.islink(top):
            argv += ["--symlink", os.readlink(top), top]
        elif os.path.isdir(top):
            argv += ["--ro-bind", top, top]
    made: set[str] = {"/usr"}
    roots = _runtime_roots() + [os.path.realpath(p) for p in extra_ro_binds]
    for root in roots:
        for parent in _parents(root):
            if parent not in made:
                argv += ["--perms", "0755", "--dir", parent]
                made.add(parent)
        argv += ["--ro-bind", root, root]
    passwd, group = write_identity_files(state_dir, job_uid, job_gid)
    argv += ["--perms", "0755", "--dir", "/etc", "--ro-bind", str(passwd), "/etc/passwd", "--ro-bind", str(group), "/etc/group"]
    if os.path.exists("/etc/ld.so.cache"):
        argv += ["--ro-bind", "/etc/ld.so.cache", "/etc/ld.so.cache"]
    argv += ["--ro-bind", str(WORKER_SOURCE), WORKER_IN_SANDBOX]
    argv += ["--proc", "/proc", "--dev", "/dev"]
    argv += ["--clearenv"]
    for k, v in BASE_ENV.items():
        argv += ["--setenv", k, v]
    if as_root:
        argv += ["--cap-drop", "ALL"]
        # The worker (trusted code) keeps only what it needs: switch jobs to their uid, kill and wipe after them.
        for cap in ("CAP_SETUID", "CAP_SETGID", "CAP_KILL", "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FOWNER"):
            argv += ["--cap-add", cap]
    pass_fds: tuple[int, ...] = ()
    if seccomp.supported():
        fd = os.memfd_create("rhlab-seccomp", 0)
        os.write(fd, seccomp.build_filter())
        os.lseek(fd, 0, os.SEEK_SET)
        argv += ["--seccomp", str(fd)]
        pass_fds = (fd,)
    argv += ["--chdir", "/sandbox"]
    config = {
        "job_dir": JOB_DIR_IN_SANDBOX,
        "tmp_dir": TMP_DIR_IN_SANDBOX,
        "job_uid": job_uid if as_root else None,
        "job_gid": job_gid if as_root else None,
        "pid_namespace": True,
        "preimport": preimport,
        "warm_pytest": warm_pytest,
        "keep_paths": [r for r in roots if r.startswith(("/tmp/", "/sandbox/"))],
    }
    argv += [_python_in_sandbox(), "-I", "-B", WORKER_IN_SANDBOX, json.dumps(config)]
    return WorkerSpec(argv=argv, pass_fds=pass_fds, job_dir=JOB_DIR_IN_SANDBOX)


def weak_spec(slot: int, state_dir: Path, preimport: list[str], uid_base: int = SANDBOX_UID_BASE,
              kind: str = "", warm_pytest: bool = False) -> WorkerSpec:
    """No namespaces: a plain process with a clean environment, rlimits and (as root) a separate uid.
    It cannot hide host files or the network, so it only runs when the user explicitly opts in."""
    as_root = os.geteuid() == 0
    base = state_dir / (f"weak-{slot}-{kind}" if kind else f"weak-{slot}")
    job_dir = base / "job"
    tmp_dir = base / "tmp"
    base.mkdir(exist_ok=True)  # never parents: a scratch dir removed on a signal must stay removed
    if as_root:
        os.chmod(state_dir, 0o711)
        os.chmod(base, 0o711)
    config = {
        "job_dir": str(job_dir),
        "tmp_dir": str(tmp_dir),
        "job_uid": uid_base + slot if as_root else None,
        "job_gid": uid_base + slot if as_root else None,
        "pid_namespace": False,
        "preimport": preimport,
        "warm_pytest": warm_pytest,
    }
    env = dict(BASE_ENV)
    env["HOME"] = str(tmp_dir)
    env["TMPDIR"] = str(tmp_dir)
    argv = [sys.executable, "-I", "-B", str(WORKER_SOURCE), json.dumps(config)]
    return WorkerSpec(argv=argv, env=env, job_env=env, job_dir=str(job_dir), cwd=str(base))
