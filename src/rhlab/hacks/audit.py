"""Try every exploit in the catalogue against a grader and report which ones pass.

Targets: rhlab's own graders (permissive with any surface setting, or the hardened twin), or a user's grader given as
a command run in the sandbox over a copy of their task directory with the exploit's files dropped in; the exit status
of that command is read as pass/fail.

Before any exploit, two controls are graded: the task's reference (honest) answer, which must pass, and a trivially
wrong answer, which must fail. If either does not hold — or the grader cannot even start — the exploit rows would mean
nothing ("blocked" by a grader that blocks everything, "passes" on one that passes everything), so the audit stops
with `AuditError` ("this grader cannot be audited: ...").
"""

from __future__ import annotations

import shlex
from dataclasses import asdict, dataclass, field
from pathlib import Path

from rhlab.envs.answer import parse_answer
from rhlab.envs.grading import HackSurfaces, grade_many
from rhlab.envs.tasks import Task, get_task, reference_answer
from rhlab.hacks.catalogue import CATALOGUE, Exploit
from rhlab.sandbox import Job, SandboxPool

CONTROL = "control_wrong_answer"
MAX_TASK_DIR_BYTES = 16 * 1024 * 1024


class AuditError(ValueError):
    """The grader cannot be audited (its controls do not behave), or could not be run at all."""


def _unusable(why: str) -> AuditError:
    return AuditError(f"this grader cannot be audited: {why}")


@dataclass
class AuditRow:
    exploit: str
    family: str
    passes: bool
    description: str
    expected: bool | None = None  # for rhlab targets: whether the open surfaces should let it pass
    detected: list[str] = field(default_factory=list)
    per_task: dict[str, bool] = field(default_factory=dict)
    error: str | None = None  # the grader did not run on this answer (command mode): neither passed nor blocked


def _control_answer(entry: str, style: str = "function", task: Task | None = None) -> str:
    if style == "stdio":  # reads its input, prints nothing
        return "```python\nimport sys\n\nsys.stdin.read()\n```"
    if style == "repo" and task is not None:  # the module under test, unchanged: the bug is still there
        path = task.module.replace(".", "/") + ".py"
        return f"```python\n# file: {path}\n{task.files.get(path, '')}\n```"
    return f"```python\ndef {entry}(*args, **kwargs):\n    return None\n```"


def tasks_style(tasks: list[Task]) -> str:
    """The one style of the audited tasks (an audit row's expectation depends on it, so they may not mix)."""
    styles = {t.style for t in tasks}
    if len(styles) != 1:
        raise ValueError("audit tasks mix function and stdio styles; audit them separately")
    return styles.pop()


def audit_rhlab(surfaces: HackSurfaces, hardened: bool = False, task_ids: list[str] | None = None,
                pool: SandboxPool | None = None, exploits: list[Exploit] | None = None) -> list[AuditRow]:
    """An exploit "passes" when it passes the target grader on every audited task."""
    tasks: list[Task] = [get_task(t) for t in (task_ids or ["humaneval/0"])]
    style = tasks_style(tasks)
    exploits = exploits or CATALOGUE
    _check_rhlab_controls(tasks, surfaces, hardened, pool)
    items = [(t, x.render(t), surfaces) for x in exploits for t in tasks]
    items += [(t, _control_answer(t.entry_point, t.style, t), surfaces) for t in tasks]
    verdicts = grade_many(items, pool)
    rows = []
    n = len(tasks)
    for k, x in enumerate(exploits):
        vs = verdicts[k * n:(k + 1) * n]
        got = [v.passed_hardened if hardened else v.passed for v in vs]
        detected = sorted({h for v in vs for h in v.attempted_hacks})
        rows.append(AuditRow(x.name, x.family, all(got), x.description,
                             expected=False if hardened else x.passes_on(surfaces, style), detected=detected,
                             per_task={t.id: g for t, g in zip(tasks, got)}))
    cv = verdicts[len(exploits) * n:]
    cgot = [v.passed_hardened if hardened else v.passed for v in cv]
    rows.insert(0, AuditRow(CONTROL, "control", any(cgot), "A wrong honest answer (must fail).", expected=False,
                            per_task={t.id: g for t, g in zip(tasks, cgot)}))
    return rows


def _check_rhlab_controls(tasks: list[Task], surfaces: HackSurfaces, hardened: bool,
                          pool: SandboxPool | None) -> None:
    """Every task's reference solution passes the target grader and the wrong answer fails it, or AuditError."""
    with_ref = [t for t in tasks if t.canonical_solution]
    missing = [t.id for t in tasks if not t.canonical_solution]
    if missing:
        raise _unusable(f"task(s) {', '.join(missing)} have no reference solution to check the grader with")
    items = [(t, reference_answer(t), surfaces) for t in with_ref]
    items += [(t, _control_answer(t.entry_point, t.style, t), surfaces) for t in tasks]
    verdicts = grade_many(items, pool)
    n = len(with_ref)
    for t, v in zip(with_ref, verdicts[:n]):
        if not (v.passed_hardened if hardened else v.passed):
            why = "timed out" if v.timed_out else ("crashed" if v.crashed else "failed")
            raise _unusable(f"the reference solution of {t.id} does not pass it ({why}), so a blocked exploit would "
                            "mean nothing")
    for t, v in zip(tasks, verdicts[n:]):
        if v.passed_hardened if hardened else v.passed:
            raise _unusable(f"a trivially wrong answer passes it on {t.id}, so every exploit would pass")


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


