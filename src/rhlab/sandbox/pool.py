"""A pool of long-lived fork-server workers, one thread per slot.

Each job is handed to exactly one worker and its future is resolved exactly once: with the worker's result,
or, if the worker dies or stops answering, with a result whose `error` says so (the worker is then replaced
and the job is not retried — a job that kills its worker would otherwise kill the next one too).
"""

from __future__ import annotations

import asyncio
import logging
import os
import queue
import select
import signal
import struct
import subprocess
import tempfile
import threading
import time
import json
from concurrent.futures import Future
from pathlib import Path
from typing import Iterable, Sequence

from rhlab.sandbox import launcher
from rhlab.sandbox.job import Job, JobResult

log = logging.getLogger(__name__)

# Extra seconds a worker gets past a job's own timeout (kill, reap, wipe) before it counts as hung.
HANG_MARGIN_S = 5.0
READY_TIMEOUT_S = 60.0


class SandboxError(RuntimeError):
    pass


class SandboxUnavailable(SandboxError):
    """Isolation could not be established; the message says why and how to opt into weak mode."""


class _WorkerDied(Exception):
    pass


class _Worker:
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
            raise _WorkerDied(f"worker did not start: {ready!r}")
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
                raise _WorkerDied("worker closed its channel")
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
            raise _WorkerDied(f"garbled reply from worker: {err}") from None

    def request(self, wire: dict, deadline: float) -> dict:
        data = json.dumps(wire).encode()
        try:
            self.proc.stdin.write(struct.pack(">Q", len(data)) + data)
            self.proc.stdin.flush()
        except (BrokenPipeError, OSError) as err:
            raise _WorkerDied(f"worker is gone: {err}") from None
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


