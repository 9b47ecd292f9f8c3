"""Isolated execution of model-written code.

    from rhlab.sandbox import Job, SandboxPool
    with SandboxPool() as pool:
        result = pool.run(Job(files={"main.py": code}, argv=["python", "main.py"], timeout_s=5))

The pool verifies isolation at start (see `selftest`) and refuses to run without it unless weak mode is
explicitly allowed. This package imports no trainer or model library, so any trainer can use it.
"""

from rhlab.sandbox.job import Job, JobResult, Limits
from rhlab.sandbox.pool import SandboxError, SandboxPool, SandboxUnavailable

__all__ = ["Job", "JobResult", "Limits", "SandboxPool", "SandboxError", "SandboxUnavailable", "shared_pool"]

import threading as _threading

_shared: SandboxPool | None = None
_shared_lock = _threading.Lock()


def shared_pool(**kwargs) -> SandboxPool:
    """A process-wide pool, started on first use (graders and reward functions share it). Keyword arguments
    apply only to the call that starts it."""
    global _shared
    with _shared_lock:
        if _shared is None or _shared._closed:
            _shared = SandboxPool(**kwargs)
        return _shared
