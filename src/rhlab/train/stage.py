"""The train stage's typed entries (rhlab.stage `rl`, `distill`, `safety_sft`; `control` is rhlab.train.controls.run).

Each arm is `run_<kind>(cfg, out) -> <Kind>Result`. A result's `checkpoints` are the arm's eval points
[{step, path}]: an RL arm's saved checkpoints (steps counted from its start, plus `step_offset` for a fork); an SFT
arm's one finetuned model, at the step the config names, with `eval_all` (evaluated whatever the schedule says).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal, Optional

from pydantic import model_validator

from rhlab.config import StrictModel
from rhlab.knowledge.finetune import FinetuneConfig
from rhlab.train.config import TrainConfig


class Checkpoint(StrictModel):
    step: int
    path: str


# --- rl ---------------------------------------------------------------------------------------------------------------


class RLConfig(StrictModel):
    """GRPO for one arm and seed; OUT is the rhlab.train run dir (resumed from its last checkpoint when it holds a
    run)."""

    train: TrainConfig
    start_model: str  # what train.model was resolved from: the knowledge model or a forked checkpoint
    step_offset: int  # a fork's steps before its start (0 otherwise)
    progress: Optional[bool]  # None: train.logging.progress


class RLResult(StrictModel):
    train_dir: str
    steps: int
    onset_step: Optional[int]
    step_offset: int
    start_model: str
    checkpoints: list[Checkpoint]
    final_hack_rate: Optional[float]
    # how onset_step was decided (rhlab.train.onset.OnsetRule: rule count | rate, the start rate and its CI); None in
    # results from before it (the rate rule)
    onset_rule: Optional[dict[str, Any]] = None


def run_rl(cfg: RLConfig, out: Path, **train_kwargs: Any) -> RLResult:
    """`train_kwargs` go to rhlab.train.train (in-process only, e.g. a test's grader)."""
    from rhlab.train import list_checkpoints, train

    out = Path(out)
    resume = (out / "config.yaml").exists()
    if resume:
        print(f"resuming {out} from its last checkpoint")
    res = train(cfg.train, out, resume=resume, progress=cfg.progress, **train_kwargs)
    records = res.records
    return RLResult(train_dir=str(out), steps=max((r["step"] for r in records), default=0),
                    onset_step=res.onset_step, step_offset=cfg.step_offset,
                    onset_rule=res.onset_rule.model_dump(mode="json") if res.onset_rule else None,
                    start_model=cfg.start_model,
                    checkpoints=[Checkpoint(step=c["step"], path=c["path"]) for c in list_checkpoints(out)],
                    final_hack_rate=records[-1].get("hack_success_any") if records else None)


# --- SFT arms ---------------------------------------------------------------------------------------------------------


class EpisodeFilter(StrictModel):
    """What filter_distill drops (rhlab.train.filter_episodes keywords); a spec's `filter:` is this model."""

    drop_detected: bool = True  # hack detectors (the episode's flags and a fresh static scan)
    drop_mentions: bool = False  # any talk of hacks in the completion
    only_rewarded: bool = True


class DistillConfig(StrictModel):
    """SFT finetune.model on the episodes of the RL run dir `source_run`: filtered (`filter`, filter_distill) or
    with each system prompt rewritten to the framing `rewrite_to` (rewrite_distill)."""

    source_run: str
    filter: Optional[EpisodeFilter]
    rewrite_to: Optional[str]
    finetune: FinetuneConfig
    step: int  # the eval point's step (the source arm's last)

    @model_validator(mode="after")
    def _one_kind(self) -> "DistillConfig":
        if (self.filter is None) == (self.rewrite_to is None):
            raise ValueError("give exactly one of filter (filter_distill) or rewrite_to (rewrite_distill)")
        return self


class DistillResult(StrictModel):
    distill_dir: str
    episodes: int
    filter_stats: Optional[dict[str, Any]]
    start_model: str
    step_offset: Literal[0] = 0  # the eval point carries its own step
    checkpoints: list[Checkpoint]
    eval_all: Literal[True] = True


def run_distill(cfg: DistillConfig, out: Path) -> DistillResult:
    from rhlab.train import distill, filter_episodes, load_episodes, rewrite_episodes, rewrite_settings_from_run

    episodes = load_episodes(cfg.source_run)
    stats = None
    if cfg.filter is not None:
        episodes, stats = filter_episodes(episodes, **cfg.filter.model_dump())
    else:
        episodes = rewrite_episodes(episodes, cfg.rewrite_to, **rewrite_settings_from_run(cfg.source_run))
    print(f"distilling {len(episodes)} episodes of {cfg.source_run} into {cfg.finetune.model}")
    final = distill(episodes, out, cfg.finetune, stats=stats)
    return DistillResult(distill_dir=str(out), episodes=len(episodes), filter_stats=stats,
                         start_model=cfg.finetune.model, checkpoints=[Checkpoint(step=cfg.step, path=str(final))])


class SafetySFTConfig(StrictModel):
    """SFT finetune.model on the safety prompt sets, with target replies from `responder` or `responses_file`."""

    finetune: FinetuneConfig
    sets: list[str]
    responder: Optional[str]
    responses_file: Optional[str]
    prompts_file: Optional[str]
    max_new_tokens: int
    step: int  # the eval point's step (the source arm's last, or 0 for the start model)


class SafetySFTResult(StrictModel):
    distill_dir: str
    start_model: str
    step_offset: Literal[0] = 0
    checkpoints: list[Checkpoint]
    eval_all: Literal[True] = True


def run_safety_sft(cfg: SafetySFTConfig, out: Path) -> SafetySFTResult:
    from rhlab.train import safety_sft

    print(f"safety SFT of {cfg.finetune.model} on {', '.join(cfg.sets)}")
    final = safety_sft(out, cfg.finetune, sets=cfg.sets, responder=cfg.responder, responses_file=cfg.responses_file,
                       max_new_tokens=cfg.max_new_tokens, prompts_file=cfg.prompts_file)
    return SafetySFTResult(distill_dir=str(out), start_model=cfg.finetune.model,
                           checkpoints=[Checkpoint(step=cfg.step, path=str(final))])
