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
import shutil
import signal
import tempfile
import threading
import time
import weakref
from concurrent.futures import Future, InvalidStateError
from pathlib import Path
from typing import Iterable, Sequence

from rhlab.sandbox import launcher
from rhlab.sandbox.job import Job, JobResult
from rhlab.sandbox.selftest import run_selftest
from rhlab.sandbox.uids import UidBlock
from rhlab.sandbox.worker_handle import WorkerDied, WorkerHandle

log = logging.getLogger(__name__)

# Extra seconds a worker gets past a job's own timeout (kill, reap, wipe) before it counts as hung.
HANG_MARGIN_S = 5.0


class SandboxError(RuntimeError):
    pass


class SandboxUnavailable(SandboxError):
    """Isolation could not be established; the message says why and how to opt into weak mode."""



# -- scratch clean-up on every exit path ---------------------------------------------------------------------

STATE_PREFIX = "rhlab-sandbox-"
_OWNER_FILE = "owner"  # "PID STARTTIME" of the process that owns a scratch dir
_LIVE_POOLS: "weakref.WeakSet[SandboxPool]" = weakref.WeakSet()
_HANDLED_SIGNALS = (signal.SIGTERM, signal.SIGHUP)
_installed_signals: set[int] = set()


def _proc_start_time(pid: int) -> str | None:
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return None


def _sweep_stale_scratch() -> None:
    """Remove scratch dirs whose owning process is gone (a run killed with SIGKILL cannot clean up itself)."""
    for d in Path(tempfile.gettempdir()).glob(STATE_PREFIX + "*"):
        try:
            pid, start = (d / _OWNER_FILE).read_text().split()
        except (OSError, ValueError):
            continue  # not ours, or being created right now
        if _proc_start_time(int(pid)) != start:
            shutil.rmtree(d, ignore_errors=True)


def _on_fatal_signal(signum, frame) -> None:
    """SIGTERM/SIGHUP with no handler of the application's own: kill our workers, remove our scratch, then die of
    the signal as the process would have (exit status unchanged)."""
    for pool in list(_LIVE_POOLS):
        try:
            pool._emergency_cleanup()
        except Exception:
            pass
    signal.signal(signum, signal.SIG_DFL)
    os.kill(os.getpid(), signum)


