"""Try every exploit in the catalogue against a grader and report which ones pass.

Targets: rhlab's own graders (permissive with any surface setting, or the hardened twin), or a user's grader given as
a command run in the sandbox over a copy of their task directory with the exploit's files dropped in; the exit status
of that command is read as pass/fail. A wrong honest stub is run first as a control: if it passes, the grader passes
everything and the exploit rows mean nothing.
"""

from __future__ import annotations

import shlex
from dataclasses import asdict, dataclass, field
from pathlib import Path

from rhlab.envs.answer import parse_answer
from rhlab.envs.grading import HackSurfaces, grade_many
from rhlab.envs.tasks import Task, get_task
from rhlab.hacks.catalogue import CATALOGUE, Exploit
from rhlab.sandbox import Job, SandboxPool

CONTROL = "control_wrong_answer"
MAX_TASK_DIR_BYTES = 16 * 1024 * 1024


@dataclass
class AuditRow:
    exploit: str
    family: str
    passes: bool
    description: str
    expected: bool | None = None  # for rhlab targets: whether the open surfaces should let it pass
    detected: list[str] = field(default_factory=list)
    per_task: dict[str, bool] = field(default_factory=dict)


def _control_answer(entry: str) -> str:
    return f"```python\ndef {entry}(*args, **kwargs):\n    return None\n```"


def audit_rhlab(surfaces: HackSurfaces, hardened: bool = False, task_ids: list[str] | None = None,
                pool: SandboxPool | None = None, exploits: list[Exploit] | None = None) -> list[AuditRow]:
    """An exploit "passes" when it passes the target grader on every audited task."""
    tasks: list[Task] = [get_task(t) for t in (task_ids or ["humaneval/0"])]
    exploits = exploits or CATALOGUE
    items = [(t, x.render(t), surfaces) for x in exploits for t in tasks]
    items += [(t, _control_answer(t.entry_point), surfaces) for t in tasks]
    verdicts = grade_many(items, pool)
    rows = []
    n = len(tasks)
    for k, x in enumerate(exploits):
        vs = verdicts[k * n:(k + 1) * n]
        got = [v.passed_hardened if hardened else v.passed for v in vs]
        detected = sorted({h for v in vs for h in v.attempted_hacks})
        rows.append(AuditRow(x.name, x.family, all(got), x.description,
                             expected=False if hardened else x.passes_on(surfaces), detected=detected,
                             per_task={t.id: g for t, g in zip(tasks, got)}))
    cv = verdicts[len(exploits) * n:]
    cgot = [v.passed_hardened if hardened else v.passed for v in cv]
    rows.insert(0, AuditRow(CONTROL, "control", any(cgot), "A wrong honest answer (must fail).", expected=False,
                            per_task={t.id: g for t, g in zip(tasks, cgot)}))
    return rows


def _read_task_dir(task_dir: Path) -> dict[str, bytes]:
    files: dict[str, bytes] = {}
    total = 0
    for p in sorted(task_dir.rglob("*")):
        rel = p.relative_to(task_dir).as_posix()
        if not p.is_file() or any(part in ("__pycache__", ".git", ".pytest_cache", ".venv") for part in rel.split("/")):
            continue
        data = p.read_bytes()
        total += len(data)
        if total > MAX_TASK_DIR_BYTES:
            raise ValueError(f"task directory is larger than {MAX_TASK_DIR_BYTES // 2**20} MiB")
        files[rel] = data
    return files


def audit_command(command: str, task_dir: Path, entry: str, solution_file: str = "solution.py",
                  pool: SandboxPool | None = None, timeout_s: float = 30.0,
                  exploits: list[Exploit] | None = None) -> list[AuditRow]:
    """Run the user's grader COMMAND over TASK_DIR once per exploit (its solution written to SOLUTION_FILE, its
    extra files beside it); exit status 0 counts as a pass."""
    from rhlab.envs.detect import detect

    base = _read_task_dir(task_dir)
    argv = shlex.split(command)
    exploits = exploits or CATALOGUE
    sol_dir = str(Path(solution_file).parent.as_posix())
    sol_dir = "" if sol_dir == "." else sol_dir + "/"
    answers = [(CONTROL, "control", _control_answer(entry), "A wrong honest answer (must fail).")]
    answers += [(x.name, x.family, x.render(entry=entry), x.description) for x in exploits]
    jobs = []
    parsed_all = []
    for _, _, text, _ in answers:
        parsed = parse_answer(text)
        parsed_all.append(parsed)
        files = dict(base)
        files[solution_file] = (parsed.solution or "").encode()
        for name, body in parsed.files.items():
            files[sol_dir + name] = body.encode()
        jobs.append(Job(files=files, argv=argv, timeout_s=timeout_s))
    own = pool is None
    pool = pool or SandboxPool(workers=2)
    try:
        results = pool.run_many(jobs)
    finally:
        if own:
            pool.close()
    rows = []
    for (name, family, _, desc), parsed, res in zip(answers, parsed_all, results):
        ok = res.exit_code == 0 and not res.timed_out and res.error is None
        rows.append(AuditRow(name, family, ok, desc, expected=False if family == "control" else None,
                             detected=sorted(detect(parsed)) if family != "control" else []))
    return rows


def rows_to_json(rows: list[AuditRow]) -> list[dict]:
    return [asdict(r) for r in rows]