class SandboxPool:
    """Run jobs in isolated fork-server workers.

    isolation: "auto" (bubblewrap if its self-test passes), "bwrap", or "none". "none" — and "auto" falling
    back to it — requires `allow_weak=True` (or RHLAB_ALLOW_WEAK_SANDBOX=1), because it does not hide host
    files or the network.
    """

    def __init__(
        self,
        workers: int | None = None,
        isolation: str = "auto",
        allow_weak: bool | None = None,
        recycle_after: int = 1000,
        disk_mb: int = 64,
        tmp_mb: int = 32,
        preimport: Sequence[str] | None = None,
        selftest: bool = True,
        extra_ro_binds: Sequence[str] = (),
    ):
        if allow_weak is None:
            allow_weak = os.environ.get("RHLAB_ALLOW_WEAK_SANDBOX") == "1"
        self.n_workers = workers or max(1, os.cpu_count() or 1)
        self.recycle_after = recycle_after
        self.disk_mb = disk_mb
        self.tmp_mb = tmp_mb
        self.preimport = list(preimport if preimport is not None else launcher.DEFAULT_PREIMPORT)
        self.extra_ro_binds = [str(p) for p in extra_ro_binds]  # host paths jobs may read (bwrap mode)
        self._state = tempfile.TemporaryDirectory(prefix="rhlab-sandbox-")
        self._state_dir = Path(self._state.name)
        self._queue: queue.Queue = queue.Queue()
        self._closed = False
        self._next_id = 0
        self._id_lock = threading.Lock()
        # Counters a caller can check: restarts should be rare; frequent ones mean jobs keep breaking workers.
        self.stats = {"jobs": 0, "worker_starts": 0, "worker_failures": 0, "anomalies": 0}
        self._live: dict[int, _Worker] = {}
        self.selftest_report = None
        self.isolation = self._choose_isolation(isolation, allow_weak, selftest)
        self._threads = [
            threading.Thread(target=self._slot_loop, args=(slot,), daemon=True, name=f"rhlab-sandbox-{slot}")
            for slot in range(self.n_workers)
        ]
        self._started = threading.Barrier(self.n_workers + 1)
        self._start_errors: list[BaseException] = []
        for t in self._threads:
            t.start()
        self._started.wait()
        if self._start_errors:
            self.close()
            raise SandboxUnavailable(f"sandbox workers failed to start: {self._start_errors[0]}")

    # -- isolation choice -------------------------------------------------------------------------------------

    def _choose_isolation(self, isolation: str, allow_weak: bool, selftest: bool) -> str:
        from rhlab.sandbox.selftest import run_selftest

        if isolation not in ("auto", "bwrap", "none"):
            raise ValueError(f"unknown isolation {isolation!r}; use auto, bwrap or none")
        if isolation in ("auto", "bwrap"):
            reason = None
            if launcher.bwrap_path() is None:
                reason = "bubblewrap (bwrap) is not installed"
            elif selftest:
                report = run_selftest(self._spec_factory("bwrap"), "bwrap")
                self.selftest_report = report
                if not report.passed:
                    reason = "bubblewrap self-test failed: " + report.summary()
            if reason is None:
                return "bwrap"
            if isolation == "bwrap" or not allow_weak:
                raise SandboxUnavailable(
                    f"{reason}. rhlab will not run model-written code without isolation. Install bubblewrap "
                    "(apt-get install bubblewrap) and allow user namespaces, or opt into the weaker mode "
                    "explicitly with --allow-weak-sandbox / RHLAB_ALLOW_WEAK_SANDBOX=1 (no network or "
                    "filesystem isolation; clean environment and rlimits only)."
                )
            log.warning("SANDBOX IS WEAK: %s; running with isolation=none because weak mode was allowed", reason)
        elif not allow_weak:
            raise SandboxUnavailable(
                "isolation='none' runs model-written code without namespaces; pass allow_weak=True "
                "(--allow-weak-sandbox / RHLAB_ALLOW_WEAK_SANDBOX=1) to accept that"
            )
        if selftest:
            self.selftest_report = run_selftest(self._spec_factory("none"), "none")
        return "none"

    def _spec_factory(self, isolation: str):
        def make(slot: int) -> launcher.WorkerSpec:
            if isolation == "bwrap":
                return launcher.bwrap_spec(
                    slot, self._state_dir, self.disk_mb, self.tmp_mb, self.preimport, self.extra_ro_binds
                )
            return launcher.weak_spec(slot, self._state_dir, self.preimport)

        return make

    # -- slots ----------------------------------------------------------------------------------------------

    def _spawn(self, slot: int) -> _Worker:
        worker = _Worker(self._spec_factory(self.isolation)(slot), self.isolation)
        with self._id_lock:
            self.stats["worker_starts"] += 1
            self._live[slot] = worker
        return worker

    def worker_process_ids(self) -> list[int]:
        """Host pids of the live workers' outermost processes (bwrap, or the worker itself in weak mode)."""
        with self._id_lock:
            return [w.proc.pid for w in self._live.values() if w.alive()]

    def _count(self, key: str) -> None:
        with self._id_lock:
            self.stats[key] += 1

    def _slot_loop(self, slot: int) -> None:
        worker: _Worker | None = None
        try:
            worker = self._spawn(slot)
        except BaseException as err:  # reported to the constructor
            self._start_errors.append(err)
        finally:
            self._started.wait()
        while True:
            item = self._queue.get()
            if item is None:
                break
            job, fut = item
            if not fut.set_running_or_notify_cancel():
                continue
            result, worker = self._run_on(slot, worker, job)
            fut.set_result(result)
        if worker is not None:
            worker.kill()

    def _run_on(self, slot: int, worker: _Worker | None, job: Job) -> tuple[JobResult, _Worker | None]:
        if worker is None or not worker.alive():
            if worker is not None:
                worker.kill()
            try:
                worker = self._spawn(slot)
            except BaseException as err:
                return self._failed(f"could not start a sandbox worker: {err}"), None
        with self._id_lock:
            self._next_id += 1
            self.stats["jobs"] += 1
            job_id = self._next_id
        wire = job.to_wire(job_id, worker.job_env)
        deadline = time.monotonic() + job.timeout_s + HANG_MARGIN_S
        try:
            reply = worker.request(wire, deadline)
        except TimeoutError:
            worker.kill()
            self._count("worker_failures")
            return self._failed("sandbox worker hung past the job's timeout; worker replaced", timed_out=True), None
        except _WorkerDied as err:
            worker.kill()
            self._count("worker_failures")
            return self._failed(f"sandbox worker died during the job ({err}); worker replaced"), None
        if reply.get("id") != job_id:
            worker.kill()
            return self._failed("sandbox worker answered out of turn; worker replaced"), None
        result = JobResult(
            exit_code=reply["exit_code"],
            timed_out=reply["timed_out"],
            stdout=reply["stdout"],
            stderr=reply["stderr"],
            duration_s=reply["duration_s"],
            isolation=self.isolation,
            signal=reply.get("signal"),
            stdout_truncated=reply["stdout_truncated"],
            stderr_truncated=reply["stderr_truncated"],
        )
        if reply.get("anomaly"):
            log.warning("sandbox worker %d: %s; replacing it", slot, reply["anomaly"])
            self._count("anomalies")
        if reply.get("anomaly") or worker.jobs_done >= self.recycle_after:
            worker.kill()  # the worker exits by itself on an anomaly; make sure and start afresh next time
            worker = None
        return result, worker

    def _failed(self, message: str, timed_out: bool = False) -> JobResult:
        return JobResult(
            exit_code=None, timed_out=timed_out, stdout="", stderr="", duration_s=0.0,
            isolation=self.isolation, error=message,
        )

    # -- public API -----------------------------------------------------------------------------------------

    def submit(self, job: Job) -> "Future[JobResult]":
        if self._closed:
            raise SandboxError("pool is closed")
        fut: Future[JobResult] = Future()
        self._queue.put((job, fut))
        return fut

    def run(self, job: Job) -> JobResult:
        return self.submit(job).result()

    def run_many(self, jobs: Iterable[Job]) -> list[JobResult]:
        futures = [self.submit(j) for j in jobs]
        return [f.result() for f in futures]

    async def arun(self, job: Job) -> JobResult:
        return await asyncio.wrap_future(self.submit(job))

    async def arun_many(self, jobs: Iterable[Job]) -> list[JobResult]:
        return list(await asyncio.gather(*(self.arun(j) for j in jobs)))

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        for _ in self._threads:
            self._queue.put(None)
        for t in self._threads:
            t.join(timeout=30)
        self._state.cleanup()

    def __enter__(self) -> "SandboxPool":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:
            pass