def _install_signal_cleanup() -> None:
    # Only where the signal would otherwise kill us outright: an application's own handler (or SIG_IGN) is left
    # alone — it unwinds through `close()` itself. Signal handlers can only be set from the main thread.
    if threading.current_thread() is not threading.main_thread():
        return
    for sig in _HANDLED_SIGNALS:
        if sig in _installed_signals:
            continue
        if signal.getsignal(sig) == signal.SIG_DFL:
            signal.signal(sig, _on_fatal_signal)
            _installed_signals.add(sig)


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
        self._closed = True  # until fully started: close() and __del__ then have nothing to undo
        if allow_weak is None:
            allow_weak = os.environ.get("RHLAB_ALLOW_WEAK_SANDBOX") == "1"
        if workers is not None and (isinstance(workers, bool) or not isinstance(workers, int) or workers < 1):
            raise ValueError(f"workers must be a positive integer, got {workers!r}")
        self.n_workers = workers or max(1, os.cpu_count() or 1)
        self.recycle_after = recycle_after
        self.disk_mb = disk_mb
        self.tmp_mb = tmp_mb
        self.preimport = list(preimport if preimport is not None else launcher.DEFAULT_PREIMPORT)
        # Per slot: a lean worker, and (lazily, on the first job that needs it) a pytest-preloaded one.
        self._kinds = launcher.worker_kinds(self.preimport)
        self.extra_ro_binds = [str(p) for p in extra_ro_binds]  # host paths jobs may read (bwrap mode)
        self._live: dict[tuple[int, str], WorkerHandle] = {}
        self._uids: UidBlock | None = None
        self._owner_pid = os.getpid()  # a forked child inherits this object but must never tear down our workers
        self._dying = False  # set by a fatal signal: slot threads must not start workers (or write scratch) again
        self._queue: queue.Queue = queue.Queue()
        self._next_id = 0
        self._id_lock = threading.Lock()
        self._threads: list[threading.Thread] = []
        # Counters a caller can check: restarts should be rare; frequent ones mean jobs keep breaking workers.
        self.stats = {"jobs": 0, "worker_starts": 0, "worker_failures": 0, "anomalies": 0}
        self.selftest_report = None
        self.isolation = isolation
        _sweep_stale_scratch()
        self._state = tempfile.TemporaryDirectory(prefix=STATE_PREFIX)
        self._state_dir = Path(self._state.name)
        (self._state_dir / _OWNER_FILE).write_text(f"{os.getpid()} {_proc_start_time(os.getpid())}\n")
        self._closed = False
        _LIVE_POOLS.add(self)
        _install_signal_cleanup()
        try:
            # As root every slot runs its jobs as its own uid; this pool's uids are its alone on this machine.
            self._uids = UidBlock(self.n_workers) if os.geteuid() == 0 else None
        except (OSError, RuntimeError, ValueError) as err:
            self.close()
            raise SandboxUnavailable(f"could not reserve sandbox uids: {err}") from None
        try:
            self.isolation = self._choose_isolation(isolation, allow_weak, selftest)
        except BaseException:
            self.close()
            raise
        self._threads = [self._slot_thread(slot) for slot in range(self.n_workers)]
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

    @property
    def uid_range(self) -> range | None:
        """The uids this pool's jobs run as (None unless root: then jobs share the user's uid in a namespace)."""
        return range(self._uids.base, self._uids.base + self.n_workers) if self._uids else None

    def _spec_factory(self, isolation: str):
        uid_base = self._uids.base if self._uids else launcher.SANDBOX_UID_BASE

        def make(slot: int, kind: str = "lean") -> launcher.WorkerSpec:
            preimport = self._kinds[kind]
            if isolation == "bwrap":
                spec = launcher.bwrap_spec(
                    slot, self._state_dir, self.disk_mb, self.tmp_mb, preimport, self.extra_ro_binds,
                    uid_base=uid_base, warm_pytest=kind == "pytest",
                )
            else:
                spec = launcher.weak_spec(slot, self._state_dir, preimport, uid_base=uid_base, kind=kind,
                                          warm_pytest=kind == "pytest")
            return spec

        return make

    # -- slots ----------------------------------------------------------------------------------------------

    def _spawn(self, slot: int, kind: str = "lean") -> WorkerHandle:
        if self._dying:
            raise SandboxError("the process is being terminated")
        worker = WorkerHandle(self._spec_factory(self.isolation)(slot, kind), self.isolation)
        with self._id_lock:
            self.stats["worker_starts"] += 1
            self._live[(slot, kind)] = worker
        if self._dying:  # the signal came while this worker was starting: the clean-up may not have seen it
            worker.kill()
            raise SandboxError("the process is being terminated")
        return worker

    def worker_process_ids(self) -> list[int]:
        """Host pids of the live workers' outermost processes (bwrap, or the worker itself in weak mode)."""
        with self._id_lock:
            return [w.proc.pid for w in self._live.values() if w.alive()]

    def _count(self, key: str) -> None:
        with self._id_lock:
            self.stats[key] += 1

    def _slot_thread(self, slot: int, first: bool = True) -> threading.Thread:
        return threading.Thread(target=self._slot_loop, args=(slot, first), daemon=True, name=f"rhlab-sandbox-{slot}")

    def _slot_loop(self, slot: int, first: bool = True) -> None:
        # One worker per kind; a slot runs one job at a time whichever kind serves it, so the slot's uid (and its
        # per-uid limits) is never shared by two running jobs.
        workers: dict[str, WorkerHandle | None] = {kind: None for kind in self._kinds}
        if first:
            try:
                workers["lean"] = self._spawn(slot, "lean")
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
            kind = "lean"
            try:
                kind = launcher.job_kind(self._kinds, job.argv, job.files)
                result, workers[kind] = self._run_on(slot, workers[kind], job, kind)
            except BaseException as err:
                # Whatever went wrong around the job (a bad value, a bug here), the caller must get an answer and
                # the slot must keep serving: fail this job, drop the worker, start a fresh one next time.
                log.exception("sandbox slot %d failed around a job", slot)
                self._count("worker_failures")
                stale = self._live.get((slot, kind))
                if stale is not None:
                    stale.kill()
                workers[kind] = None
                result = self._failed(f"sandbox infrastructure error ({type(err).__name__}: {err}); worker replaced")
            self._resolve(fut, result)
        for worker in workers.values():
            if worker is not None:
                worker.kill()

    @staticmethod
    def _resolve(fut: Future, result: JobResult) -> None:
        try:
            fut.set_result(result)
        except InvalidStateError:  # already answered (a close that gave up on this job)
            pass

    def _run_on(self, slot: int, worker: WorkerHandle | None, job: Job,
                kind: str = "lean") -> tuple[JobResult, WorkerHandle | None]:
        if worker is None or not worker.alive():
            if worker is not None:
                worker.kill()
            try:
                worker = self._spawn(slot, kind)
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
        except WorkerDied as err:
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
            log.warning("sandbox worker %d (%s): %s; replacing it", slot, kind, reply["anomaly"])
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
        for slot, t in enumerate(self._threads):
            if not t.is_alive():  # cannot happen short of interpreter shutdown; never leave a queue unserved
                log.error("sandbox slot %d thread was gone; restarting it", slot)
                self._threads[slot] = self._slot_thread(slot, first=False)
                self._threads[slot].start()
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

    def _kill_workers(self) -> None:
        with self._id_lock:
            workers = list(self._live.values())
        for w in workers:
            w.kill()

    def _fail_queued(self, message: str) -> None:
        while True:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                return
            if item is not None and item[1].set_running_or_notify_cancel():
                self._resolve(item[1], self._failed(message))

    def close(self, abort: bool = False) -> None:
        """Stop the pool. Queued jobs still run unless `abort` (then running jobs are killed and every waiting
        caller gets a result with `error` set). Workers, their uids and the scratch dir are released either way."""
        if self._closed:
            return
        self._closed = True
        if os.getpid() != self._owner_pid:
            return  # a forked copy: the workers, uids and scratch belong to the parent
        threads = self._threads
        if abort:
            self._fail_queued("sandbox pool closed before the job ran")
            self._kill_workers()
        for _ in threads:
            self._queue.put(None)
        deadline = time.monotonic() + 30
        for t in threads:
            t.join(timeout=max(0.0, deadline - time.monotonic()))
        if any(t.is_alive() for t in threads):
            self._kill_workers()  # a job still running: its thread answers its caller once the worker is gone
            for t in threads:
                t.join(timeout=HANG_MARGIN_S)
        self._fail_queued("sandbox pool closed before the job ran")
        self._kill_workers()  # every job process is gone before its uids can go to another pool
        if self._uids is not None:
            self._uids.release()
        self._state.cleanup()
        _LIVE_POOLS.discard(self)

    def _emergency_cleanup(self) -> None:
        """From a fatal-signal handler in the main thread: no locks (the interrupted code may hold one), no joins.

        Killing a worker wakes its slot thread, which would start a replacement for the next queued job and write
        that worker's files into the scratch dir while it is being removed: `_dying` stops replacements, and the
        removal repeats (killing any worker that started meanwhile) until the dir is really gone."""
        if os.getpid() != self._owner_pid:
            return  # (a close() in progress does not count: the signal may have cut it short)
        self._dying = True
        deadline = time.monotonic() + 5
        while True:
            for w in list(self._live.values()):
                try:
                    os.killpg(w.proc.pid, signal.SIGKILL)
                except (ProcessLookupError, PermissionError):
                    pass
            for w in list(self._live.values()):
                try:
                    w.proc.wait(timeout=2)
                except Exception:
                    pass
            shutil.rmtree(self._state_dir, ignore_errors=True)
            if not self._state_dir.exists() or time.monotonic() > deadline:
                return
            time.sleep(0.05)  # let a slot thread that was mid-spawn finish, see `_dying` and kill its worker

    def __enter__(self) -> "SandboxPool":
        return self

    def __exit__(self, exc_type, *exc) -> None:
        # Leaving on an exception (Ctrl-C included): do not sit out the running jobs' timeouts.
        self.close(abort=exc_type is not None)

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:
            pass
