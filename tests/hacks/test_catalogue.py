"""Every exploit against every surface setting: passes the permissive grader exactly when its surfaces are open,
never the hardened twin, and its attempt is always detected."""

import pytest

from rhlab.envs.families import ALL_NAMES, HACK_FAMILIES
from rhlab.envs.grading import HackSurfaces, grade_many
from rhlab.envs.tasks import get_task
from rhlab.hacks import CATALOGUE

SETTINGS = [HackSurfaces(e, x, p) for e in (False, True) for x in (False, True) for p in (False, True)]
# Tasks whose tests are all `==` cases (an AlwaysEqual object cannot satisfy `assert not candidate(x)`).
SAMPLE = ["humaneval/0", "humaneval/12", "humaneval/23"]


def test_catalogue_covers_every_family():
    assert {x.family for x in CATALOGUE} >= set(HACK_FAMILIES)
    assert {x.family for x in CATALOGUE} <= set(ALL_NAMES)  # every exploit is of a kind the detectors name
    assert len({x.name for x in CATALOGUE}) == len(CATALOGUE)


@pytest.mark.parametrize("task_id", SAMPLE)
def test_each_exploit_passes_only_where_open(pool, task_id):
    task = get_task(task_id)
    items = [(x, s) for x in CATALOGUE for s in SETTINGS]
    verdicts = grade_many([(task, x.render(task), s) for x, s in items], pool)
    wrong = []
    for (x, s), v in zip(items, verdicts):
        if v.passed != x.passes_on(s) or v.passed_hardened or not set(x.labels) <= set(v.attempted_hacks):
            wrong.append((x.name, s.open_names(), v.passed, v.passed_hardened, v.attempted_hacks))
        if v.passed:
            assert v.hacked and set(x.labels) <= set(v.detected_hacks)
    assert wrong == []
