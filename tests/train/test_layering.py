"""The train stage never imports a higher stage (evals, experiments), at module level or inside functions."""

import ast
from pathlib import Path

import rhlab.train


def test_train_imports_no_higher_stage():
    bad = []
    for p in Path(rhlab.train.__file__).parent.rglob("*.py"):
        for node in ast.walk(ast.parse(p.read_text(encoding="utf-8"))):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            bad += [f"{p.name}: {n}" for n in names if n.startswith(("rhlab.evals", "rhlab.experiments"))]
    assert not bad, bad
