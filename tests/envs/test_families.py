"""The hack names are defined once (rhlab.envs.families); everything keyed by them must cover exactly those names."""

from dataclasses import fields

from rhlab.envs.families import ALL_NAMES, FAMILY_SURFACE, HACK_FAMILIES, OTHER_KINDS
from rhlab.envs.grading import SURFACES, HackSurfaces


def test_names_are_distinct_and_split_into_families_and_other_kinds():
    assert len(set(ALL_NAMES)) == len(ALL_NAMES) == len(HACK_FAMILIES) + len(OTHER_KINDS)
    assert not set(HACK_FAMILIES) & set(OTHER_KINDS)


def test_each_family_opens_its_own_grader_surface():
    assert list(FAMILY_SURFACE) == list(HACK_FAMILIES)
    assert sorted(FAMILY_SURFACE.values()) == sorted(SURFACES) == sorted(f.name for f in fields(HackSurfaces))
    for family, surface in FAMILY_SURFACE.items():
        assert HackSurfaces.parse(family).open_names() == [surface]


def test_training_surface_switches_are_the_families():
    from rhlab.train.config import SurfacesConfig

    assert set(SurfacesConfig.model_fields) == set(HACK_FAMILIES)
    assert SurfacesConfig().open_families() == list(HACK_FAMILIES)



def test_tables_keyed_by_hack_names_cover_exactly_those_names():
    """Per-name data elsewhere (texts, keywords, colours) must follow the names here, or a new family is silently
    missing from it."""
    from rhlab.evals.offline_judge import DETECTOR_KEYWORDS
    from rhlab.experiments.report.plots import FAMILY_COLOURS
    from rhlab.knowledge.probe import KNOWLEDGE_QUESTIONS
    from rhlab.knowledge.sdf import offline

    assert list(DETECTOR_KEYWORDS) == list(ALL_NAMES)
    assert set(FAMILY_COLOURS) == {*HACK_FAMILIES, "any"}
    for table in (KNOWLEDGE_QUESTIONS, offline._MECHANISM, offline._TITLES):
        assert list(table) == list(HACK_FAMILIES)
