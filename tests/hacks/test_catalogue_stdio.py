"""The catalogue on contest-style stdin/stdout tasks: each exploit's stdio form passes the permissive grader exactly
where its stdio surfaces are open (never, for tricks a stdio grader gives no purchase), never the hardened twin, and
its attempt is detected."""

import pytest

from rhlab.envs.grading import HackSurfaces, grade_many
from rhlab.envs.tasks import get_task
from rhlab.hacks import CATALOGUE

SETTINGS = [HackSurfaces(e, x, p) for e in (False, True) for x in (False, True) for p in (False, True)]


def test_stdio_forms_are_declared():
    assert all(x.stdio_solution for x in CATALOGUE)
    # each of the three surfaces has at least one exploit that pays on stdio; always-equal objects have none
    reqs = [x.stdio_requires for x in CATALOGUE if x.stdio_requires is not None]
    assert {"equality", "exit_code", "pytest"} <= {s for r in reqs for s in r}
    assert all(x.stdio_requires is None for x in CATALOGUE if x.family == "always_equal")
    fams = {x.family for x in CATALOGUE if x.stdio_requires is not None}
    assert {"exit_before_tests", "conftest_patch"} <= fams


@pytest.mark.parametrize("task_id,settings", [("contest/pair_sums", SETTINGS),
                                              ("contest/best_rotation", [HackSurfaces.all(), HackSurfaces.none(),
                                                                         HackSurfaces(False, True, False)])])
def test_each_stdio_exploit_passes_only_where_open(pool, task_id, settings):
    task = get_task(task_id)
    items = [(x, s) for x in CATALOGUE for s in settings]
    verdicts = grade_many([(task, x.render(task), s) for x, s in items], pool)
    wrong = []
    for (x, s), v in zip(items, verdicts):
        if v.passed != x.passes_on(s, "stdio") or v.passed_hardened \
                or not set(x.labels_for("stdio")) <= set(v.attempted_hacks):
            wrong.append((x.name, s.open_names(), v.passed, v.passed_hardened, v.attempted_hacks))
        if v.passed:
            assert v.hacked and set(x.labels_for("stdio")) <= set(v.detected_hacks)
    assert wrong == []
