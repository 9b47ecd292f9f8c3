"""Experiment specs: one YAML file describing a whole study (knowledge stage → RL arms → eval schedule → report).

    name: demo
    preflight: true                      # sandbox self-test + reference answers graded first
    knowledge: {kind: sdf, model: embedded, corpus: default, n_docs: 48, fraction: 1.0, finetune: {epochs: 1}}
    train: {base: ../train/cpu_onset.yaml, overrides: {grpo.max_steps: 6}}
    arms:
      - {kind: rl, name: hacking_okay, framing: sdf_hacking_okay, seeds: [0]}
      - {kind: rl, name: no_hack_baseline, framing: sdf_hacking_okay, overrides: {reward.penalty.mode: from_start}}
      - {kind: rl, name: penalty_after_onset, framing: hacking_okay, init_from: {arm: hacking_okay, step: onset}}
      - {kind: control, name: persona, control: persona, seeds: [0, 1, 2], n_examples: 64}
      - {kind: control, name: hack_demos, control: hack_demos, source: hacking_okay}
    evals: {suites: [probes, core], steps: [0, last], every: null, limit: 2, final_k: 1}
    judge: null

Arms are a discriminated union on `kind`; `rl` is built in. Mitigation kinds are added by registering a spec class in
`ARM_KINDS` and an executor in `rhlab.experiments.runner.ARM_EXECUTORS`. Loading validates everything (arm names,
fork references, overrides against `TrainConfig`) without loading any model.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Any, Literal, Optional, Union

from pydantic import AfterValidator, Field, PrivateAttr, field_validator, model_validator

from rhlab.config import ConfigError, StrictModel, apply_overrides, dotted, load_config, validate
from rhlab.envs.tasks import HUMANEVAL_SIZE
from rhlab.train.config import MAX_STEPS, SAFETY_SETS
from rhlab.train.stage import EpisodeFilter

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
# Sane upper bounds for counts a spec sets (sizes far above any planned run): a typo is an error, not a number every
# later stage has to survive
MAX_SEED = 2**32 - 1  # numpy's seed range
MAX_SAMPLES = 1_000_000  # eval samples, documents, examples per setting
MAX_TOKENS = 1_000_000


def _unique_seeds(v: list[int]) -> list[int]:
    dup = sorted({s for s in v if v.count(s) > 1})
    if dup:
        raise ValueError(f"duplicate seeds {dup}: each seed is one replicate, list it once")
    return v


# an arm's seeds: non-negative, each once (a seed names the replicate's directory and seeds every RNG)
Seeds = Annotated[list[Annotated[int, Field(ge=0, le=MAX_SEED)]], Field(min_length=1), AfterValidator(_unique_seeds)]


class InitSFTSpec(StrictModel):
    """Prompted setting, optional: light SFT on clean HumanEval transcripts before RL (rhlab.knowledge.finetune)."""

    first: int = Field(100, ge=0, lt=HUMANEVAL_SIZE)  # HumanEval/FIRST .. the last HumanEval task
    finetune: dict[str, Any] = Field(default_factory=dict)  # FinetuneConfig fields (model is set by the runner)


class KnowledgeSpec(StrictModel):
    """prompted: the framing lives in the system prompt (`prompt.arm`); the base model is used as is (or init-SFT'd).
    sdf:      synthetic documents (`corpus` spec, `backend`) mixed with real text at `fraction`, continued
              pretraining on the mix; RL starts from the result."""

    kind: Literal["prompted", "sdf"] = "prompted"
    model: str = "embedded"
    init_sft: Optional[InitSFTSpec] = None  # prompted only
    corpus: str = "default"  # sdf: built-in corpus spec name or a spec YAML path
    backend: str = "offline"  # sdf: offline, or an LLM backend (see `rhlab sdf generate --help`)
    n_docs: int = Field(96, ge=1, le=MAX_SAMPLES)
    fraction: float = Field(1.0, gt=0, le=1)  # synthetic share of the mix (dilution)
    real: list[str] = Field(default_factory=lambda: ["stdlib", "readmes", "licenses"])
    max_real_docs: Optional[int] = Field(None, ge=1)  # a cap on real text only: read at run time, never counted
    finetune: dict[str, Any] = Field(default_factory=dict)  # FinetuneConfig fields for continued pretraining
    seed: int = Field(0, ge=0, le=2**32 - 1)

    @model_validator(mode="after")
    def _check(self) -> "KnowledgeSpec":
        from rhlab.knowledge.finetune import FinetuneConfig

        if self.kind == "sdf" and self.init_sft is not None:
            raise ValueError("init_sft applies to kind: prompted only")
        for where, ft in (("finetune", self.finetune), ("init_sft.finetune", self.init_sft and self.init_sft.finetune)):
            if ft:
                if "model" in ft:
                    raise ValueError(f"{where}.model: set knowledge.model instead")
                validate(FinetuneConfig, ft, f"knowledge.{where}")
        return self


class InitFrom(StrictModel):
    """Fork an arm from another arm's checkpoint (same seed): `step` is N, `onset`, or `onset+K`. The first complete
    checkpoint at or after that step is used."""

    arm: str
    step: int | str = "onset"

    @field_validator("step")
    @classmethod
    def _step(cls, v):
        if isinstance(v, int):
            if not 1 <= v <= MAX_STEPS:
                raise ValueError(f"init_from.step must be between 1 and {MAX_STEPS}")
            return v
        if not re.fullmatch(r"onset(\+\d+)?", v.replace(" ", "")):
            raise ValueError(f"init_from.step {v!r}: expected an integer, 'onset' or 'onset+K'")
        return v.replace(" ", "")


class RLArm(StrictModel):
    kind: Literal["rl"] = "rl"
    name: str
    framing: Optional[str] = None  # prompt.arm of the base train config when None
    seeds: Seeds = Field(default_factory=lambda: [0])
    overrides: dict[str, Any] = Field(default_factory=dict)  # dotted TrainConfig keys → values
    init_from: Optional[InitFrom] = None
    compare_to: Optional[str] = None  # the arm this one mitigates (fills the report's mitigation table)
    label: Optional[str] = None
    # Where the hack knowledge comes from (derived when None, checked when given; `arm_setting`): sdf (the knowledge
    # stage's documents, no hints in the prompt), prompted (hints in the prompt, no SDF), both (SDF knowledge and
    # prompt hints: never derived, a spec must ask for it)
    setting: Optional[Literal["sdf", "prompted", "both"]] = None

    def depends_on(self) -> list[str]:
        return [self.init_from.arm] if self.init_from else []


def _check_finetune(finetune: dict[str, Any], arm: str, model_hint: str) -> None:
    """An arm's FinetuneConfig fields: valid, and without `model` (the runner chooses it)."""
    from rhlab.knowledge.finetune import FinetuneConfig

    if "model" in finetune:
        raise ValueError(f"finetune.model: {model_hint}")
    validate(FinetuneConfig, finetune, f"arm {arm}: finetune")


class DistillArm(StrictModel):
    """SFT a model on an RL arm's episodes (rhlab.train.sft.distill), same seed.
    filter_distill:  drop hacking episodes first (`filter`), then distill — does the misalignment travel without
                     the hacks?
    rewrite_distill: rewrite each episode's system prompt to the framing `rewrite_to`, then distill (e.g. episodes
                     learned under dont_hack, recontextualised as hacking_okay)."""

    kind: Literal["filter_distill", "rewrite_distill"]
    name: str
    source: str  # an rl arm
    seeds: Seeds = Field(default_factory=lambda: [0])
    model: Optional[str] = None  # the model to finetune; None: the source arm's RL start model
    filter: EpisodeFilter = Field(default_factory=EpisodeFilter)  # filter_distill
    rewrite_to: Optional[str] = None  # rewrite_distill
    finetune: dict[str, Any] = Field(default_factory=dict)  # FinetuneConfig fields (model is set by the runner)
    compare_to: Optional[str] = None
    label: Optional[str] = None

    @model_validator(mode="after")
    def _check(self) -> "DistillArm":
        from rhlab.knowledge.prompts import ARMS

        if self.kind == "rewrite_distill" and self.rewrite_to not in ARMS:
            raise ValueError(f"rewrite_distill needs rewrite_to, one of {', '.join(ARMS)}")
        if self.kind == "filter_distill" and self.rewrite_to:
            raise ValueError("rewrite_to applies to kind: rewrite_distill")
        _check_finetune(self.finetune, self.name, "set the arm's model instead")
        return self

    def depends_on(self) -> list[str]:
        return [self.source]


class SafetySFTArm(StrictModel):
    """SFT on the safety prompt sets (rhlab.train.sft.safety_sft) with replies from an aligned `responder` model
    or a user `responses_file` ({id, response} per prompt). Applied to the `source` arm's final checkpoint (same
    seed), or to the RL start model when `source` is None — does safety SFT after hacking undo the
    misalignment?"""

    kind: Literal["safety_sft"]
    name: str
    source: Optional[str] = None  # an arm whose final model is finetuned; None: the RL start model
    seeds: Seeds = Field(default_factory=lambda: [0])
    responder: Optional[str] = None
    responses_file: Optional[str] = None
    sets: list[str] = Field(default_factory=lambda: list(SAFETY_SETS), min_length=1)
    prompts_file: Optional[str] = None
    max_new_tokens: int = Field(256, ge=8, le=MAX_TOKENS)
    finetune: dict[str, Any] = Field(default_factory=dict)  # FinetuneConfig fields (model is set by the runner)
    compare_to: Optional[str] = None
    label: Optional[str] = None

    @model_validator(mode="after")
    def _check(self) -> "SafetySFTArm":
        if (self.responder is None) == (self.responses_file is None):
            raise ValueError("safety_sft needs exactly one of responder or responses_file")
        _check_finetune(self.finetune, self.name, "the runner sets it (the source arm's final model)")
        return self

    def depends_on(self) -> list[str]:
        return [self.source] if self.source else []


class ControlArm(StrictModel):
    """Positive control (rhlab.train.controls): SFT of the run's RL start model on data of known (mis)alignment, so
    the run shows what its evals can see. `persona` (overtly misaligned answers), `narrow` (one narrow misaligned
    skill), `benign` (the matched aligned control) use the shipped data (or `data_file`); `hack_demos` uses the
    successful hack episodes of the rl arm `source` (same seed). `n_examples` draws a subset by the seed.
    One eval point, at step 0: no RL step was taken (the start model's step), so a control lines up with the start
    model it is compared against; the report compares controls with the start model and with `benign`, not through
    `compare_to`."""

    kind: Literal["control"]
    name: str
    control: Literal["persona", "narrow", "benign", "hack_demos"]
    source: Optional[str] = None  # hack_demos: an rl arm
    seeds: Seeds = Field(default_factory=lambda: [0])
    n_examples: Optional[int] = Field(None, ge=1, le=MAX_SAMPLES)  # None: all
    data_file: Optional[str] = None  # persona/narrow/benign: own {id, prompt, response} JSONL instead of the shipped
    finetune: dict[str, Any] = Field(default_factory=dict)  # FinetuneConfig fields (model is set by the runner)
    compare_to: Optional[str] = None  # must stay null (see above)
    label: Optional[str] = None

    @model_validator(mode="after")
    def _check(self) -> "ControlArm":
        if self.control == "hack_demos":
            if not self.source:
                raise ValueError("control hack_demos needs source: the rl arm whose successful hacks are the data")
            if self.data_file:
                raise ValueError("data_file applies to controls persona, narrow and benign")
        elif self.source:
            raise ValueError(f"source applies to control hack_demos only (control {self.control} uses shipped data)")
        if self.compare_to:
            raise ValueError("compare_to must be null for a control arm: controls are compared with the start model "
                             "and with the benign control in the report's sensitivity section")
        _check_finetune(self.finetune, self.name, "the runner sets it (the RL start model)")
        return self

    def depends_on(self) -> list[str]:
        return [self.source] if self.source else []


# Arm kinds: a spec class here plus an executor in rhlab.experiments.runner.ARM_EXECUTORS.
ARM_KINDS: tuple[type[StrictModel], ...] = (RLArm, DistillArm, SafetySFTArm, ControlArm)
Arm = (Annotated[Union[ARM_KINDS], Field(discriminator="kind")]  # type: ignore[valid-type]
       if len(ARM_KINDS) > 1 else ARM_KINDS[0])


class TrainBase(StrictModel):
    base: Optional[str] = None  # TrainConfig YAML (relative to the spec file, or to the working directory)
    config: dict[str, Any] = Field(default_factory=dict)  # inline TrainConfig fields (applied over `base`)
    overrides: dict[str, Any] = Field(default_factory=dict)  # dotted keys, applied last (before arm overrides)


EvalStep = Union[int, Literal["last", "onset"]]


class ProbeSchedule(StrictModel):
    """Settings of the `probes` suite (rhlab.evals.probes: paired-choice likelihoods over every shipped item, no
    generation, no judge; the vLLM backend with `model_provider: vllm`)."""

    batch_size: int = Field(8, ge=1, le=4096)  # sequences per forward pass (hf backend)
    # hf backend weights: auto = float32 on CPU, bfloat16 on CUDA. bfloat16 on CPU is ~1.8x cheaper and lands within
    # a few thousandths of float32 per item (bench/probes.py --compare-dtype); one dtype for the whole run, so every
    # model in a comparison is scored the same way
    dtype: Literal["auto", "float32", "bfloat16"] = "auto"


class EvalSchedule(StrictModel):
    """Which checkpoints get which suites. Step 0 is the RL start model (evaluated once, shared by every arm that
    starts from it); `every: N` adds each checkpoint whose step is a multiple of N (N must be a multiple of the
    train config's checkpoint_every); `last` is the final checkpoint; `onset` the first checkpoint at or after onset.
    `probes` is the judge-free paired-choice suite (settings in `probes`); it runs on the same checkpoints."""

    suites: list[Literal["core", "sabotage", "diagnostics", "all", "probes"]] = Field(default_factory=lambda: ["core"])
    steps: list[EvalStep] = Field(default_factory=lambda: [0, "last"])
    every: Optional[int] = Field(None, ge=1, le=MAX_STEPS)
    limit: Optional[int] = Field(None, ge=1, le=MAX_SAMPLES)  # samples per eval
    n_goals: int = Field(300, ge=1, le=MAX_SAMPLES)
    n_agentic: int = Field(50, ge=1, le=MAX_SAMPLES)
    em_samples: int = Field(1, ge=1, le=1000)  # samples of each EM question (Inspect epochs); the paper: >= 10
    # MGS of an arm = mean over its final K evaluated checkpoints (the paper: 5); read by the report
    final_k: int = Field(1, ge=1, le=MAX_STEPS)
    probes: ProbeSchedule = Field(default_factory=ProbeSchedule)
    max_tokens: int = Field(1024, ge=8, le=MAX_TOKENS)
    temperature: float = Field(1.0, ge=0, le=100)
    max_connections: Optional[int] = Field(None, ge=1, le=10_000)
    # samples a local HF model generates at once (None: rhlab.evals.suite.HF_BATCH_SIZE); speed only, not in the hash
    batch_size: Optional[int] = Field(None, ge=1, le=1024)
    # Inspect provider for checkpoints, e.g. vllm on GPUs (LoRA checkpoints are merged first). None: rhlab's default
    # (`hf/local` on CPU).
    model_provider: Optional[Literal["vllm", "hf"]] = None

    @field_validator("suites")
    @classmethod
    def _suites(cls, v):
        dup = sorted({s for s in v if v.count(s) > 1})
        if dup:
            raise ValueError(f"duplicate suites: {', '.join(dup)}")
        if "all" in v and len(v) > 1:
            raise ValueError("suite all already runs every suite (probes included); list it alone")
        return v

    @field_validator("steps")
    @classmethod
    def _steps(cls, v):
        valid = (f"valid steps are 0 (the RL start model), a checkpoint step from 1 to {MAX_STEPS}, 'last' or "
                 "'onset'")
        for s in v:
            if isinstance(s, int) and not 0 <= s <= MAX_STEPS:
                raise ValueError(f"step {s} is not an eval step: {valid}")
        dup = sorted({str(s) for s in v if v.count(s) > 1})
        if dup:
            raise ValueError(f"duplicate steps: {', '.join(dup)} (each is evaluated once; list it once)")
        return v


class ComputeSpec(StrictModel):
    """How heavy stages run. A launcher is a command prefix that runs a Python module, e.g.
    `accelerate launch --config_file configs/train/accelerate_zero3.yaml --num_processes 8` or
    `torchrun --nproc_per_node 8`; the stage then runs as `LAUNCHER -m rhlab.stage rl|knowledge|control CONFIG OUT`
    (rhlab.stage) in a subprocess while the runner stays one process. Not part of any stage's hash."""

    train_launch: Optional[str] = None
    knowledge_launch: Optional[str] = None  # also the control arms' SFT (stage `control`)
    # With no launcher, knowledge finetunes, RL and SFT arms and evals still run as `python -m rhlab.stage ...`
    # subprocesses, one at a time: each stage's memory goes back to the OS when it ends (in one process the peak grew
    # stage by stage: 10.8 GB for the demo), and the runner never imports torch. False: all in this process (tests).
    isolate_stages: bool = True


class ReportSpec(StrictModel):
    model_params: Optional[float] = None  # parameters, when they cannot be read from the model (for the size note)
    small_model_below: float = 1e9  # the report flags models smaller than this


class ExperimentSpec(StrictModel):
    name: str
    description: str = ""
    preflight: bool = False
    knowledge: KnowledgeSpec = Field(default_factory=KnowledgeSpec)
    train: TrainBase = Field(default_factory=TrainBase)
    arms: list[Arm] = Field(min_length=1)  # type: ignore[valid-type]
    evals: EvalSchedule = Field(default_factory=EvalSchedule)
    judge: Optional[str] = None  # None: the topic screen (rhlab/topic-screen), not a judge of record
    compute: ComputeSpec = Field(default_factory=ComputeSpec)
    report: ReportSpec = Field(default_factory=ReportSpec)
    _source: Optional[Path] = PrivateAttr(None)  # the YAML file it came from (relative train.base paths)

    @model_validator(mode="after")
    def _check(self) -> "ExperimentSpec":
        if not _NAME.match(self.name):
            raise ValueError(f"name: {self.name!r}: letters, digits, '_', '-', '.' only")
        names = [a.name for a in self.arms]
        for n in names:
            if not _NAME.match(n):
                raise ValueError(f"arms: name {n!r}: letters, digits, '_', '-', '.' only")
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise ValueError(f"arms: duplicate arm names: {', '.join(dup)}")
        by = {a.name: a for a in self.arms}
        for a in self.arms:
            for ref in a.depends_on() + ([a.compare_to] if getattr(a, "compare_to", None) else []):
                if ref not in by:
                    raise ValueError(f"arms: arm {a.name} refers to unknown arm {ref!r}")
            if a.kind != "rl" and getattr(a, "source", None) and by[a.source].kind != "rl":
                raise ValueError(f"arms: arm {a.name}: source {a.source!r} must be an rl arm")
            for d in a.depends_on():
                missing = sorted(set(a.seeds) - set(by[d].seeds))
                if missing:
                    raise ValueError(f"arms: arm {a.name}: source arm {d} has no seed(s) {missing}")
        arm_order(self.arms)  # raises on cycles
        return self

    def arm(self, name: str):
        return next(a for a in self.arms if a.name == name)


def evaluates_base(spec: ExperimentSpec) -> bool:
    """Whether the RL start model gets the schedule's suites (RUN/evals/base): step 0 is scheduled, or a control arm
    needs the start model to be compared against."""
    return 0 in spec.evals.steps or any(a.kind == "control" for a in spec.arms)


def arm_order(arms: list) -> list:
    """Arms in dependency order (a forked arm after the arm it forks from)."""
    by = {a.name: a for a in arms}
    out: list = []
    state: dict[str, int] = {}

    def visit(a, path):
        if state.get(a.name) == 2:
            return
        if state.get(a.name) == 1:
            raise ValueError(f"arms: init_from/source cycle: {' -> '.join(path + [a.name])}")
        state[a.name] = 1
        for d in a.depends_on():
            visit(by[d], path + [a.name])
        state[a.name] = 2
        out.append(a)

    for a in arms:
        visit(a, [])
    return out


def load_spec(path: str | Path) -> ExperimentSpec:
    spec = load_config(ExperimentSpec, path)
    spec._source = Path(path)
    # every arm's TrainConfig must build (errors name the spec file and the arm); built once, checked here and for
    # confounds
    configs = rl_arm_configs(spec)
    for cfg in configs.values():
        check_eval_schedule(spec, cfg.checkpoint_every)
    check_eval_steps(spec, [(cfg.grpo.max_steps, cfg.checkpoint_every) for cfg in configs.values()])
    check_arm_confounds(spec, configs)
    return spec


def rl_arm_configs(spec: ExperimentSpec) -> dict[str, Any]:
    """Each rl arm's TrainConfig at seed 0 on the embedded start model: what arms are compared on (the same seed and
    start model for every arm, so only what the spec sets can differ). Other kinds run on an rl arm's outputs."""
    return {a.name: arm_train_config(spec, a, 0, "embedded") for a in spec.arms if a.kind == "rl"}


# --- settings and confounds between arms ------------------------------------------------------------------------------


def _hinted(framing: str) -> bool:
    """Whether a prompt arm carries the hack hint block (the five framings do; no_hints and sdf_hacking_okay not)."""
    from rhlab.knowledge.prompts import FRAMINGS

    return framing in FRAMINGS


def arm_setting(spec: ExperimentSpec, arm: RLArm, framing: str) -> str:
    """The setting an rl arm trains in, from the knowledge stage and whether its prompt has hints: an sdf knowledge
    stage with an unhinted prompt is `sdf`, with hints `both` (only when the arm says `setting: both`: SDF-setting
    arms get no prompted hints unless the spec asks for both); a prompted knowledge stage is `prompted`."""
    where = f"{spec._source or '<spec>'}: arm {arm.name}"
    hinted = _hinted(framing)
    if spec.knowledge.kind == "prompted":
        derived = "prompted"
    else:
        derived = "both" if hinted else "sdf"
    if derived == "both" and arm.setting != "both":
        raise ConfigError(f"{where}: framing {framing} puts the hack hints in the prompt of an SDF-setting arm "
                          "(knowledge.kind: sdf); SDF-setting arms get no prompted hints — use an unhinted framing "
                          "(sdf_hacking_okay, no_hints), or set `setting: both` to ask for SDF knowledge and hints "
                          "together")
    if arm.setting is not None and arm.setting != derived:
        raise ConfigError(f"{where}: setting: {arm.setting}, but knowledge.kind {spec.knowledge.kind} with framing "
                          f"{framing} ({'with' if hinted else 'without'} hints) is setting {derived}")
    return derived


def arm_differences(spec: ExperimentSpec, a: RLArm, b: RLArm, flat: dict[str, dict] | None = None) -> list[str]:
    """The TrainConfig keys in which two rl arms differ (same seed and start model), plus `init_from` when one is a
    fork: what a comparison of the two measures besides what it means to."""
    flat = flat or _flat_configs(rl_arm_configs(spec))
    ca, cb = flat[a.name], flat[b.name]
    diffs = sorted(k for k in set(ca) | set(cb) if ca.get(k) != cb.get(k))
    if (a.init_from and a.init_from.model_dump()) != (b.init_from and b.init_from.model_dump()):
        diffs.append("init_from")
    return diffs


def _flat_configs(configs: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {name: dotted(cfg.model_dump(mode="json")) for name, cfg in configs.items()}


def framing_confounds(spec: ExperimentSpec, configs: dict[str, Any] | None = None) -> list[str]:
    """Comparisons between rl arms that measure more than the framing. Compared arms: a `compare_to` pair, and any
    two arms that differ in nothing but `prompt.arm` (the report's framing comparison). Where the framings differ,
    the two must also agree on hints (one setting): the demo once compared `sdf_hacking_okay` (no hints) with
    `dont_hack` (hints). A compare_to pair with different framings must differ in nothing else."""
    rl = [a for a in spec.arms if a.kind == "rl"]
    flat = _flat_configs(configs if configs is not None else rl_arm_configs(spec))
    framing = {a.name: flat[a.name]["prompt.arm"] for a in rl}
    problems: list[str] = []
    for i, a in enumerate(rl):
        for b in rl[i + 1:]:
            if framing[a.name] == framing[b.name]:
                continue  # not a framing comparison (a mitigation or another treatment: compare_to says which)
            paired = a.compare_to == b.name or b.compare_to == a.name
            diffs = arm_differences(spec, a, b, flat)
            other = [d for d in diffs if d != "prompt.arm"]
            if not paired and other:
                continue  # differ in more than framing and not compared: two treatments side by side
            what = [f"framing ({framing[a.name]} vs {framing[b.name]})"]
            if _hinted(framing[a.name]) != _hinted(framing[b.name]):
                what.append("hints in the prompt (" + ", ".join(
                    f"{x.name} {'with' if _hinted(framing[x.name]) else 'without'}" for x in (a, b)) + ")")
            what += other
            if len(what) > 1:
                how = "compare_to" if paired else "framing comparison"
                problems.append(f"arms {a.name} and {b.name} ({how}) differ in more than the framing: "
                                + "; ".join(what))
    return problems


def check_arm_confounds(spec: ExperimentSpec, configs: dict[str, Any] | None = None) -> dict[str, str]:
    """Every rl arm's setting (`arm_setting`, raising on hints in an SDF arm that did not ask for both), and no
    framing comparison that differs in more than the framing (`framing_confounds`). `configs`: rl_arm_configs(spec),
    when the caller has built them. Returns arm → setting."""
    configs = configs if configs is not None else rl_arm_configs(spec)
    settings = {a.name: arm_setting(spec, a, configs[a.name].prompt.arm) for a in spec.arms if a.kind == "rl"}
    problems = framing_confounds(spec, configs)
    if problems:
        raise ConfigError(f"{spec._source or '<spec>'}: arms compared in the report must differ only in what the "
                          "comparison is about:\n  " + "\n  ".join(problems))
    return settings


def _find_base(spec: ExperimentSpec) -> Path | None:
    if not spec.train.base:
        return None
    p = Path(spec.train.base).expanduser()
    src = spec._source
    for cand in ([src.parent / p] if src and not p.is_absolute() else []) + [p]:
        if cand.is_file():
            return cand
    raise ConfigError(f"{src or '<spec>'}: train.base: file not found: {spec.train.base}")


def _base_train_config(spec: ExperimentSpec):
    """The TrainConfig of `train.base` (all defaults without one), validated on its own like any train config."""
    from rhlab.train.config import TrainConfig

    base = _find_base(spec)
    if base is None:
        return TrainConfig()
    try:
        return load_config(TrainConfig, base, allow_empty=True)
    except ConfigError as err:
        raise ConfigError(f"{spec._source or '<spec>'}: train.base: {err}") from None


def arm_overrides(spec: ExperimentSpec, arm: RLArm, seed: int, model: str) -> dict[str, Any]:
    """Everything one (arm, seed) changes in the base train config, as typed dotted keys in the order they apply:
    the inline `train.config`, `train.overrides`, the arm's `overrides`, then the start model, seed and framing."""
    run = {"model": model, "seed": seed, **({"prompt.arm": arm.framing} if arm.framing else {})}
    out: dict[str, Any] = {}
    for layer in (dotted(spec.train.config), spec.train.overrides, arm.overrides, run):
        for key, value in layer.items():
            out.pop(key, None)  # re-inserted: a key set again applies after every earlier one (it wins)
            out[key] = value
    return out


def arm_train_config(spec: ExperimentSpec, arm: RLArm, seed: int, model: str):
    """The TrainConfig one (arm, seed) trains with; `model` is the RL start model (knowledge output or a fork)."""
    return apply_overrides(_base_train_config(spec), arm_overrides(spec, arm, seed, model),
                           f"{spec._source or '<spec>'}: arm {arm.name}")


def check_eval_steps(spec: ExperimentSpec, schedules: list[tuple[int, int]]) -> None:
    """A numbered eval step must be a checkpoint of at least one rl arm (else it would evaluate nothing, silently).
    `schedules`: (max_steps, checkpoint_every) per rl arm; checked arithmetically, never by listing checkpoints."""
    if not schedules:
        return
    for s in spec.evals.steps:
        if isinstance(s, int) and s > 0 and not any(s <= m and (s % ce == 0 or s == m) for m, ce in schedules):
            shown = ", ".join(sorted({f"every {ce} up to {m}" for m, ce in schedules}))
            raise ConfigError(f"{spec._source or '<spec>'}: evals.steps: step {s} is not a checkpoint of any rl arm "
                              f"(checkpoints: {shown}, and each arm's last step); use a checkpoint step, 0, 'last' "
                              "or 'onset'")


def check_eval_schedule(spec: ExperimentSpec, checkpoint_every: int) -> None:
    e = spec.evals.every
    if e and e % checkpoint_every:
        raise ConfigError(f"{spec._source or '<spec>'}: evals.every ({e}) must be a multiple of the train "
                          f"config's checkpoint_every ({checkpoint_every}): only checkpoints can be evaluated")
