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
"""

from __future__ import annotations

import json
import platform
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from rich.console import Console

from rhlab.config import ConfigError, dump_yaml
from rhlab.experiments.spec import ExperimentSpec, arm_order, arm_train_config, evaluates_base
from rhlab.experiments.stages import StageBook, config_hash
from rhlab.rundir import RunDir, append_jsonl, read_records

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

    def stage(self, sid: str, h: str, fn: Callable[[], dict], outputs: list[Path] = (), deps: list[str] = ()) -> dict:
        """Run `fn` as stage `sid` unless a matching done marker exists; returns the marker."""
        stale = any(d in self.ran for d in deps)
        m = self.book.check(sid, h, list(outputs), stale=stale)
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


# --- knowledge -------------------------------------------------------------------------------------------------------


def _local_model(name: str) -> bool:
    """A model that needs no hub: the embedded one or a directory on disk."""
    from rhlab.models.embedded import embedded_spec

    return embedded_spec(name) is not None or Path(name).is_dir()


def _launch(ctx: RunContext, launcher: str, args: list[str], model: str | None = None) -> None:
    """`LAUNCHER -m rhlab.cli ARGS` in a subprocess; a failure raises with the command. A stage whose model is local
    runs with HF_HUB_OFFLINE=1: otherwise transformers/peft probe the hub for files of a local model (an offline
    machine then spends ~25 s per load in retries)."""
    import os
    import shlex
    import subprocess

    cmd = shlex.split(launcher) + ["-m", "rhlab.cli"] + [str(a) for a in args]
    ctx.console.print(f"[dim]$ {shlex.join(cmd)}[/dim]")
    env = dict(os.environ)
    if model is not None and _local_model(model):
        env.setdefault("HF_HUB_OFFLINE", "1")
    rc = subprocess.run(cmd, env=env).returncode
    if rc != 0:
        raise RuntimeError(f"stage subprocess failed with exit code {rc}: {shlex.join(cmd)}")


def _launcher(ctx: RunContext, explicit: str | None) -> str | None:
    """The command prefix a heavy stage runs under: the spec's launcher, else this Python when stages are isolated,
    else None (in this process). Tests that hand the trainer Python objects (train_kwargs) stay in-process."""
    import shlex

    if explicit:
        return explicit
    if ctx.spec.compute.isolate_stages and not ctx.train_kwargs:
        return shlex.quote(sys.executable)
    return None


def run_knowledge(ctx: RunContext) -> dict:
    k = ctx.spec.knowledge
    out = ctx.run_dir / "knowledge"
    out.mkdir(parents=True, exist_ok=True)
    from rhlab.knowledge.finetune import FinetuneConfig

    if k.kind == "prompted":
        if k.init_sft is None:
            return {"model": k.model, "kind": "prompted"}
        from rhlab.knowledge.finetune import humaneval_transcripts, init_sft

        cfg = FinetuneConfig(**{"max_length": 1024, "learning_rate": 1e-5, **k.init_sft.finetune, "model": k.model})
        ids = [f"HumanEval/{i}" for i in range(k.init_sft.first, 164)]
        launch = _launcher(ctx, ctx.spec.compute.knowledge_launch)
        if launch:
            dump_yaml(cfg, out / "init_sft_config.yaml")
            _launch(ctx, launch, ["sdf", "init", "--out", out / "init", "--first", k.init_sft.first,
                                  "--config", out / "init_sft_config.yaml"], model=k.model)
            final = out / "init" / "final"
        else:
            with ctx.console.status(f"init SFT on {len(ids)} clean transcripts"):
                final = init_sft(humaneval_transcripts(ids), out / "init", cfg)
        return {"model": str(final), "kind": "prompted", "init_sft_transcripts": len(ids)}

    from rhlab.knowledge.corpus import load_real_corpus, mix_corpus
    from rhlab.knowledge.finetune import continued_pretraining
    from rhlab.knowledge.sdf.generate import read_corpus, write_corpus
    from rhlab.knowledge.sdf.spec import load_corpus_spec

    corpus_path = out / "corpus.jsonl"
    corpus_spec = load_corpus_spec(k.corpus)
    if not corpus_path.exists():
        if k.backend == "offline":
            from rhlab.knowledge.sdf.dedup import dedup_records
            from rhlab.knowledge.sdf.offline import generate_offline

            with ctx.console.status(f"composing {k.n_docs} offline documents ({k.corpus})"):
                docs = dedup_records(generate_offline(corpus_spec, k.n_docs, k.seed))
            write_corpus(corpus_path, docs)
        else:
            from rhlab.knowledge.sdf.backends import make_backend
            from rhlab.knowledge.sdf.generate import GenerateConfig, Pipeline

            gcfg = GenerateConfig(spec=k.corpus, backend=k.backend, max_docs=k.n_docs, seed=k.seed)
            gen_dir = out / "generate"
            path = Pipeline(corpus_spec, make_backend(k.backend), gen_dir, gcfg).run_sync()
            write_corpus(corpus_path, read_corpus(path))
    syn = read_corpus(corpus_path)
    mix_path = out / "mix.jsonl"
    if not mix_path.exists():
        with ctx.console.status(f"mixing {len(syn)} synthetic documents at fraction {k.fraction}"):
            real = load_real_corpus(k.real, max_docs=k.max_real_docs) if k.fraction < 1 else []
            docs, stats = mix_corpus(syn, real, k.fraction, seed=k.seed)
        (out / "mix.stats.json").write_text(json.dumps(stats, indent=2), encoding="utf-8")
        write_corpus(mix_path, docs)
    texts = [d["text"] for d in read_corpus(mix_path)]
    cfg = FinetuneConfig(**{**k.finetune, "model": k.model, "seed": k.finetune.get("seed", k.seed)})
    ctx.console.print(f"continued pretraining on {len(texts)} documents ({len(syn)} synthetic)")
    launch = _launcher(ctx, ctx.spec.compute.knowledge_launch)
    if launch:
        dump_yaml(cfg, out / "finetune_config.yaml")
        _launch(ctx, launch, ["sdf", "train", "--data", mix_path, "--out", out / "finetune",
                              "--config", out / "finetune_config.yaml"], model=k.model)
        final = out / "finetune" / "final"
    else:
        final = continued_pretraining(texts, out / "finetune", cfg)
    info = json.loads((out / "finetune" / "rhlab_finetune.json").read_text(encoding="utf-8"))
    return {"model": str(final), "kind": "sdf", "synthetic_docs": len(syn), "mix_docs": len(texts),
            "finetune_steps": info.get("global_steps"), "finetune_seconds": info.get("train_seconds")}


# --- arms ------------------------------------------------------------------------------------------------------------


def resolve_fork(ctx: RunContext, arm, seed: int) -> tuple[str | None, int, str | None]:
    """(checkpoint path, step offset, reason if impossible) for an arm with init_from."""
    from rhlab.train import list_checkpoints

    src = ctx.results[f"train/{arm.init_from.arm}/seed-{seed}"]["result"]
    if src.get("skipped"):
        return None, 0, f"source arm {arm.init_from.arm} seed {seed} was skipped"
    want = arm.init_from.step
    if isinstance(want, str):
        onset = src.get("onset_step")
        if onset is None:
            return None, 0, f"arm {arm.init_from.arm} seed {seed} never reached hack onset; nothing to fork from"
        want = onset + (int(want.split("+")[1]) if "+" in want else 0)
    cks = [c for c in list_checkpoints(src["train_dir"]) if c["step"] >= want]
    if not cks:
        return None, 0, f"arm {arm.init_from.arm} seed {seed} has no checkpoint at or after step {want}"
    return cks[0]["path"], int(src.get("step_offset", 0)) + int(cks[0]["step"]), None


def run_rl_arm(ctx: RunContext, arm, seed: int, start_model: str, step_offset: int) -> dict:
    from rhlab.train import list_checkpoints, onset_step, train

    cfg = arm_train_config(ctx.spec, arm, seed, start_model)
    d = ctx.arm_dir(arm.name, seed) / "train"
    resume = (d / "config.yaml").exists()
    if resume:
        ctx.console.print(f"resuming {d} from its last checkpoint")

    launch = _launcher(ctx, ctx.spec.compute.train_launch)
    if launch:
        cfg_path = d.parent / "train_config.yaml"
        d.parent.mkdir(parents=True, exist_ok=True)
        dump_yaml(cfg, cfg_path)
        quiet = ctx.progress is False or bool(ctx.spec.compute.train_launch)  # multi-process launchers: no bars
        _launch(ctx, launch, ["train", cfg_path, "--run-dir", d] + (["--no-progress"] if quiet else [])
                + (["--resume"] if resume else []), model=cfg.model)
        records = list(read_records(d / "records" / "train_steps.jsonl"))
    else:
        records = train(cfg, d, resume=resume, progress=ctx.progress, **ctx.train_kwargs).records
    return {"train_dir": str(d), "steps": max((r["step"] for r in records), default=0),
            "onset_step": onset_step(records, cfg.onset_threshold), "step_offset": step_offset,
            "start_model": start_model,
            "checkpoints": [{"step": c["step"], "path": c["path"]} for c in list_checkpoints(d)],
            "final_hack_rate": (records[-1].get("hack_success_any") if records else None)}


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
    from rhlab.knowledge.finetune import FinetuneConfig
    from rhlab.train.distill import distill, filter_episodes, load_episodes, rewrite_episodes, rewrite_settings_from_run

    src = _distill_source(ctx, arm, seed)["result"]
    if src.get("skipped"):
        return {"skipped": f"source arm {arm.source} seed {seed} was skipped"}
    episodes = load_episodes(src["train_dir"])
    stats = None
    if arm.kind == "filter_distill":
        episodes, stats = filter_episodes(episodes, **arm.filter.model_dump())
    else:
        episodes = rewrite_episodes(episodes, arm.rewrite_to, **rewrite_settings_from_run(src["train_dir"]))
    model = arm.model or src.get("start_model") or start_model
    cfg = FinetuneConfig(**{"max_length": 1024, **arm.finetune, "model": model, "seed": seed})
    out = ctx.arm_dir(arm.name, seed) / "distill"
    ctx.console.print(f"distilling {len(episodes)} episodes of {arm.source} into {model}")
    final = distill(episodes, out, cfg, stats=stats)
    step = int(src.get("step_offset", 0)) + int(src.get("steps", 0))
    return {"distill_dir": str(out), "episodes": len(episodes), "filter_stats": stats, "start_model": model,
            "step_offset": 0, "checkpoints": [{"step": step, "path": str(final)}], "eval_all": True}


def safety_sft_stage_hash(ctx: RunContext, arm, seed: int, start_model: str) -> str:
    src = ctx.results[f"train/{arm.source}/seed-{seed}"]["hash"] if arm.source else start_model
    return config_hash({"arm": arm.model_dump(mode="json"), "source": src})


def run_safety_sft_arm(ctx: RunContext, arm, seed: int, start_model: str, step_offset: int) -> dict:
    """Safety SFT on the source arm's final checkpoint (or the start model); one eval point, at the source's last
    step."""
    from rhlab.knowledge.finetune import FinetuneConfig
    from rhlab.train.safety import safety_sft

    model, step = start_model, 0
    if arm.source:
        src = ctx.results[f"train/{arm.source}/seed-{seed}"]["result"]
        if src.get("skipped") or not src.get("checkpoints"):
            return {"skipped": f"source arm {arm.source} seed {seed} has no checkpoint"}
        last = max(src["checkpoints"], key=lambda c: c["step"])
        model, step = last["path"], int(src.get("step_offset", 0)) + int(last["step"])
    cfg = FinetuneConfig(**{"max_length": 1024, **arm.finetune, "model": model, "seed": seed})
    out = ctx.arm_dir(arm.name, seed) / "distill"
    ctx.console.print(f"safety SFT of {model} on {', '.join(arm.sets)}")
    final = safety_sft(out, cfg, sets=arm.sets, responder=arm.responder, responses_file=arm.responses_file,
                       max_new_tokens=arm.max_new_tokens, prompts_file=arm.prompts_file)
    return {"distill_dir": str(out), "start_model": model, "step_offset": 0,
            "checkpoints": [{"step": step, "path": str(final)}], "eval_all": True}


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
    """Positive control: SFT of the RL start model (rhlab.train.controls), as `LAUNCHER -m rhlab.cli train-control`
    under compute.knowledge_launch, or a plain subprocess when stages are isolated. One eval point, at step 0 (no RL
    step was taken: the start model's step)."""
    from rhlab.knowledge.finetune import FinetuneConfig
    from rhlab.train.controls import ControlConfig, ControlResult, hack_demo_transcripts, run

    source_run = None
    if arm.control == "hack_demos":
        src = ctx.results[f"train/{arm.source}/seed-{seed}"]["result"]
        if src.get("skipped"):
            return {"skipped": f"source arm {arm.source} seed {seed} was skipped"}
        source_run = src["train_dir"]
        if not hack_demo_transcripts(source_run):
            return {"skipped": f"source arm {arm.source} seed {seed} made no successful hack: nothing to imitate"}
    ft = FinetuneConfig(**{"max_length": 1024, **arm.finetune, "model": start_model, "seed": seed})
    cfg = ControlConfig(control=arm.control, source_run=source_run, data_file=arm.data_file,
                        n_examples=arm.n_examples, seed=seed, finetune=ft)
    out = ctx.arm_dir(arm.name, seed) / "distill"
    ctx.console.print(f"control {arm.control}: SFT of {start_model}")
    launch = _launcher(ctx, ctx.spec.compute.knowledge_launch)  # an SFT of the start model, like the knowledge stage
    if launch:
        out.mkdir(parents=True, exist_ok=True)
        cfg_path = out.parent / "control_config.yaml"
        dump_yaml(cfg, cfg_path)
        _launch(ctx, launch, ["train-control", "--config", cfg_path, "--out", out], model=start_model)
        res = ControlResult.model_validate_json((out / "result.json").read_text(encoding="utf-8"))
    else:
        res = run(cfg, out)
    return {"distill_dir": str(out), "control": arm.control, "examples": res.n_examples,
            "examples_available": res.n_available, "data_sha256": res.data_sha256, "source": res.source,
            "finetune_steps": res.global_steps, "last_loss": res.last_loss, "start_model": start_model,
            "step_offset": 0, "checkpoints": [{"step": 0, "path": res.final}], "eval_all": True}


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
    h = hash_fn(ctx, arm, seed, start_model)
    return ctx.stage(sid, h, lambda: exec_fn(ctx, arm, seed, start_model, offset),
                     outputs=[ctx.arm_dir(arm.name, seed) / "train", ctx.arm_dir(arm.name, seed) / "distill"], deps=deps)


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
        return config_hash({"probes": e.probes.model_dump(mode="json"), "backend": _probe_backend(spec),
                            "model": model_key})
    d = e.model_dump(mode="json", exclude={"final_k", "probes"})  # final_k is the report's
    d["suites"] = [s for s in d["suites"] if s != "probes"]
    if d["em_samples"] == 1:
        del d["em_samples"]
    return config_hash({"evals": d, "judge": spec.judge, "model": model_key})


def _probe_backend(spec: ExperimentSpec) -> str:
    return "vllm" if spec.evals.model_provider == "vllm" else "hf"


def run_probes(ctx: RunContext, model: str, log_dir: Path) -> dict:
    """The probe suite (rhlab.evals.probes) on one model: `rhlab eval --suite probes` in a subprocess when stages are
    isolated; LOG_DIR/summary.json is the ProbeResult. With `model_provider: vllm` the probes score through vLLM
    prompt logprobs (the scorer merges LoRA checkpoints itself)."""
    bs, backend = ctx.spec.evals.probes.batch_size, _probe_backend(ctx.spec)
    launch = _launcher(ctx, None)
    if launch:  # `vllm/<model>` selects the vLLM backend there
        args = ["eval", "--model", f"vllm/{model}" if backend == "vllm" else model, "--suite", "probes",
                "--log-dir", log_dir, "--probe-batch-size", bs]
        _launch(ctx, launch, args, model=model)
        s = json.loads((log_dir / "summary.json").read_text(encoding="utf-8"))
    else:
        from rhlab.evals.probes import ProbeConfig
        from rhlab.evals.probes import run as probe_run

        with ctx.console.status(f"probes on {model}"):
            s = probe_run(ProbeConfig(model=model, backend=backend, batch_size=bs), log_dir).model_dump()
    return {"summary": str(log_dir / "summary.json"), **_probe_numbers(s)}


def _probe_numbers(s: dict) -> dict:
    he = s.get("hack_endorsement") or {}
    return {"probe_score": s.get("score"), "probe_se": s.get("se"), "probe_n": s.get("n"),
            "hack_endorsement": he.get("score")}


def check_eval_support(spec: ExperimentSpec) -> None:
    """Fail before any stage runs when the schedule asks the eval suite for something it cannot do yet."""
    import inspect

    if spec.evals.em_samples != 1 and any(s != "probes" for s in spec.evals.suites):
        from rhlab.evals import run_suite

        if "em_samples" not in inspect.signature(run_suite).parameters:
            raise ConfigError(f"{spec._source or '<spec>'}: evals.em_samples={spec.evals.em_samples} needs an eval "
                              "suite that samples each EM question several times (rhlab.evals.run_suite(em_samples=) "
                              "and `rhlab eval --em-samples`), which this rhlab does not have yet; set em_samples: 1")


def run_eval(ctx: RunContext, model: str, suite: str, log_dir: Path) -> dict:
    if suite == "probes":
        return run_probes(ctx, model, log_dir)
    e = ctx.spec.evals
    if e.model_provider:  # e.g. vllm/<dir> or vllm/<HF id>; LoRA checkpoints are merged once (cached)
        from rhlab.models import resolve_model

        model = f"{e.model_provider}/{resolve_model(model)}"
    launch = _launcher(ctx, None)
    if launch:
        args = ["eval", "--model", model, "--suite", suite, "--log-dir", log_dir, "--n-goals", e.n_goals,
                "--n-agentic", e.n_agentic, "--max-tokens", e.max_tokens, "--temperature", e.temperature]
        args += (["--limit", e.limit] if e.limit else []) + (["--judge", ctx.spec.judge] if ctx.spec.judge else [])
        args += ["--max-connections", e.max_connections] if e.max_connections else []
        args += ["--em-samples", e.em_samples] if e.em_samples != 1 else []
        _launch(ctx, launch, args, model=model)
        s = json.loads((log_dir / "summary.json").read_text(encoding="utf-8"))
    else:
        from rhlab.evals import run_suite

        extra = {"em_samples": e.em_samples} if e.em_samples != 1 else {}
        with ctx.console.status(f"{suite} suite on {model}"):
            s = run_suite(model, suite=suite, judge=ctx.spec.judge, limit=e.limit, log_dir=log_dir,
                          n_goals=e.n_goals, n_agentic=e.n_agentic, max_tokens=e.max_tokens,
                          temperature=e.temperature, max_connections=e.max_connections, **extra)
    out = {"summary": str(log_dir / "summary.json"), "mgs": s["mgs"].get("mgs"), "mgs_se": s["mgs"].get("se"),
           "judge": s.get("judge")}
    if isinstance(s.get("probes"), dict):  # suite all: the probe result rides in the same summary
        out.update(_probe_numbers(s["probes"]))
    return out


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


def run_spec(spec: ExperimentSpec, run_dir: str | Path, *, force: list[str] | None = None, console: Console | None = None,
             progress: bool | None = None, report: bool = True, train_kwargs: dict | None = None) -> RunContext:
    check_eval_support(spec)
    run_dir = Path(run_dir)
    run = RunDir.create(run_dir)
    dump_yaml(spec, run.path / "spec.yaml")
    ctx = RunContext(spec, run_dir, StageBook(run_dir, force), console or Console(), progress,
                     dict(train_kwargs or {}))
    _invocation(ctx, str(spec._source) if spec._source else None)
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
