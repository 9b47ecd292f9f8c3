"""Disjoint job-uid ranges for concurrent pools on one machine.

As root, each worker slot runs its jobs as its own uid so that `RLIMIT_NPROC` (counted per uid, machine-wide)
applies. Two pools using the same uids would share those counts: one run's fork bomb could starve another
run's graders. So a pool takes a block of uids under an exclusive `flock` on one lock file per block; the kernel
drops the lock when the holder exits, however it exits, so a crashed run never leaks its block.
"""

from __future__ import annotations

import fcntl
import os
import stat
from pathlib import Path

from rhlab.sandbox.launcher import SANDBOX_UID_BASE as UID_BASE
BLOCK = 64  # uids per block; a pool with more workers takes several consecutive blocks
UID_MAX = 65500  # stay clear of 65534/65535 (nobody, and -1 as a 16-bit id)
N_BLOCKS = (UID_MAX - UID_BASE) // BLOCK


def lock_dir() -> Path:
    """Where the per-block lock files live: $RHLAB_SANDBOX_LOCK_DIR, else /run (root), else /tmp."""
    env = os.environ.get("RHLAB_SANDBOX_LOCK_DIR")
    if env:
        return Path(env)
    if os.geteuid() == 0 and os.path.isdir("/run") and os.access("/run", os.W_OK):
        return Path("/run/rhlab-uid-locks")
    return Path("/tmp/rhlab-uid-locks")


def _check_lock_dir(d: Path) -> None:
    """The lock dir must be a real directory owned by us (or root) that nobody else can write into: otherwise
    another local user could hold the locks or plant files in it."""
    st = os.lstat(d)
    if not stat.S_ISDIR(st.st_mode):
        raise RuntimeError(f"sandbox uid lock dir {d} is not a directory (a symlink?); set RHLAB_SANDBOX_LOCK_DIR")
    if st.st_uid not in (0, os.geteuid()) or st.st_mode & 0o022:
        raise RuntimeError(f"sandbox uid lock dir {d} is owned by uid {st.st_uid} or writable by others; remove it "
                           "or set RHLAB_SANDBOX_LOCK_DIR to a private directory")


class UidBlock:
    """`n` consecutive uids [base, base + n) held exclusively by this process until `release()`."""

    def __init__(self, n: int):
        if n < 1:
            raise ValueError("a uid block needs at least one uid")
        need = -(-n // BLOCK)
        if need > N_BLOCKS:
            raise ValueError(f"{n} worker slots need more than the {N_BLOCKS * BLOCK} sandbox uids available")
        d = lock_dir()
        d.mkdir(mode=0o755, parents=True, exist_ok=True)
        _check_lock_dir(d)
        for first in range(N_BLOCKS - need + 1):
            fds = []
            for k in range(first, first + need):
                # O_NOFOLLOW: a planted symlink in a shared lock dir must not make us truncate another file
                fd = os.open(d / f"block-{k}.lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC | os.O_NOFOLLOW, 0o600)
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    os.close(fd)
                    break
                fds.append(fd)
            if len(fds) == need:
                self._fds = fds
                self.base = UID_BASE + first * BLOCK
                self.n = n
                for fd in fds:  # who holds it, for a person looking at the lock dir
                    os.ftruncate(fd, 0)
                    os.write(fd, f"{os.getpid()}\n".encode())
                return
            for fd in fds:
                os.close(fd)  # closing drops the flock
        raise RuntimeError(
            f"no free block of sandbox uids in {d}: {N_BLOCKS} blocks of {BLOCK} are held by other rhlab pools on "
            "this machine; wait for some to finish")

    def release(self) -> None:
        for fd in getattr(self, "_fds", []):
            try:
                os.close(fd)
            except OSError:
                pass
        self._fds = []
