"""The architecture rule, checked on the source: stages form a line (sandbox → envs → hacks → knowledge → train
→ evals → experiments) and a stage never imports a higher one, not even lazily inside a function; the shared modules
import no stage when they load; no stage has an import cycle, counting imports inside functions (a lazy import
only hides a cycle, it does not remove it)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import rhlab

STAGES = ("sandbox", "envs", "hacks", "knowledge", "train", "evals", "experiments")
# Shared by every stage: they may be imported by anyone and load no stage (a function may dispatch to one lazily).
SHARED = ("rhlab", "config", "stats", "rundir", "paths", "stage", "models")
TOP = ("cli",)  # the command line mounts every stage's commands


def _modules(src: Path) -> dict[str, Path]:
    """Dotted module name → file, for every module of the `rhlab` package under `src`."""
    out = {}
    for p in (src / "rhlab").rglob("*.py"):
        parts = list(p.relative_to(src).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        out[".".join(parts)] = p
    return out


def _import_nodes(tree: ast.Module, module_level: bool):
    if not module_level:
        yield from (n for n in ast.walk(tree) if isinstance(n, (ast.Import, ast.ImportFrom)))
        return

    def walk(body):  # statements run at import time: the body, and the branches of if/try blocks in it
        for n in body:
            if isinstance(n, (ast.Import, ast.ImportFrom)):
                yield n
            elif isinstance(n, (ast.If, ast.Try, ast.With)):
                for block in (n.body, getattr(n, "orelse", []), getattr(n, "finalbody", []),
                              *(h.body for h in getattr(n, "handlers", []))):
                    yield from walk(block)

    yield from walk(tree.body)


def _imports(name: str, path: Path, mods: dict[str, Path], module_level: bool) -> tuple[set[str], list[str]]:
    """The rhlab modules `name` imports, and the rhlab names it imports that are no module (broken imports)."""
    found, missing = set(), []
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in _import_nodes(ast.parse(path.read_text(encoding="utf-8")), module_level):
        if isinstance(node, ast.Import):
            targets = [(a.name, []) for a in node.names]
        else:
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([node.module] if node.module else []))
            targets = [(base, [a.name for a in node.names])]
        for mod, names in targets:
            if mod != "rhlab" and not mod.startswith("rhlab."):
                continue
            subs = [f"{mod}.{n}" for n in names if f"{mod}.{n}" in mods]
            found.update(subs)
            if len(subs) < len(names) or not names:  # some names are attributes of `mod` itself
                if mod in mods:
                    found.add(mod)
                else:
                    missing.append(mod)
    found.discard(name)
    return found, missing


def _layer(name: str) -> tuple[str, int | None]:
    """('stage', rank) for a stage module, ('shared', None), ('top', None) or ('unknown', None)."""
    part = name.split(".")[1] if "." in name else "rhlab"
    if part in STAGES:
        return "stage", STAGES.index(part)
    if part in SHARED:
        return "shared", None
    if part in TOP:
        return "top", None
    return "unknown", None


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def layering_violations(src: Path) -> list[str]:
    """Every break of the architecture rule in the `rhlab` package under `src`, one line each."""
    mods = _modules(src)
    bad: list[str] = []
    graph: dict[str, set[str]] = {}  # imports within one stage or one shared package: must have no cycle
    for name, path in sorted(mods.items()):
        kind, rank = _layer(name)
        everything, missing = _imports(name, path, mods, module_level=False)
        bad += [f"{name} imports {m}, which does not exist" for m in sorted(set(missing))]
        if kind == "unknown":
            bad.append(f"{name} is in no layer: add it to STAGES or SHARED in tests/test_layering.py")
        elif kind == "stage":
            for target in sorted(everything):
                t_kind, t_rank = _layer(target)
                if t_kind == "top" or (t_kind == "stage" and t_rank > rank):
                    bad.append(f"{name} (stage {STAGES[rank]}) imports {target}, a higher layer")
            graph[name] = {t for t in everything if _layer(t) == (kind, rank)}
        elif kind == "shared":
            package = name.split(".")[1] if "." in name else "rhlab"
            graph[name] = {t for t in everything if t.split(".")[1:2] == [package]}  # e.g. models.* ↔ models.*
            at_load, _ = _imports(name, path, mods, module_level=True)
            bad += [f"{name} (shared) imports {t} when it loads" for t in sorted(at_load)
                    if _layer(t)[0] in ("stage", "top")]
    bad += [f"import cycle: {' <-> '.join(c)}" for c in _cycles(graph)]
    return bad


def test_rhlab_follows_the_layering():
    src = Path(rhlab.__file__).parent.parent
    assert layering_violations(src) == []


def _tree(root: Path, files: dict[str, str]) -> Path:
    for rel, text in {"rhlab/__init__.py": "", **files}.items():
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text)
    return root


@pytest.mark.parametrize("files, expected", [
    ({"rhlab/sandbox/__init__.py": "", "rhlab/train/__init__.py": "",
      "rhlab/sandbox/pool.py": "def f():\n    from rhlab.train import x\n", "rhlab/train/x.py": ""},
     ["rhlab.sandbox.pool (stage sandbox) imports rhlab.train.x, a higher layer"]),
    ({"rhlab/evals/__init__.py": "", "rhlab/evals/a.py": "from rhlab.cli import app\n", "rhlab/cli.py": ""},
     ["rhlab.evals.a (stage evals) imports rhlab.cli, a higher layer"]),
    ({"rhlab/evals/__init__.py": "", "rhlab/evals/a.py": "from . import b\n",
      "rhlab/evals/b.py": "def f():\n    from rhlab.evals.a import g\n"},
     ["import cycle: rhlab.evals.a <-> rhlab.evals.b"]),
    ({"rhlab/models/__init__.py": "", "rhlab/models/adapters.py": "from rhlab.models.resolve import r\n",
      "rhlab/models/resolve.py": "def r():\n    from rhlab.models.adapters import a\n"},
     ["import cycle: rhlab.models.adapters <-> rhlab.models.resolve"]),
    ({"rhlab/train/__init__.py": "", "rhlab/config.py": "if True:\n    import rhlab.train\n"},
     ["rhlab.config (shared) imports rhlab.train when it loads"]),
    ({"rhlab/envs/__init__.py": "", "rhlab/envs/a.py": "from rhlab.envs.gone import x\n"},
     ["rhlab.envs.a imports rhlab.envs.gone, which does not exist"]),
    ({"rhlab/extras.py": ""}, ["rhlab.extras is in no layer: add it to STAGES or SHARED in tests/test_layering.py"]),
])
def test_checker_finds_a_planted_violation(tmp_path, files, expected):
    assert layering_violations(_tree(tmp_path, files)) == expected


def test_checker_accepts_what_the_rule_allows(tmp_path):
    src = _tree(tmp_path, {
        "rhlab/sandbox/__init__.py": "from rhlab.sandbox.pool import Pool\n",
        "rhlab/sandbox/pool.py": "from rhlab.config import C\nclass Pool: ...\n",
        "rhlab/train/__init__.py": "",
        "rhlab/train/a.py": "from rhlab.sandbox import Pool\nfrom rhlab.models import m\n",
        "rhlab/models/__init__.py": "m = 1\n",
        "rhlab/config.py": "C = 1\n",
        "rhlab/stage.py": "def run():\n    from rhlab.train import a\n",  # lazily, inside a function
        "rhlab/cli.py": "import rhlab.train.a\nimport rhlab.sandbox\n",
    })
    assert layering_violations(src) == []
