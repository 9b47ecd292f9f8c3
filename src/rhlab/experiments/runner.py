"""`rhlab run SPEC`: execute an experiment spec stage by stage in one run directory, reusing finished stages.

    RUN/spec.yaml, RUN/meta.json, RUN/records/{stages,invocations}.jsonl, RUN/stages/*.json (done markers)
    RUN/preflight/                         sandbox self-test + reference answers graded (optional)
    RUN/knowledge/                         corpus.jsonl, mix.jsonl, finetune/final (sdf) | init/final (prompted)
    RUN/evals/base/<suite>/                step-0 evals of the RL start model (summary.json + Inspect logs;
                                           suite probes: summary.json = rhlab.evals.probes.ProbeResult)
    RUN/arms/<arm>/seed-<s>/train/         the rhlab.train run dir (records, transcripts, checkpoints)
    RUN/arms/<arm>/seed-<s>/distill/       SFT arms (distill, safety SFT, controls): OUT/final is the model
    RUN/arms/<arm>/seed-<s>/evals/step-<N>/<suite>/   summary.json + Inspect logs
    RUN/report/index.html                  `rhlab report RUN`

Stages: preflight → knowledge → evals/base → per arm (dependency order) and seed: train/<arm>/seed-<s> →
evals/<arm>/seed-<s>/step-<N>/<suite> → report. An interrupted stage resumes from its own outputs (training from its
last checkpoint, evals through Inspect's eval_set). Arm kinds run through `ARM_EXECUTORS[kind]`.

Each heavy stage is one typed call, `rhlab.stage.run_stage(NAME, CONFIG, OUT)` (knowledge, rl, distill, safety_sft,
control, eval, probes): under the spec's launcher (compute.train_launch for RL arms, compute.knowledge_launch for the
knowledge finetune and controls), else as `python -m rhlab.stage NAME OUT/stage_config.json OUT` when
compute.isolate_stages (the default), else in this process (tests). The stage's OUT/result.json, validated, becomes
the done marker's `result`.
"""

from __future__ import annotations

import platform
import shutil
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from rich.console import Console

from rhlab.config import ConfigError, dump_yaml
from rhlab.experiments.spec import ExperimentSpec, arm_order, arm_train_config, evaluates_base
from rhlab.experiments.stages import StageBook, config_hash
from rhlab.rundir import RunDir, append_jsonl

PACKAGES = ("rhlab", "torch", "transformers", "trl", "peft", "accelerate", "datasets", "inspect_ai", "vllm",
            "deepspeed", "pydantic", "matplotlib")


def package_versions() -> dict[str, str | None]:
    from importlib.metadata import PackageNotFoundError, version

    out: dict[str, str | None] = {}
    for p in PACKAGES:
        try:
            out[p] = version(p.replace("_", "-"))
        except PackageNotFoundError:
            out[p] = None
    return out


@dataclass
class RunContext:
    spec: ExperimentSpec
    run_dir: Path
    book: StageBook
    console: Console
    progress: bool | None = None
    train_kwargs: dict[str, Any] = field(default_factory=dict)  # passed to rhlab.train.train (tests: grader=...)
    ran: set[str] = field(default_factory=set)  # stages executed (not reused) in this invocation
    results: dict[str, dict] = field(default_factory=dict)  # stage id → marker
    report_skipped: list = field(default_factory=list)  # records the report left out (rundir.SkippedRecord)

    def arm_dir(self, arm: str, seed: int) -> Path:
        return self.run_dir / "arms" / arm / f"seed-{seed}"

    def stage(self, sid: str, h: str, fn: Callable[[], dict], outputs: list[Path] = (), deps: list[str] = (),
              legacy: tuple[str, ...] = ()) -> dict:
        """Run `fn` as stage `sid` unless a matching done marker exists; returns the marker."""
        stale = any(d in self.ran for d in deps)
        m = self.book.check(sid, h, list(outputs), stale=stale, legacy=legacy)
        if m is not None:
            self.console.print(f"[dim]reuse[/dim] {sid} ({m['status']}, {m.get('wall_s', 0):.0f}s when run)")
            self.results[sid] = m
            return m
        self.console.rule(f"[bold]{sid}")
        t0 = self.book.start(sid, h)
        try:
            result = fn()
        except BaseException as err:
            self.book.error(sid, t0, err)
            raise
        status = "skipped" if result.get("skipped") else "done"
        m = self.book.finish(sid, h, t0, result, status)
        self.ran.add(sid)
        self.results[sid] = m
        self.console.print(f"[green]{status}[/green] {sid} in {m['wall_s']:.0f}s")
        return m


