"""Start-up self-test: prove that isolation holds before any model-written code runs.

A worker is started exactly as the pool will start it, and one probe job tries what a hostile job would:
read a secret the host has in its environment, read a file the host just wrote, connect to a server the
host is listening with on loopback, write outside its work dir, run as root, and create a user namespace.
"""

from __future__ import annotations

import json
import os
import secrets
import socket
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from rhlab.sandbox import launcher
from rhlab.sandbox.job import Job
from rhlab.sandbox.worker_handle import WorkerDied, WorkerHandle

PROBE = r'''
import ctypes, json, os, socket, sys
out = {}
out["env_keys"] = sorted(os.environ)
out["env_has_canary"] = any(CANARY in v for v in os.environ.values())
try:
    with open(HOST_FILE) as fh:
        out["host_file"] = fh.read()
except OSError as e:
    out["host_file"] = None
try:
    os.listdir(HOST_DIR)
    out["host_dir_listed"] = True
except OSError:
    out["host_dir_listed"] = False
try:
    s = socket.create_connection(("127.0.0.1", PORT), timeout=1.0)
    s.sendall(b"x")
    out["net"] = "connected"
except OSError as e:
    out["net"] = "refused: %s" % e.__class__.__name__
try:
    with open(os.path.join(RUNTIME, "rhlab-probe-write"), "w") as fh:
        fh.write("x")
    out["wrote_runtime"] = True
except OSError:
    out["wrote_runtime"] = False
out["uid"] = os.getuid()
libc = ctypes.CDLL(None, use_errno=True)
out["userns"] = libc.unshare(0x10000000) == 0
print(json.dumps(out))
'''


@dataclass
class SelftestReport:
    mode: str
    checks: dict[str, tuple[bool, str]] = field(default_factory=dict)
    error: str | None = None

    @property
    def passed(self) -> bool:
        return self.error is None and all(ok for ok, _ in self.checks.values())

    def summary(self) -> str:
        if self.error:
            return self.error
        bad = [f"{name} ({detail})" for name, (ok, detail) in self.checks.items() if not ok]
        return "all checks passed" if not bad else "failed: " + "; ".join(bad)

    def to_dict(self) -> dict:
        return {
            "mode": self.mode,
            "passed": self.passed,
            "error": self.error,
            "checks": {k: {"passed": ok, "detail": d} for k, (ok, d) in self.checks.items()},
        }


def run_selftest(spec_factory: Callable[[int], launcher.WorkerSpec], mode: str) -> SelftestReport:
    report = SelftestReport(mode=mode)
    canary = "rhlab-canary-" + secrets.token_hex(8)
    os.environ["RHLAB_SELFTEST_SECRET"] = canary
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    listener.listen(4)
    listener.settimeout(0.0)
    port = listener.getsockname()[1]
    host_dir = tempfile.mkdtemp(prefix="rhlab-selftest-")
    host_file = Path(host_dir) / "secret.txt"
    host_file.write_text(canary)
    os.chmod(host_dir, 0o755)
    os.chmod(host_file, 0o644)
    worker = None
    try:
        try:
            worker = WorkerHandle(spec_factory(0), mode)
        except (WorkerDied, OSError, TimeoutError) as err:
            report.error = f"worker could not start: {err}"
            return report
        code = (
            f"CANARY={canary!r}\nHOST_FILE={str(host_file)!r}\nHOST_DIR={host_dir!r}\nPORT={port}\n"
            f"RUNTIME={os.path.realpath(os.sys.prefix)!r}\n" + PROBE
        )
        job = Job(files={"probe.py": code}, argv=["python", "probe.py"], timeout_s=20)
        import time

        try:
            reply = worker.request(job.to_wire(1, worker.job_env), time.monotonic() + 40)
        except (WorkerDied, TimeoutError) as err:
            report.error = f"probe job failed: {err}"
            return report
        try:
            out = json.loads(reply["stdout"].strip().splitlines()[-1])
        except (ValueError, IndexError):
            report.error = f"probe printed no report (exit {reply['exit_code']}): {reply['stderr'][-400:]}"
            return report
        try:
            conn, _ = listener.accept()
            conn.close()
            accepted = True
        except OSError:
            accepted = False
        allowed_env = set(worker.job_env)
        extra = sorted(set(out["env_keys"]) - allowed_env)
        report.checks["env_clean"] = (
            not out["env_has_canary"] and not extra,
            "only rhlab's base variables" if not extra else f"unexpected variables: {extra}",
        )
        report.checks["host_file_invisible"] = (
            out["host_file"] is None and not out["host_dir_listed"],
            "host temp file unreadable" if out["host_file"] is None else "read a host file",
        )
        net_ok = out["net"] != "connected" and not accepted
        report.checks["network_refused"] = (net_ok, out["net"])
        report.checks["runtime_read_only"] = (not out["wrote_runtime"], "write to runtime refused")
        report.checks["non_root"] = (out["uid"] != 0, f"uid {out['uid']}")
        report.checks["no_user_namespaces"] = (not out["userns"], "unshare(CLONE_NEWUSER) refused")
        return report
    finally:
        os.environ.pop("RHLAB_SELFTEST_SECRET", None)
        listener.close()
        if worker is not None:
            worker.kill()
        host_file.unlink(missing_ok=True)
        os.rmdir(host_dir)
