"""CPU accounting for the benchmarks: seconds of CPU used by a process tree, read from /proc.

A live process's own utime+stime plus the cutime+cstime of the children it has already reaped; summed over a
tree this counts every process exactly once (a child's time moves into its parent's c-fields when reaped). The
sandbox workers reap their job children themselves, so the workers' trees hold every job's CPU."""

from __future__ import annotations

import os
import resource

_TICK = os.sysconf("SC_CLK_TCK")


def _stat(pid: int) -> tuple[int, float] | None:
    try:
        with open(f"/proc/{pid}/stat") as fh:
            f = fh.read().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return int(f[1]), sum(int(x) for x in f[11:15]) / _TICK  # ppid; utime stime cutime cstime


def tree_cpu_s(roots) -> float:
    """CPU seconds of every live process under (and including) the given pids."""
    table = {}
    for name in os.listdir("/proc"):
        if name.isdigit():
            st = _stat(int(name))
            if st is not None:
                table[int(name)] = st
    roots = set(roots)
    total = 0.0
    for pid, (ppid, cpu) in table.items():
        cur, hops = pid, 0
        while cur and cur not in roots and hops < 64:
            cur, hops = table.get(cur, (0, 0.0))[0], hops + 1
        if cur in roots:
            total += cpu
    return total


def load_average() -> str:
    """The 1-, 5- and 15-minute load averages, for printing beside a measurement: the box may be shared."""
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def self_cpu_s() -> float:
    """CPU seconds of this process (all threads), children not included."""
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


class PoolCpu:
    """CPU used by a pool between start() and stop(): the host side (this process: encoding, pipes, slot threads)
    and the workers' trees (worker + every job child), separately."""

    def __init__(self, pool):
        self.pool = pool

    def start(self) -> None:
        self._roots = self.pool.worker_process_ids()
        self._host0, self._tree0 = self_cpu_s(), tree_cpu_s(self._roots)

    def stop(self) -> dict[str, float]:
        host, tree = self_cpu_s() - self._host0, tree_cpu_s(self._roots) - self._tree0
        return {"host_s": host, "workers_s": tree, "total_s": host + tree}