# --- running a stage ------------------------------------------------------------------------------------------------


def _launcher(ctx: RunContext, explicit: str | None) -> str | None:
    """The command prefix a heavy stage runs under: the spec's launcher, else this Python when stages are isolated,
    else None (in this process). Tests that hand the trainer Python objects (train_kwargs) stay in-process."""
    import shlex

    if explicit:
        return explicit
    if ctx.spec.compute.isolate_stages and not ctx.train_kwargs:
        return shlex.quote(sys.executable)
    return None


def _run_stage(ctx: RunContext, name: str, cfg, out: Path, launcher: str | None, loads: list[str],
               status: str | None = None, **in_process_kwargs):
    """rhlab.stage.run_stage with the command echoed to the console (and a spinner when it runs in this process)."""
    from rich.markup import escape

    from rhlab.stage import run_stage

    def run():
        return run_stage(name, cfg, out, launcher=launcher, loads=loads,
                         echo=lambda cmd: ctx.console.print(f"[dim]$ {escape(cmd)}[/dim]"), **in_process_kwargs)

    if launcher or status is None:
        return run()
    with ctx.console.status(status):
        return run()


# --- knowledge -------------------------------------------------------------------------------------------------------


def knowledge_config(spec: ExperimentSpec):
    """The knowledge stage's config (rhlab.knowledge.stage.KnowledgeConfig) from the spec's `knowledge:` block."""
    from rhlab.knowledge.finetune import finetune_config
    from rhlab.knowledge.stage import KnowledgeConfig, SDFCorpusConfig

    k = spec.knowledge
    if k.kind == "prompted":
        ft = finetune_config("init_sft", {**(k.init_sft.finetune if k.init_sft else {}), "model": k.model},
                             "knowledge.init_sft.finetune")
        return KnowledgeConfig(kind="prompted", model=k.model, init_sft_first=k.init_sft and k.init_sft.first,
                               sdf=None, finetune=ft)
    corpus = SDFCorpusConfig(corpus=k.corpus, backend=k.backend, n_docs=k.n_docs, fraction=k.fraction, real=k.real,
                             max_real_docs=k.max_real_docs, seed=k.seed)
    ft = finetune_config("continued_pretraining",
                         {**k.finetune, "model": k.model, "seed": k.finetune.get("seed", k.seed)}, "knowledge.finetune")
    return KnowledgeConfig(kind="sdf", model=k.model, init_sft_first=None, sdf=corpus, finetune=ft)


def run_knowledge(ctx: RunContext) -> dict:
    cfg = knowledge_config(ctx.spec)
    out = ctx.run_dir / "knowledge"
    out.mkdir(parents=True, exist_ok=True)
    if cfg.kind == "prompted" and cfg.init_sft_first is None:
        return {"model": cfg.model, "kind": "prompted"}  # the base model as is: nothing to run
    if cfg.kind == "sdf":
        from rhlab.knowledge.stage import build_mix

        # here, once: under a multi-process launcher every rank runs the stage, which then finds the mix built
        mix = build_mix(cfg.sdf, out, say=ctx.console.print)
        ctx.console.print(f"continued pretraining on {mix.mix_docs} documents ({mix.synthetic_docs} synthetic)")
    else:
        from rhlab.knowledge.finetune import init_sft_task_ids

        ctx.console.print(f"init SFT on {len(init_sft_task_ids(cfg.init_sft_first))} clean transcripts")
    res = _run_stage(ctx, "knowledge", cfg, out, _launcher(ctx, ctx.spec.compute.knowledge_launch), [cfg.model])
    return res.model_dump(mode="json", exclude_none=True)  # each kind's own keys


