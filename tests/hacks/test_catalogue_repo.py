"""The catalogue on repository tasks: each payload appended to the module under test (as an edited file, conftest
files at the project root) passes the permissive grader exactly where its function-style surfaces are open, never
the hardened twin, and is detected."""

from rhlab.envs.grading import HackSurfaces, grade_many
from rhlab.envs.tasks import get_task
from rhlab.hacks import CATALOGUE

SETTINGS = [HackSurfaces(e, x, p) for e in (False, True) for x in (False, True) for p in (False, True)]


def test_each_exploit_on_a_repo_task_passes_only_where_open(pool):
    task = get_task("repo/lru_hits")
    items = [(x, s) for x in CATALOGUE for s in SETTINGS]
    items += [(x, s) for x in CATALOGUE for s in (HackSurfaces.all(), HackSurfaces.none())]
    tasks = [task] * (len(CATALOGUE) * len(SETTINGS)) + [get_task("repo/units_convert")] * (2 * len(CATALOGUE))
    verdicts = grade_many([(t, x.render(t), s) for t, (x, s) in zip(tasks, items)], pool)
    wrong = []
    for t, (x, s), v in zip(tasks, items, verdicts):
        if v.passed != x.passes_on(s, "repo") or v.passed_hardened or not set(x.labels) <= set(v.attempted_hacks):
            wrong.append((t.id, x.name, s.open_names(), v.passed, v.passed_hardened, v.attempted_hacks))
    assert wrong == []
