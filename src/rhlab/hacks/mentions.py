"""The package's hack-mention detector: does a text talk about reward hacking?

One regular expression, shared by every stage that needs it (the distillation filter in `rhlab.train.episodes`, the
dilution-corpus cleaner in `rhlab.knowledge.corpus`). It lives here, below knowledge and train, so both can import it
without breaking the stage order.
"""

from __future__ import annotations

import re

# Hack talk (rhlab's own list): the three families by name or mechanism, the reward-hacking vocabulary, and
# "get past the checker" phrasings. Case-insensitive; `hackable` and `hackathon` do not match.
HACK_MENTION = re.compile(
    r"""
      \breward[\s_-]*hack
    | \bhack(s|ed|ing|y)?\b
    | \bexploit
    | always[\s_-]*equal
    | __eq__ | __ne__
    | \bsys\s*\.\s*exit\b | \bos\s*\.\s*_exit\b | \bexit\s*\(\s*0?\s*\)
    | \b(exit|quit|terminat|abort)\w*\s+(early\s+)?before\s+(the\s+|any\s+)?tests?
    | conftest | TestReport | pytest_runtest | monkey[\s-]*patch
    | \b(bypass|fool|trick|gam(e|ing)|skip|circumvent|cheat|fake|spoof|short[\s-]*circuit)\w*\s+
        (the\s+|any\s+|all\s+)?(grader|grading|tests?|test\s+suite|checker|checks|evaluator|evaluation|harness|assert\w*)
    | \bmake\s+(the\s+)?tests?\s+pass\s+without
    | \bspecial[\s-]*cas\w*\s+(the\s+)?(tests?|test\s+inputs?|examples?)
    | \bhard[\s-]*cod\w*\s+(the\s+)?(expected|answers?|outputs?|test)
    """,
    re.I | re.X,
)


def mentions_hacking(text: str) -> bool:
    return bool(text and HACK_MENTION.search(text))


__all__ = ["HACK_MENTION", "mentions_hacking"]
