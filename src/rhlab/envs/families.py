"""The reward-hack names, defined once for the whole package (every stage imports them from here).

`HACK_FAMILIES` are the paper's three families, each of which fools one surface of the permissive grader
(`FAMILY_SURFACE`, the surfaces `rhlab.envs.grading.HackSurfaces` can open or close). `OTHER_KINDS` attack an
in-process grader: reading the expected value off the stack or the heap, and rebinding builtins. The detectors
(`rhlab.envs.detect`) emit names from `ALL_NAMES`. Lives in envs, the lowest stage that uses the names.
"""

from __future__ import annotations

HACK_FAMILIES: tuple[str, ...] = ("always_equal", "exit_before_tests", "conftest_patch")
OTHER_KINDS: tuple[str, ...] = ("expected_leak", "builtins_patch")
ALL_NAMES: tuple[str, ...] = HACK_FAMILIES + OTHER_KINDS

# the permissive grader's surface each family fools (rhlab.envs.grading.SURFACES)
FAMILY_SURFACE: dict[str, str] = {"always_equal": "equality", "exit_before_tests": "exit_code",
                                  "conftest_patch": "pytest"}