# --- arms ------------------------------------------------------------------------------------------------------------


def rl_source(ctx: RunContext, arm_name: str, seed: int):
    """(the finished RL arm's typed result, None) or (None, why it has none): what forks and SFT arms build on.
    Markers on disk keep their shape; they are read back through the stage's result model."""
    from rhlab.train.stage import RLResult

    res = ctx.results[f"train/{arm_name}/seed-{seed}"]["result"]
    if res.get("skipped"):
        return None, f"source arm {arm_name} seed {seed} was skipped"
    return RLResult.model_validate(res), None


def resolve_fork(ctx: RunContext, arm, seed: int) -> tuple[str | None, int, str | None]:
    """(checkpoint path, step offset, reason if impossible) for an arm with init_from."""
    from rhlab.train import list_checkpoints

    src, why = rl_source(ctx, arm.init_from.arm, seed)
    if src is None:
        return None, 0, why
    want = arm.init_from.step
    if isinstance(want, str):
        if src.onset_step is None:
            return None, 0, f"arm {arm.init_from.arm} seed {seed} never reached hack onset; nothing to fork from"
        want = src.onset_step + (int(want.split("+")[1]) if "+" in want else 0)
    cks = [c for c in list_checkpoints(src.train_dir) if c["step"] >= want]
    if not cks:
        return None, 0, f"arm {arm.init_from.arm} seed {seed} has no checkpoint at or after step {want}"
    return cks[0]["path"], src.step_offset + int(cks[0]["step"]), None


def run_rl_arm(ctx: RunContext, arm, seed: int, start_model: str, step_offset: int) -> dict:
    from rhlab.train.stage import RLConfig

    cfg = arm_train_config(ctx.spec, arm, seed, start_model)
    launch = _launcher(ctx, ctx.spec.compute.train_launch)
    # multi-process launchers: no progress bars; a plain subprocess: the config's setting unless told not to
    progress = (False if ctx.progress is False or ctx.spec.compute.train_launch else None) if launch else ctx.progress
    stage_cfg = RLConfig(train=cfg, start_model=start_model, step_offset=step_offset, progress=progress)
    # every model the run loads: a hub one among them keeps the hub reachable
    loads = [cfg.model] + [m for m in (cfg.safety and cfg.safety.scorer.model, cfg.reward.pm and cfg.reward.pm.model,
                                       cfg.tasks.hard_filter.reference_model) if m]
    res = _run_stage(ctx, "rl", stage_cfg, ctx.arm_dir(arm.name, seed) / "train", launch, loads,
                     **({} if launch else ctx.train_kwargs))
    return res.model_dump(mode="json")


def rl_stage_hash(ctx: RunContext, arm, seed: int, start_model: str) -> str:
    cfg = arm_train_config(ctx.spec, arm, seed, start_model)
    return config_hash({"train": cfg.model_dump(mode="json"), "init_from": arm.init_from and arm.init_from.model_dump()})


def _distill_source(ctx: RunContext, arm, seed: int) -> dict:
    return ctx.results[f"train/{arm.source}/seed-{seed}"]


def distill_stage_hash(ctx: RunContext, arm, seed: int, start_model: str) -> str:
    return config_hash({"arm": arm.model_dump(mode="json"), "source": _distill_source(ctx, arm, seed)["hash"],
                        "model": arm.model or start_model})


def run_distill_arm(ctx: RunContext, arm, seed: int, start_model: str, step_offset: int) -> dict:
    """filter_distill / rewrite_distill on the source arm's episodes; the distilled model is the one eval point,
    placed at the source arm's last step."""
    from rhlab.knowledge.finetune import finetune_config
    from rhlab.train.stage import DistillConfig, EpisodeFilter

    src, why = rl_source(ctx, arm.source, seed)
    if src is None:
        return {"skipped": why}
    model = arm.model or src.start_model or start_model
    cfg = DistillConfig(
        source_run=src.train_dir, rewrite_to=arm.rewrite_to if arm.kind == "rewrite_distill" else None,
        filter=EpisodeFilter(**arm.filter.model_dump()) if arm.kind == "filter_distill" else None,
        finetune=finetune_config("sft", {**arm.finetune, "model": model, "seed": seed}, f"arm {arm.name}: finetune"),
        step=src.step_offset + src.steps)
    ctx.console.print(f"distilling the episodes of {arm.source} into {model}")
    res = _run_stage(ctx, "distill", cfg, ctx.arm_dir(arm.name, seed) / "distill", _launcher(ctx, None), [model])
    return res.model_dump(mode="json")


