"""The eval stage's typed entry (rhlab.stage `eval`): one Inspect suite on one model, resumable through Inspect's
eval_set in OUT (OUT/summary.json is the suite's summary). The judge-free probes are rhlab.stage `probes`
(rhlab.evals.probes.run); suite `all` runs them too and its result carries their numbers."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal, Optional

from rhlab.config import StrictModel


class EvalConfig(StrictModel):
    """rhlab.evals.run_suite's settings (an experiment's `evals:` schedule and `judge`)."""

    model: str  # embedded, a local dir, or an Inspect model name (e.g. vllm/<dir>)
    suite: Literal["core", "sabotage", "diagnostics", "all"]
    judge: Optional[str]  # None: the topic screen (not a judge of record)
    limit: Optional[int]
    n_goals: int
    n_agentic: int
    max_tokens: int
    temperature: float
    max_connections: Optional[int]
    em_samples: int
    batch_size: Optional[int] = None  # local HF models: samples generated at once (None: the suite's default)


class ProbeNumbers(StrictModel):
    """The headline numbers of a ProbeResult (rhlab.evals.probes)."""

    probe_score: Optional[float]
    probe_se: Optional[float]
    probe_n: Optional[int]
    hack_endorsement: Optional[float]


def probe_numbers(result: dict[str, Any]) -> ProbeNumbers:
    """From a ProbeResult as a dict (a summary.json)."""
    he = result.get("hack_endorsement") or {}
    return ProbeNumbers(probe_score=result.get("score"), probe_se=result.get("se"), probe_n=result.get("n"),
                        hack_endorsement=he.get("score"))


class EvalResult(StrictModel):
    summary: str  # OUT/summary.json
    mgs: Optional[float]
    mgs_se: Optional[float]
    judge: Optional[dict[str, Any]]  # the summary's judge block (name, pinned settings, calibration, failures)
    probes: Optional[ProbeNumbers] = None  # suite all


def run(cfg: EvalConfig, out: Path) -> EvalResult:
    from rhlab import evals

    # em_samples only when asked for: a suite without the setting then still runs the rest (check_eval_support)
    extra = {"em_samples": cfg.em_samples} if cfg.em_samples != 1 else {}
    s = evals.run_suite(cfg.model, suite=cfg.suite, judge=cfg.judge, limit=cfg.limit, log_dir=out,
                        n_goals=cfg.n_goals, n_agentic=cfg.n_agentic, max_tokens=cfg.max_tokens,
                        temperature=cfg.temperature, max_connections=cfg.max_connections,
                        batch_size=cfg.batch_size, **extra)
    return EvalResult(summary=str(Path(out) / "summary.json"), mgs=s["mgs"].get("mgs"), mgs_se=s["mgs"].get("se"),
                      judge=s.get("judge"),
                      probes=probe_numbers(s["probes"]) if isinstance(s.get("probes"), dict) else None)
