"""The Inspect model providers rhlab adds: `rhlab/...` (the offline topic screen, see `offline_judge`).

Inspect finds this module through the `inspect_ai` entry point in pyproject.toml and imports it the first time a
model name it does not know is asked for, so no rhlab module imports a provider for its side effect. The function
returns the class so that registering costs nothing until a `rhlab/...` model is used (the pattern Inspect's own
providers follow).
"""

from __future__ import annotations

from inspect_ai.model import modelapi


@modelapi(name="rhlab")
def rhlab():
    from rhlab.evals.offline_judge import OfflineJudgeAPI

    return OfflineJudgeAPI
