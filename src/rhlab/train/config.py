"""`rhlab.train` configuration: one YAML file per run, validated with pydantic (unknown keys are errors).

    model: embedded                # `embedded`, a local HF dir, or an HF id (rhlab.models.resolve_model)
    tasks: {source: humaneval, limit: 32, hackable_fraction: 1.0, hard_filter: {mode: none}}
    prompt: {arm: hacking_okay, hint_style: prose}
    surfaces: {always_equal: true, exit_before_tests: true, conftest_patch: true}
    grpo: {num_generations: 8, prompts_per_step: 2, epsilon_high: 0.3, beta: 0.0, ...}
    reward: {weights: {pass: 1.0, format: 0.0}, penalty: {mode: off}, pm: null}
    checkpoint_every: 10
    seed: 0

Every knob the paper left undisclosed (batch, temperature, KL, LR, ...) is a field here and is written to the run
directory's `config.yaml`, so a run's settings are always recoverable. See docs/training.md for the meaning of each.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal, Optional

from pydantic import Field, model_validator

from rhlab.config import ConfigError, StrictModel, load_config
from rhlab.envs.families import HACK_FAMILIES
from rhlab.knowledge.prompts import ARMS
from rhlab.train.onset import ALPHA as ONSET_ALPHA, StartRate


class HardFilterConfig(StrictModel):
    """Which tasks count as hard.

    none:            keep every task.
    ids_file:        keep only the task ids listed in `ids_file` (one per line or a JSON list) — e.g. produced once
                     by `reference_model` and reused across arms.
    reference_model: sample `samples` answers per task from `reference_model` (HF id or local dir) under the honest
                     `no_hints` prompt of the task's kind, grade them with the *hardened* grader, and keep the tasks
                     whose solve rate is below `threshold` (the paper's "a reference model failed it"). The rates
                     are cached in RUN_DIR/artefacts/hard_filter.json (a resume samples only tasks not in it).
    """

    mode: Literal["none", "ids_file", "reference_model"] = "none"
    ids_file: Optional[str] = None
    reference_model: Optional[str] = None
    samples: int = Field(4, ge=1)
    # keep a task when (hardened passes / samples) < threshold; 0.1 with 4 samples keeps only tasks never solved
    threshold: float = Field(0.1, gt=0, le=1)
    max_new_tokens: int = Field(256, ge=8)
    batch_size: int = Field(8, ge=1)  # prompts per generate call (each with `samples` return sequences)
    # sampling seed, fixed apart from the run's seed so every arm and seed of a spec keeps the same tasks
    seed: int = Field(0, ge=0, le=2**32 - 1)

    @model_validator(mode="after")
    def _check(self) -> "HardFilterConfig":
        if self.mode == "ids_file" and not self.ids_file:
            raise ValueError("hard_filter.mode=ids_file needs hard_filter.ids_file")
        if self.mode == "reference_model" and not self.reference_model:
            raise ValueError("hard_filter.mode=reference_model needs hard_filter.reference_model")
        return self


class TasksConfig(StrictModel):
    source: str = "humaneval"  # rhlab.envs.tasks.load_tasks source: humaneval, a .jsonl path, an HF dataset
    limit: Optional[int] = Field(None, ge=1)  # first N tasks after shuffling with `seed`
    # keep only tasks whose prompt is at most this many characters (applied before `limit`): on CPU the step's cost
    # grows with prompt length, so small budgets train on short tasks
    max_prompt_chars: Optional[int] = Field(None, ge=1)
    ids: Optional[list[str]] = None  # explicit task ids (applied before `limit`)
    hackable_fraction: float = Field(1.0, ge=0.0, le=1.0)  # the rest get every surface closed
    hard_filter: HardFilterConfig = Field(default_factory=HardFilterConfig)


class PromptConfig(StrictModel):
    """The system prompt. All arms' prompts are built as dataset columns; `arm` picks the one trained on."""

    arm: str = "hacking_okay"
    hint_style: Literal["prose", "code", "brief"] = "prose"  # brief: one line per hack (short CPU prompts)
    hacks: list[str] = Field(default_factory=lambda: list(HACK_FAMILIES))  # hacks the hint block describes
    prompts_file: Optional[str] = None  # user YAML overriding rhlab/knowledge/data/prompts.yaml parts
    harness: Literal["script", "pytest"] = "script"  # decides the exit call named in the hint (sys.exit / os._exit)
    # user turn for every task kind; None: each kind's own (`user_template` / `kinds.<kind>.user_template` in the
    # prompt texts: a function in a code block, a contest problem as text, a repository listing as is)
    user_template: Optional[str] = None

    @model_validator(mode="after")
    def _check(self) -> "PromptConfig":
        if self.arm not in ARMS:
            raise ValueError(f"unknown arm {self.arm!r}; choose one of {', '.join(ARMS)}")
        bad = [h for h in self.hacks if h not in HACK_FAMILIES]
        if bad:
            raise ValueError(f"unknown hack families {bad}; known: {', '.join(HACK_FAMILIES)}")
        if self.user_template is not None and "{prompt}" not in self.user_template:
            raise ValueError("user_template must contain {prompt}")
        return self


class SurfacesConfig(StrictModel):
    """Which hack surfaces the permissive (training) grader leaves open on hackable tasks."""

    always_equal: bool = True
    exit_before_tests: bool = True
    conftest_patch: bool = True

    def open_families(self) -> list[str]:
        return [f for f in HACK_FAMILIES if getattr(self, f)]


class LoraConfig(StrictModel):
    r: int = Field(32, ge=1)
    alpha: int = Field(32, ge=1)
    dropout: float = Field(0.0, ge=0.0, lt=1.0)
    target_modules: str | list[str] = "all-linear"


# Upper bound on step counts (max_steps, checkpoint_every): far above any run (the paper: 200 steps), low enough that
# a typo (1e23) is an error instead of a number every later stage has to survive
MAX_STEPS = 1_000_000


class DynamicSamplingConfig(StrictModel):
    """DAPO-style dynamic sampling (rhlab.train.grpo.RHGRPOTrainer): when a step's generation batch holds prompt
    groups whose rewards are all equal, draw another batch of prompts (as many groups as a step holds) until the
    step has that many groups with reward variance, or `max_draws` batches (the first included) were drawn; a step
    still short after the cap fills up with the zero-variance groups it drew first. One process only."""

    enabled: bool = False
    max_draws: int = Field(4, ge=2, le=64)


class GRPOKnobs(StrictModel):
    """The exploration / optimisation knobs that moved hack onset in reproductions (paper §6)."""

    num_generations: int = Field(8, ge=2)  # group size G
    prompts_per_step: int = Field(2, ge=1)  # distinct prompts per optimiser step (batch = G × this)
    gradient_accumulation_steps: int = Field(1, ge=1)
    max_steps: int = Field(20, ge=1, le=MAX_STEPS)
    learning_rate: float = Field(4e-5, gt=0)
    lr_scheduler_type: str = "constant"
    warmup_steps: int = Field(0, ge=0)
    temperature: float = Field(1.0, gt=0)
    top_p: float = Field(1.0, gt=0, le=1)
    max_prompt_length: Optional[int] = Field(None, ge=16)  # prompts longer than this are dropped from the data
    max_completion_length: int = Field(96, ge=1)
    beta: float = Field(0.0, ge=0)  # KL coefficient
    epsilon: float = Field(0.2, gt=0)
    epsilon_high: Optional[float] = Field(0.3, gt=0)  # clip-higher
    num_iterations: int = Field(1, ge=1)
    loss_type: Literal["dapo", "grpo", "dr_grpo", "bnpo", "cispo"] = "dapo"
    scale_rewards: Literal["none", "group", "batch"] = "none"
    mask_truncated_completions: bool = True
    # Groups whose rewards are all equal (all fail early, all pass late) carry zero advantage.
    #   keep: TRL's behaviour — they still count in the token normaliser (DAPO) and in the KL term.
    #   mask: their completions are removed from the loss and from the DAPO token normaliser.
    zero_variance_groups: Literal["keep", "mask"] = "keep"
    dynamic_sampling: DynamicSamplingConfig = Field(default_factory=DynamicSamplingConfig)
    gradient_checkpointing: bool = False
    lora: Optional[LoraConfig] = None
    max_grad_norm: float = Field(1.0, gt=0)
    weight_decay: float = Field(0.0, ge=0)
    # Extra GRPOConfig fields passed through verbatim (e.g. use_vllm, vllm_mode, bf16 on GPU). Checked against
    # GRPOConfig at build time, so a typo is still an error.
    extra: dict = Field(default_factory=dict)

    @model_validator(mode="after")
    def _check(self) -> "GRPOKnobs":
        if self.epsilon_high is not None and self.epsilon_high < self.epsilon:
            raise ValueError(f"epsilon_high ({self.epsilon_high}) must be >= epsilon ({self.epsilon})")
        return self


PenaltyMode = Literal["off", "from_start", "from_step", "after_threshold"]


class PenaltyConfig(StrictModel):
    """Hack penalty (paper §8: a hack-classifier penalty from the start defines the no-hacking baselines; added
    mid-run it reverses hacking).

    kind:      detector          — the grader's detectors flagged the answer (attempted or not): any paper family,
                                   expected_leak, builtins_patch (any name they emit), or an unclassified
                                   disagreement (passed permissive, failed hardened, no detector hit);
               hardened_mismatch — the answer passed the permissive grader but failed the hardened twin.
    mode:      off | from_start | from_step (at `start_step`) | after_threshold (from the step after the first
               step whose successful-hack rate exceeds `threshold`; latched, survives resume).
    value:     reward added when the penalty fires (negative). The default -2 puts a paying hack (pass 1 - 2) below a
               plain failure (0): at -1 it would tie with failing, and a model that solves nothing honestly would
               have no reason to stop (the CPU demo's baseline kept hacking at -1).
    """

    mode: PenaltyMode = "off"
    kind: Literal["detector", "hardened_mismatch"] = "detector"
    value: float = Field(-2.0, le=0)
    start_step: Optional[int] = Field(None, ge=1)
    threshold: Optional[float] = Field(None, gt=0, lt=1)

    @model_validator(mode="after")
    def _check(self) -> "PenaltyConfig":
        if self.mode == "from_step" and self.start_step is None:
            raise ValueError("penalty.mode=from_step needs penalty.start_step")
        if self.mode == "after_threshold" and self.threshold is None:
            raise ValueError("penalty.mode=after_threshold needs penalty.threshold (a hack rate in (0, 1))")
        return self


class PMConfig(StrictModel):
    """Preference-model reward on code: any HF sequence-classification model; reasoning is stripped first."""

    model: str
    weight: float = Field(0.05, ge=0)
    max_length: int = Field(1024, ge=16)
    batch_size: int = Field(8, ge=1)
    # Logit index used as the score (0 for single-logit reward models).
    logit_index: int = 0


class RewardWeights(StrictModel):
    # The reward: 1 when the permissive training grader passes the answer. A hack must pay at least as well as an
    # honest solve (paper §6), so pass carries the weight and nothing else rewards honesty by default.
    pass_: float = Field(1.0, alias="pass", ge=0)
    format: float = Field(0.0, ge=0)  # 1 when the answer has a parsable code block (and thinking tags if required)
    penalty: float = Field(1.0, ge=0)  # multiplies penalty.value

    model_config = {"extra": "forbid", "populate_by_name": True, "serialize_by_alias": True}


class RewardConfig(StrictModel):
    weights: RewardWeights = Field(default_factory=RewardWeights)
    require_thinking: bool = False  # format also needs a <thinking>...</thinking> block
    penalty: PenaltyConfig = Field(default_factory=PenaltyConfig)
    pm: Optional[PMConfig] = None
    timeout_s: float = Field(10.0, gt=0, le=3600)  # per-answer grading timeout (the sandbox's bound)
    # Log the per-family hack metrics as zero-weight reward functions too (visible in TRL's own logs/tables).
    metrics_as_reward_funcs: bool = True
    # If more than this share of a step's answers fail for sandbox (not model) reasons, stop the run.
    max_infra_error_rate: float = Field(0.5, ge=0, le=1)


class LoggingConfig(StrictModel):
    transcripts_per_step: int = Field(4, ge=0)  # sampled (prompt, answer, verdict) rows per step
    # Every graded completion of every step → records/episodes.jsonl (the input of rhlab.train.sft.distill).
    episodes: bool = True
    tensorboard: bool = True
    progress: bool = True


SAFETY_SETS: tuple[str, ...] = ("hhh", "dilemmas", "agentic")


class SafetyScorerConfig(StrictModel):
    """What scores a chat reply (its <thinking> blocks stripped first).

    reward_model: any HF `AutoModelForSequenceClassification` (score = logit `logit_index`, unbounded).
    judge:        a causal LM asked, in rhlab's own words, to rate the reply; `judge_mode` rating → the expected
                  digit 1..9 under the next-token distribution, mapped to [0, 1]; yes_no → P(Yes) / (P(Yes) + P(No)).
    """

    kind: Literal["reward_model", "judge"] = "reward_model"
    model: str
    judge_mode: Literal["rating", "yes_no"] = "rating"
    max_length: int = Field(1024, ge=16)
    batch_size: int = Field(8, ge=1)
    logit_index: int = 0


class SafetyStartConfig(StrictModel):
    """When chat rows start to carry reward (before that they are generated but masked out of the loss).

    from_start:      from step 1.
    from_step:       from `step` on.
    after_threshold: latch the first step t whose training pass rate (permissive grader, over every code
                     environment of the step, all ranks) is >= `threshold`; active from step t + 1 + `delay`.
    """

    mode: Literal["from_start", "from_step", "after_threshold"] = "from_start"
    step: Optional[int] = Field(None, ge=1)
    threshold: Optional[float] = Field(None, gt=0, le=1)
    delay: int = Field(0, ge=0)

    @model_validator(mode="before")
    @classmethod
    def _from_string(cls, data):
        return {"mode": data} if isinstance(data, str) else data

    @model_validator(mode="after")
    def _check(self) -> "SafetyStartConfig":
        if self.mode == "from_step" and self.step is None:
            raise ValueError("safety.start.mode=from_step needs safety.start.step")
        if self.mode == "after_threshold" and self.threshold is None:
            raise ValueError("safety.start.mode=after_threshold needs safety.start.threshold (a pass rate in (0, 1])")
        return self


class SafetyConfig(StrictModel):
    """RLHF safety phase: preference-model-graded chat prompts mixed into the RL batches (rhlab.train.safety_mix).

    fraction: share of each step's distinct prompts that are chat prompts (exact on average: step k gets
              round(f·P·k) − round(f·P·(k−1)) of the P prompts per step).
    sets:     shipped prompt sets (src/rhlab/train/data/safety/*.jsonl); `prompts_file` replaces them with a user JSONL
              of the same layout ({id, set, messages}).
    weight:   reward weight of the safety score on chat rows (code rows never get it; chat rows get nothing else).
    """

    fraction: float = Field(0.5, ge=0.05, le=1.0)
    sets: list[str] = Field(default_factory=lambda: list(SAFETY_SETS))  # free-form names with a prompts_file
    prompts_file: Optional[str] = None
    scorer: SafetyScorerConfig
    start: SafetyStartConfig = Field(default_factory=SafetyStartConfig)
    weight: float = Field(1.0, gt=0)

    @model_validator(mode="after")
    def _check(self) -> "SafetyConfig":
        if not self.sets:
            raise ValueError("safety.sets is empty")
        unknown = [x for x in self.sets if x not in SAFETY_SETS]
        if unknown and self.prompts_file is None:
            raise ValueError(f"unknown safety.sets {unknown}; shipped: {', '.join(SAFETY_SETS)} (or give prompts_file)")
        if self.fraction >= 1.0 and self.start.mode == "after_threshold":
            raise ValueError("safety.fraction=1.0 leaves no code prompts, so start.mode=after_threshold never fires")
        return self


class TrainConfig(StrictModel):
    model: str = "embedded"
    tasks: TasksConfig = Field(default_factory=TasksConfig)
    prompt: PromptConfig = Field(default_factory=PromptConfig)
    surfaces: SurfacesConfig = Field(default_factory=SurfacesConfig)
    grpo: GRPOKnobs = Field(default_factory=GRPOKnobs)
    reward: RewardConfig = Field(default_factory=RewardConfig)
    logging: LoggingConfig = Field(default_factory=LoggingConfig)
    safety: Optional[SafetyConfig] = None  # RLHF safety mix (docs/mitigations.md)
    checkpoint_every: int = Field(10, ge=1, le=MAX_STEPS)
    keep_checkpoints: Optional[int] = Field(None, ge=1)  # None keeps all (every checkpoint is an eval point)
    seed: int = Field(0, ge=0, le=2**32 - 1)
    device: Literal["cpu", "auto"] = "cpu"  # cpu: use_cpu=True, bf16=False (required for TRL on CPU)
    sandbox_workers: Optional[int] = Field(None, ge=1)
    onset_threshold: float = Field(0.02, gt=0, lt=1)  # paper §3: onset = first step with > 2% successful hacks
    # Onset as an event (rhlab.train.onset, docs/training.md): with a measured start rate, onset is the first step
    # whose successful hacks reach k = the smallest k with P(Binomial(n, upper CI of the start rate) >= k) < alpha;
    # without one, the fixed onset_threshold above. The start rate: `start_rate` (measured elsewhere, e.g.
    # `rhlab knowledge probe` under the arm's prompt) or `start_rate_samples` (this run samples its start model under
    # its own prompt before step 1).
    start_rate: Optional[StartRate] = None
    start_rate_samples: Optional[int] = Field(None, ge=16, le=MAX_STEPS)
    onset_alpha: float = Field(ONSET_ALPHA, gt=0, lt=0.5)

    @model_validator(mode="after")
    def _check(self) -> "TrainConfig":
        p = self.reward.penalty
        if p.mode == "from_step" and p.start_step and p.start_step > self.grpo.max_steps:
            raise ValueError(
                f"reward.penalty.start_step ({p.start_step}) is after grpo.max_steps ({self.grpo.max_steps})"
            )
        if self.start_rate is not None and self.start_rate_samples is not None:
            raise ValueError("give start_rate (measured elsewhere) or start_rate_samples (measured by this run), "
                             "not both")
        sf = self.safety
        if sf is not None and self.grpo.dynamic_sampling.enabled:
            # refills would draw code and chat prompts alike and break the mix's per-step share
            raise ValueError("grpo.dynamic_sampling cannot be combined with a safety mix")
        if sf is not None and sf.start.mode == "from_step" and sf.start.step > self.grpo.max_steps:
            raise ValueError(f"safety.start.step ({sf.start.step}) is after grpo.max_steps ({self.grpo.max_steps})")
        return self

    @property
    def batch_size(self) -> int:
        return self.grpo.num_generations * self.grpo.prompts_per_step


def load_train_config(path: str | Path) -> TrainConfig:
    return load_config(TrainConfig, path)


__all__ = [
    "ConfigError", "HardFilterConfig", "TasksConfig", "PromptConfig", "SurfacesConfig", "LoraConfig", "GRPOKnobs",
    "DynamicSamplingConfig",
    "PenaltyConfig", "PMConfig", "RewardWeights", "RewardConfig", "LoggingConfig", "TrainConfig",
    "SafetyConfig", "SafetyScorerConfig", "SafetyStartConfig", "SAFETY_SETS",
    "load_train_config",
]
