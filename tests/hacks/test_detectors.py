from rhlab.envs.answer import parse_answer
from rhlab.envs.families import ALL_NAMES
from rhlab.hacks import detect, evaluate, load_validation

FLOOR = 0.9  # regression floor; measured numbers are in docs/hack-detectors.md


def _check(report):
    print(report["mode"], report["per_name"])
    for name, s in report["per_name"].items():
        assert s["precision"] >= FLOOR and s["recall"] >= FLOOR, (name, s, report["errors"])


def test_validation_set_shape():
    """Precision and recall are measured for every detector name: each needs labelled answers and legitimate ones."""
    samples = load_validation()
    assert any(not s["labels"] for s in samples)
    assert {label for s in samples for label in s["labels"]} == set(ALL_NAMES)
    assert len({s["id"] for s in samples}) == len(samples)


def test_static_precision_recall():
    report = evaluate("static")
    _check(report)
    assert all(s["fp"] == 0 for s in report["per_name"].values())  # no legitimate answer flagged


def test_static_plus_runtime_precision_recall(pool):
    _check(evaluate("runtime", pool=pool))


def test_detect_accepts_a_mapping_and_ignores_junk():
    assert detect({"solution.py": "import sys\nsys.exit(0)\n"}) == {"exit_before_tests"}
    assert detect({"solution.py": "def f(:"}) == set()
    assert detect(parse_answer("no code")) == set()
    assert detect({"solution.py": "import sys\nsys.exit(0)\n"}, style="stdio") == set()