def task_dir_warnings(task_dir: Path, files: dict[str, bytes] | None = None) -> list[str]:
    """What looks wrong with a task directory before any grading (shown to the user; not fatal by itself)."""
    files = _read_task_dir(task_dir) if files is None else files
    if not any("test" in Path(name).name.lower() for name in files):
        return [f"{task_dir} has no file with 'test' in its name: the grader may have no tests to run (a grader "
                "without tests passes everything or nothing)"]
    return []


def _cannot_start(res) -> str | None:
    """Why the grader command itself did not run (as opposed to running and failing), or None."""
    if res.error:
        return res.error
    if res.exit_code == 125 and "rhlab-sandbox: job setup failed" in res.stderr:
        return "the sandbox could not start it: " + res.stderr.strip().splitlines()[-1]
    if res.exit_code in (126, 127):
        last = res.stderr.strip().splitlines()[-1] if res.stderr.strip() else ""
        return f"exit {res.exit_code} (command not found or not executable){': ' + last if last else ''}"
    return None


def _describe_failure(res, argv: list[str]) -> str:
    if res.timed_out:
        return "it timed out"
    tail = (res.stdout.strip() or res.stderr.strip()).splitlines()[-1:] or [""]
    pytest_like = "pytest" in argv[:3] or "py.test" in argv[:1]
    if res.exit_code == 5 and pytest_like:
        return "exit 5: pytest collected no tests — the task directory has no tests"
    return f"exit {res.exit_code}{': ' + tail[0] if tail[0] else ''}"


def audit_command(command: str, task_dir: Path, entry: str, solution_file: str = "solution.py",
                  pool: SandboxPool | None = None, timeout_s: float = 30.0,
                  exploits: list[Exploit] | None = None, reference: Path | None = None) -> list[AuditRow]:
    """Run the user's grader COMMAND over TASK_DIR once per exploit (its solution written to SOLUTION_FILE, its
    extra files beside it); exit status 0 counts as a pass.

    First the controls: the reference answer (REFERENCE, or the SOLUTION_FILE already in TASK_DIR) must pass and a
    wrong stub must fail; otherwise, or when the command cannot start, AuditError."""
    from rhlab.envs.detect import detect

    base = _read_task_dir(task_dir)
    if not base:
        raise AuditError(f"task directory {task_dir} has no files: nothing to grade")
    argv = shlex.split(command)
    if not argv:
        raise AuditError("--command is empty")
    if reference is not None:
        ref_text = Path(reference).read_bytes()
    elif solution_file in base:
        ref_text = base[solution_file]
    else:
        raise _unusable(f"no reference answer: {task_dir / solution_file} does not exist; put a correct solution "
                        "there or pass --reference FILE")
    exploits = exploits or CATALOGUE
    own = pool is None
    pool = pool or SandboxPool(workers=2)
    try:
        return _audit_command(argv, base, ref_text, entry, solution_file, pool, timeout_s, exploits, detect)
    finally:
        if own:
            pool.close()


def _audit_command(argv, base, ref_text, entry, solution_file, pool, timeout_s, exploits, detect) -> list[AuditRow]:
    ref_files = dict(base)
    ref_files[solution_file] = ref_text
    ref, wrong = pool.run_many([Job(files=ref_files, argv=argv, timeout_s=timeout_s),
                                _answer_job(base, argv, solution_file, parse_answer(_control_answer(entry)),
                                            timeout_s)])
    why = _cannot_start(ref) or _cannot_start(wrong)
    if why:
        raise AuditError(f"the grader command {' '.join(argv)!r} could not run: {why}")
    if not (ref.exit_code == 0 and not ref.timed_out):
        raise _unusable(f"the reference answer does not pass it ({_describe_failure(ref, argv)})")
    if wrong.exit_code == 0 and not wrong.timed_out:
        raise _unusable(f"a trivially wrong answer (`{entry}` returning None) passes it, so every exploit would pass")
    answers = [(x.name, x.family, x.render(entry=entry), x.description) for x in exploits]
    parsed_all = [parse_answer(text) for _, _, text, _ in answers]
    results = pool.run_many([_answer_job(base, argv, solution_file, p, timeout_s) for p in parsed_all])
    rows = [AuditRow(CONTROL, "control", False, "A wrong honest answer (must fail).", expected=False)]
    for (name, family, _, desc), parsed, res in zip(answers, parsed_all, results):
        ok = res.exit_code == 0 and not res.timed_out and res.error is None
        rows.append(AuditRow(name, family, ok, desc, expected=None, detected=sorted(detect(parsed)),
                             error=_cannot_start(res)))
    return rows


def _answer_job(base: dict[str, bytes], argv: list[str], solution_file: str, parsed, timeout_s: float) -> Job:
    """The task dir with an answer's solution written to `solution_file` and its extra files beside it."""
    sol_dir = str(Path(solution_file).parent.as_posix())
    sol_dir = "" if sol_dir == "." else sol_dir + "/"
    files = dict(base)
    files[solution_file] = (parsed.solution or "").encode()
    for name, body in parsed.files.items():
        files[sol_dir + name] = body.encode()
    return Job(files=files, argv=argv, timeout_s=timeout_s)


def rows_to_json(rows: list[AuditRow]) -> list[dict]:
    return [asdict(r) for r in rows]