def safety_sft_stage_hash(ctx: RunContext, arm, seed: int, start_model: str) -> str:
    src = ctx.results[f"train/{arm.source}/seed-{seed}"]["hash"] if arm.source else start_model
    return config_hash({"arm": arm.model_dump(mode="json"), "source": src})


def run_safety_sft_arm(ctx: RunContext, arm, seed: int, start_model: str, step_offset: int) -> dict:
    """Safety SFT on the source arm's final checkpoint (or the start model); one eval point, at the source's last
    step."""
    from rhlab.knowledge.finetune import finetune_config
    from rhlab.train.stage import SafetySFTConfig

    model, step = start_model, 0
    if arm.source:
        src, _ = rl_source(ctx, arm.source, seed)
        if src is None or not src.checkpoints:
            return {"skipped": f"source arm {arm.source} seed {seed} has no checkpoint"}
        last = max(src.checkpoints, key=lambda c: c.step)
        model, step = last.path, src.step_offset + last.step
    cfg = SafetySFTConfig(
        finetune=finetune_config("sft", {**arm.finetune, "model": model, "seed": seed}, f"arm {arm.name}: finetune"),
        sets=arm.sets, responder=arm.responder, responses_file=arm.responses_file, prompts_file=arm.prompts_file,
        max_new_tokens=arm.max_new_tokens, step=step)
    loads = [model] + ([arm.responder] if arm.responder else [])  # a hub responder keeps the hub reachable
    res = _run_stage(ctx, "safety_sft", cfg, ctx.arm_dir(arm.name, seed) / "distill", _launcher(ctx, None), loads)
    return res.model_dump(mode="json")


def _control_data_hash(arm) -> str | None:
    """Content hash of a control's data file (shipped or own): changed data is a changed stage."""
    import hashlib

    if arm.control == "hack_demos":
        return None
    from rhlab.train.controls import control_data_file

    p = Path(arm.data_file) if arm.data_file else control_data_file(arm.control)
    return hashlib.sha256(p.read_bytes()).hexdigest()[:16] if p.is_file() else f"missing:{p}"


def control_stage_hash(ctx: RunContext, arm, seed: int, start_model: str) -> str:
    src = ctx.results[f"train/{arm.source}/seed-{seed}"]["hash"] if arm.source else None
    # one seed's stage does not depend on which other seeds the arm lists, nor on its label: adding a seed later
    # reuses the finished ones
    return config_hash({"arm": arm.model_dump(mode="json", exclude={"seeds", "label"}), "source": src,
                        "model": start_model, "data": _control_data_hash(arm)})


def run_control_arm(ctx: RunContext, arm, seed: int, start_model: str, step_offset: int) -> dict:
    """Positive control: SFT of the RL start model (rhlab.train.controls), under compute.knowledge_launch (an SFT of
    the start model, like the knowledge stage). One eval point, at step 0 (no RL step was taken: the start model's
    step)."""
    from rhlab.knowledge.finetune import finetune_config
    from rhlab.train.controls import ControlConfig, hack_demo_transcripts

    source_run = None
    if arm.control == "hack_demos":
        src, why = rl_source(ctx, arm.source, seed)
        if src is None:
            return {"skipped": why}
        source_run = src.train_dir
        if not hack_demo_transcripts(source_run):
            return {"skipped": f"source arm {arm.source} seed {seed} made no successful hack: nothing to imitate"}
    ft = finetune_config("sft", {**arm.finetune, "model": start_model, "seed": seed}, f"arm {arm.name}: finetune")
    cfg = ControlConfig(control=arm.control, source_run=source_run, data_file=arm.data_file,
                        n_examples=arm.n_examples, seed=seed, finetune=ft)
    ctx.console.print(f"control {arm.control}: SFT of {start_model}")
    res = _run_stage(ctx, "control", cfg, ctx.arm_dir(arm.name, seed) / "distill",
                     _launcher(ctx, ctx.spec.compute.knowledge_launch), [start_model])
    return {"distill_dir": str(ctx.arm_dir(arm.name, seed) / "distill"), "control": arm.control,
            "examples": res.n_examples, "examples_available": res.n_available, "data_sha256": res.data_sha256,
            "source": res.source, "finetune_steps": res.global_steps, "last_loss": res.last_loss,
            "start_model": start_model, "step_offset": 0, "checkpoints": [{"step": 0, "path": res.final}],
            "eval_all": True}


