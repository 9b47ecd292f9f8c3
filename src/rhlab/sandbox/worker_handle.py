"""The pool's end of one fork-server worker: start it, send a job, read the reply, kill it (`_worker.py` is the
end that runs inside the sandbox). Its own module so that the pool and the self-test, which both drive workers,
import it without importing each other."""

from __future__ import annotations

import json
import logging
import os
import select
import signal
import struct
import subprocess
import time

from rhlab.sandbox import launcher

log = logging.getLogger(__name__)

READY_TIMEOUT_S = 60.0


class WorkerDied(Exception):
    pass


class WorkerHandle:
    def __init__(self, spec: launcher.WorkerSpec, isolation: str):
        self.isolation = isolation
        self.job_env = dict(spec.job_env)
        self.jobs_done = 0
        debug = os.environ.get("RHLAB_SANDBOX_DEBUG") == "1"
        try:
            self.proc = subprocess.Popen(
                spec.argv,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=None if debug else subprocess.DEVNULL,
                pass_fds=spec.pass_fds,
                env=spec.env,
                cwd=spec.cwd,
                start_new_session=True,
                close_fds=True,
            )
        finally:
            for fd in spec.pass_fds:
                os.close(fd)
        self._out = self.proc.stdout.fileno()
        ready = self._read(time.monotonic() + READY_TIMEOUT_S)
        if not ready.get("ready"):
            self.kill()
            raise WorkerDied(f"worker did not start: {ready!r}")
        self.info = ready

    def _read_exact(self, n: int, deadline: float) -> bytes:
        chunks = []
        while n:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError
            ready, _, _ = select.select([self._out], [], [], left)
            if not ready:
                raise TimeoutError
            b = os.read(self._out, n)
            if not b:
                raise WorkerDied("worker closed its channel")
            chunks.append(b)
            n -= len(b)
        return b"".join(chunks)

    def _read(self, deadline: float) -> dict:
        try:
            (n,) = struct.unpack(">Q", self._read_exact(8, deadline))
            return json.loads(self._read_exact(n, deadline))
        except TimeoutError:
            raise
        except (ValueError, struct.error) as err:
            raise WorkerDied(f"garbled reply from worker: {err}") from None

    def _write_all(self, payload: bytes, deadline: float) -> None:
        """Write the request without ever blocking past the deadline (a stopped worker stops reading, and a job
        larger than the pipe buffer would otherwise block this thread, and so the caller, forever)."""
        fd = self.proc.stdin.fileno()
        os.set_blocking(fd, False)
        view = memoryview(payload)
        while view:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError
            _, ready, _ = select.select([], [fd], [], left)
            if not ready:
                continue
            try:
                view = view[os.write(fd, view):]
            except BlockingIOError:
                continue
            except OSError as err:
                raise WorkerDied(f"worker is gone: {err}") from None

    def request(self, wire: dict, deadline: float) -> dict:
        data = json.dumps(wire).encode()
        self._write_all(struct.pack(">Q", len(data)) + data, deadline)
        reply = self._read(deadline)
        self.jobs_done += 1
        return reply

    def alive(self) -> bool:
        return self.proc.poll() is None

    def kill(self) -> None:
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        try:
            self.proc.kill()
        except ProcessLookupError:
            pass
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            log.error("sandbox worker %s did not die", self.proc.pid)
        for stream in (self.proc.stdin, self.proc.stdout):
            try:
                stream.close()
            except Exception:
                pass
