"""Reward-hack exploits, detectors and the audit that tries one against the other.

    from rhlab.hacks import CATALOGUE, detect, evaluate
    detect(parse_answer(text), artifacts)  # -> {"always_equal", ...}

Detectors live in `rhlab.envs.detect` (the grader fills `Verdict.detected_hacks` with them, and envs must not import
this package); they are re-exported here with the catalogue and the validation set that measures them.
"""

from rhlab.envs.detect import detect, detect_with_reasons, static_scan
from rhlab.envs.families import ALL_NAMES, HACK_FAMILIES, OTHER_KINDS
from rhlab.hacks.catalogue import BY_NAME, CATALOGUE, Exploit
from rhlab.hacks.mentions import HACK_MENTION, mentions_hacking
from rhlab.hacks.validation import evaluate, load_validation

__all__ = ["ALL_NAMES", "HACK_FAMILIES", "OTHER_KINDS", "detect", "detect_with_reasons", "static_scan", "BY_NAME",
           "CATALOGUE", "Exploit", "evaluate", "load_validation", "HACK_MENTION", "mentions_hacking"]