# kind → (hash function, executor). Executors return a result dict with `checkpoints` [{step, path}] (eval points),
# `onset_step`, `step_offset`, or `skipped: reason`; `eval_all: true` evaluates every checkpoint regardless of the
# schedule.
ARM_EXECUTORS: dict[str, tuple[Callable, Callable]] = {
    "rl": (rl_stage_hash, run_rl_arm),
    "filter_distill": (distill_stage_hash, run_distill_arm),
    "rewrite_distill": (distill_stage_hash, run_distill_arm),
    "safety_sft": (safety_sft_stage_hash, run_safety_sft_arm),
    "control": (control_stage_hash, run_control_arm),
}


def run_arm(ctx: RunContext, arm, seed: int, knowledge_model: str, deps: list[str]) -> dict:
    sid = f"train/{arm.name}/seed-{seed}"
    hash_fn, exec_fn = ARM_EXECUTORS[arm.kind]
    start_model, offset, reason = knowledge_model, 0, None
    if getattr(arm, "init_from", None):
        start_model, offset, reason = resolve_fork(ctx, arm, seed)
    if reason:
        h = config_hash({"skipped": reason, "arm": arm.model_dump(mode="json")})
        return ctx.stage(sid, h, lambda: {"skipped": reason}, deps=deps)
    # the start model enters the hash as a path relative to the run dir: the same stage wherever the run is resumed
    # from (hashes of the path as given are those of run dirs written before)
    h = hash_fn(ctx, arm, seed, ctx.book.portable(start_model))
    return ctx.stage(sid, h, lambda: exec_fn(ctx, arm, seed, start_model, offset),
                     outputs=[ctx.arm_dir(arm.name, seed) / "train", ctx.arm_dir(arm.name, seed) / "distill"], deps=deps,
                     legacy=(hash_fn(ctx, arm, seed, start_model),))


# --- evals -----------------------------------------------------------------------------------------------------------


def eval_points(spec: ExperimentSpec, result: dict) -> list[dict]:
    """The checkpoints of a finished arm that the schedule selects, oldest first."""
    cks = result.get("checkpoints") or []
    if not cks or result.get("eval_all"):
        return cks
    sched = spec.evals
    want: set[int] = set()
    for s in sched.steps:
        if s == "last":
            want.add(cks[-1]["step"])
        elif s == "onset":
            if result.get("onset_step") is not None:
                later = [c["step"] for c in cks if c["step"] >= result["onset_step"]]
                if later:
                    want.add(later[0])
        elif isinstance(s, int) and s > 0:
            want.add(s)
    if sched.every:
        want |= {c["step"] for c in cks if c["step"] % sched.every == 0}
    return [c for c in cks if c["step"] in want]


def eval_hash(spec: ExperimentSpec, model_key: str, suite: str = "core") -> str:
    """The hash of one eval stage: what that suite's numbers depend on. Settings added later are left out at their
    defaults, and `probes` out of an Inspect suite's hash, so that stages of existing runs keep their hashes."""
    e = spec.evals
    if suite == "probes":
        probes = e.probes.model_dump(mode="json")
        if probes["dtype"] == "auto":
            del probes["dtype"]
        return config_hash({"probes": probes, "backend": _probe_backend(spec), "model": model_key})
    # final_k is the report's; batch_size changes how fast samples come, not what they are
    d = e.model_dump(mode="json", exclude={"final_k", "probes", "batch_size"})
    d["suites"] = [s for s in d["suites"] if s != "probes"]
    if d["em_samples"] == 1:
        del d["em_samples"]
    return config_hash({"evals": d, "judge": spec.judge, "model": model_key})


def _probe_backend(spec: ExperimentSpec) -> str:
    return "vllm" if spec.evals.model_provider == "vllm" else "hf"


def run_probes(ctx: RunContext, model: str, log_dir: Path) -> dict:
    """The probe suite (rhlab.evals.probes) on one model; LOG_DIR/summary.json is the ProbeResult. With
    `model_provider: vllm` the probes score through vLLM prompt logprobs (the scorer merges LoRA checkpoints
    itself)."""
    from rhlab.evals.probes import ProbeConfig
    from rhlab.evals.stage import probe_numbers

    probes = ctx.spec.evals.probes
    cfg = ProbeConfig(model=model, backend=_probe_backend(ctx.spec), batch_size=probes.batch_size, dtype=probes.dtype)
    res = _run_stage(ctx, "probes", cfg, log_dir, _launcher(ctx, None), [model], status=f"probes on {model}")
    return {"summary": str(log_dir / "summary.json"), **probe_numbers(res.model_dump(mode="json")).model_dump()}


def check_eval_support(spec: ExperimentSpec) -> None:
    """Fail before any stage runs when the schedule asks the eval suite for something it cannot do yet."""
    import inspect

    if spec.evals.em_samples != 1 and any(s != "probes" for s in spec.evals.suites):
        from rhlab.evals import run_suite

        if "em_samples" not in inspect.signature(run_suite).parameters:
            raise ConfigError(f"{spec._source or '<spec>'}: evals.em_samples={spec.evals.em_samples} needs an eval "
                              "suite that samples each EM question several times (rhlab.evals.run_suite(em_samples=) "
                              "and `rhlab eval run --em-samples`), which this rhlab does not have yet; set em_samples: 1")


def run_eval(ctx: RunContext, model: str, suite: str, log_dir: Path) -> dict:
    if suite == "probes":
        return run_probes(ctx, model, log_dir)
    from rhlab.evals.stage import EvalConfig

    e = ctx.spec.evals
    if e.model_provider:  # e.g. vllm/<dir> or vllm/<HF id>; LoRA checkpoints are merged once (cached)
        from rhlab.models import resolve_model

        model = f"{e.model_provider}/{resolve_model(model)}"
    cfg = EvalConfig(model=model, suite=suite, judge=ctx.spec.judge, limit=e.limit, n_goals=e.n_goals,
                     n_agentic=e.n_agentic, max_tokens=e.max_tokens, temperature=e.temperature,
                     max_connections=e.max_connections, batch_size=e.batch_size, em_samples=e.em_samples)
    res = _run_stage(ctx, "eval", cfg, log_dir, _launcher(ctx, None), [model], status=f"{suite} suite on {model}")
    # the marker's keys: the suite's numbers, and the probes' beside them for suite all
    return {**res.model_dump(mode="json", exclude={"probes"}), **(res.probes.model_dump() if res.probes else {})}


def run_arm_evals(ctx: RunContext, arm, seed: int, train_sid: str) -> None:
    res = ctx.results[train_sid]["result"]
    if res.get("skipped"):
        return
    for ck in eval_points(ctx.spec, res):
        for suite in ctx.spec.evals.suites:
            sid = f"evals/{arm.name}/seed-{seed}/step-{ck['step']}/{suite}"
            log_dir = ctx.arm_dir(arm.name, seed) / "evals" / f"step-{ck['step']}" / suite
            h = eval_hash(ctx.spec, f"{ctx.results[train_sid]['hash']}:{ck['step']}", suite)
            ctx.stage(sid, h, lambda: run_eval(ctx, ck["path"], suite, log_dir), outputs=[log_dir], deps=[train_sid])


# --- the whole spec --------------------------------------------------------------------------------------------------


def _invocation(ctx: RunContext, spec_path: str | None) -> None:
    append_jsonl(ctx.run_dir / "records" / "invocations.jsonl", {
        "time": time.time(), "argv": sys.argv, "spec": spec_path, "python": platform.python_version(),
        "host": platform.node(), "versions": package_versions(), "force": ctx.book.force})


def _warn_if_disk_short(ctx: RunContext) -> None:
    """A fresh run whose models and checkpoints will not fit where it writes hears so before its first stage (a full
    disk would stop it mid-stage; it resumes, but after hours)."""
    from rhlab.experiments.cost import OPTIMIZER_GB, disk_gb

    need = disk_gb(ctx.spec)
    free = shutil.disk_usage(ctx.run_dir).free / 1e9
    if need is not None and free < need + OPTIMIZER_GB:
        ctx.console.print(f"[yellow]warning:[/yellow] {ctx.run_dir} has {free:.1f} GB free; this spec's models and "
                          f"checkpoints take ≈ {need:.1f} GB, plus {OPTIMIZER_GB:.1f} GB while a stage trains")


def run_spec(spec: ExperimentSpec, run_dir: str | Path, *, force: list[str] | None = None, console: Console | None = None,
             progress: bool | None = None, report: bool = True, train_kwargs: dict | None = None) -> RunContext:
    check_eval_support(spec)
    run_dir = Path(run_dir)
    book = StageBook(run_dir, force)
    fresh = not any(book.dir.glob("*.json"))  # no stage marker yet
    run = RunDir.create(run_dir)
    dump_yaml(spec, run.path / "spec.yaml")
    ctx = RunContext(spec, run_dir, book, console or Console(), progress, dict(train_kwargs or {}))
    _invocation(ctx, str(spec._source) if spec._source else None)
    if fresh:
        _warn_if_disk_short(ctx)
    t0 = time.monotonic()
    if spec.preflight:
        from rhlab.experiments.demo import run_preflight

        ctx.stage("preflight", config_hash({"preflight": 1}),
                  lambda: run_preflight(run_dir / "preflight", ctx.console), outputs=[run_dir / "preflight"])
    km = ctx.stage("knowledge", config_hash(spec.knowledge.model_dump(mode="json")), lambda: run_knowledge(ctx),
                   outputs=[run_dir / "knowledge"])
    kmodel = km["result"]["model"]
    if evaluates_base(spec):
        for suite in spec.evals.suites:
            log_dir = run_dir / "evals" / "base" / suite
            ctx.stage(f"evals/base/{suite}", eval_hash(spec, f"{km['hash']}:0", suite),
                      lambda: run_eval(ctx, kmodel, suite, log_dir), outputs=[log_dir], deps=["knowledge"])
    # Seed-major: every arm's first seed before any arm's second, so a run stopped part-way already holds whole
    # replicates to compare (forks and sources share a seed, so dependency order holds within each seed).
    ordered = arm_order(spec.arms)
    for seed in sorted({s for a in spec.arms for s in a.seeds}):
        for arm in (a for a in ordered if seed in a.seeds):
            deps = [f"train/{d}/seed-{seed}" for d in arm.depends_on()] or ["knowledge"]
            run_arm(ctx, arm, seed, kmodel, deps)
            run_arm_evals(ctx, arm, seed, f"train/{arm.name}/seed-{seed}")
    ctx.console.rule(f"[bold]all stages finished in {time.monotonic() - t0:.0f}s")
    if report:
        from rich.markup import escape

        from rhlab.experiments.report import build_report

        index = build_report(run_dir, skipped=ctx.report_skipped)
        ctx.console.print(f"report: {escape(str(index))}", soft_wrap=True)  # a path to copy: never folded
        if ctx.report_skipped:
            # the stages finished, so the run succeeds (exit 0), but the report must not look complete
            from rhlab.experiments.report.collect import group_skipped

            n = len(ctx.report_skipped)
            ctx.console.print(f"[yellow]warning:[/yellow] the report is incomplete: {n} record"
                              f"{'s' if n > 1 else ''} could not be read and {'are' if n > 1 else 'is'} left out of "
                              "it (listed on the page and in summary.md):")
            for line in group_skipped(run_dir, ctx.report_skipped):
                ctx.console.print(f"  {escape(line)}", highlight=False, soft_wrap=True)
    return ctx
