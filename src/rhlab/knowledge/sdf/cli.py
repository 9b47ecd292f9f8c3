"""`rhlab sdf generate|mix|train|init`: synthetic document finetuning steps, each resumable."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer

app = typer.Typer(help="Synthetic document finetuning: generate documents, mix with real text, train.",
                  no_args_is_help=True)


def _progress():
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())


def _merge(model_cls, config: Optional[Path], **overrides):
    """The --config file (or the model's defaults) with the flags given on top (None: not given), validated."""
    from rhlab.config import apply_overrides, load_config, validate

    flags = {k: v for k, v in overrides.items() if v is not None}
    if config:
        return apply_overrides(load_config(model_cls, config), flags, str(config))
    return validate(model_cls, flags, "<command line>")


@app.command("generate")
def generate(
    out: Path = typer.Option(..., "--out", help="Output run directory (rerun the same command to resume)."),
    spec: str = typer.Option("default", "--spec", help="default | unguided | neutral | path to a spec YAML."),
    backend: str = typer.Option("offline", "--backend",
                                help="offline, openai:MODEL[@URL], vllm:MODEL[@URL], anthropic:MODEL, hf:MODEL."),
    n_docs: Optional[int] = typer.Option(None, "--n-docs", help="Documents to make (offline) / cap (LLM backends)."),
    doc_types_per_fact: Optional[int] = typer.Option(None, "--doc-types-per-fact"),
    ideas_per_type: Optional[int] = typer.Option(None, "--ideas-per-type"),
    docs_per_idea: Optional[int] = typer.Option(None, "--docs-per-idea"),
    concurrency: Optional[int] = typer.Option(None, "--concurrency"),
    seed: Optional[int] = typer.Option(None, "--seed"),
    config: Optional[Path] = typer.Option(None, "--config", help="GenerateConfig YAML; flags override it."),
) -> None:
    """Generate a synthetic corpus (OUT/corpus.jsonl) from a corpus spec."""
    from rhlab.knowledge.sdf.generate import GenerateConfig, Pipeline, write_corpus
    from rhlab.knowledge.sdf.spec import load_corpus_spec
    from rhlab.rundir import RunDir

    cfg = _merge(GenerateConfig, config, spec=spec, backend=backend, max_docs=n_docs,
                 doc_types_per_fact=doc_types_per_fact, ideas_per_type=ideas_per_type, docs_per_idea=docs_per_idea,
                 concurrency=concurrency, seed=seed)
    corpus_spec = load_corpus_spec(cfg.spec)
    if cfg.backend == "offline":
        from rhlab.knowledge.sdf.dedup import dedup_records
        from rhlab.knowledge.sdf.offline import generate_offline

        n = cfg.max_docs or 96
        RunDir.create(out, cfg)
        docs = generate_offline(corpus_spec, n, cfg.seed)
        kept = dedup_records(docs, cfg.dedup_threshold)
        write_corpus(out / "corpus.jsonl", kept)
        (out / "stats.json").write_text(json.dumps({"generated": len(docs), "kept_after_dedup": len(kept),
                                                     "backend_calls": 0}, indent=2))
        typer.echo(f"{len(kept)} offline documents ({len(docs) - len(kept)} near-duplicates dropped) -> "
                   f"{out / 'corpus.jsonl'}")
        return
    from rhlab.knowledge.sdf.backends import make_backend

    with _progress() as progress:
        tasks: dict[str, int] = {}

        def report(stage, done, total):
            if stage not in tasks:
                tasks[stage] = progress.add_task(stage, total=total)
            progress.update(tasks[stage], completed=done, total=total)

        pipe = Pipeline(corpus_spec, make_backend(cfg.backend), out, cfg, progress=report)
        path = pipe.run_sync()
    stats = json.loads((out / "stats.json").read_text())
    typer.echo(f"{stats['kept_after_dedup']} documents ({stats['generated']} generated, "
               f"{stats['backend_calls']} backend calls this run) -> {path}")


@app.command("mix")
def mix(
    synthetic: list[Path] = typer.Option(..., "--synthetic", help="corpus.jsonl file(s) of synthetic documents."),
    out: Path = typer.Option(..., "--out", help="Output JSONL of the mix (stats go to OUT.stats.json)."),
    fraction: float = typer.Option(0.01, "--fraction", help="Synthetic share of the mix, e.g. 1, 0.1, 0.01, 0.001."),
    real: str = typer.Option("stdlib,readmes,licenses", "--real",
                             help="Comma list: stdlib, readmes, licenses, hf:NAME[:CONFIG][@SPLIT][#FIELD], files."),
    by: str = typer.Option("chars", "--by", help="Measure the fraction in chars (≈tokens) or docs."),
    max_real_docs: Optional[int] = typer.Option(None, "--max-real-docs"),
    seed: int = typer.Option(0, "--seed"),
) -> None:
    """Mix synthetic documents with real text at a given synthetic fraction."""
    from rhlab.knowledge.corpus import load_real_corpus, mix_corpus
    from rhlab.knowledge.sdf.generate import read_corpus, write_corpus

    syn = [d for p in synthetic for d in read_corpus(p)]
    real_docs = load_real_corpus([s.strip() for s in real.split(",") if s.strip()], max_docs=max_real_docs) \
        if fraction < 1 else []
    docs, stats = mix_corpus(syn, real_docs, fraction, seed=seed, by=by)
    out.parent.mkdir(parents=True, exist_ok=True)
    write_corpus(out, docs)
    stats_path = out.with_suffix(".stats.json")
    stats_path.write_text(json.dumps(stats, indent=2))
    typer.echo(f"{len(docs)} documents, synthetic fraction {stats['achieved_fraction']:.4f} ({by}); "
               f"{stats['synthetic_docs']} synthetic, {stats['real_docs']} real -> {out}")
    if stats["synthetic_docs_dropped"]:
        typer.echo(f"note: not enough real text for all synthetic documents at this fraction; "
                   f"{stats['synthetic_docs_dropped']} were left out (add real text with --real)", err=True)


def _finetune_cfg(job: str, config: Optional[Path], **flags):
    """This job's defaults (the same the experiment runner uses: rhlab.knowledge.finetune.JOB_DEFAULTS), then the
    --config file's settings, then the flags given (None: not given), validated as a whole."""
    from rhlab.config import ConfigError, apply_overrides, load_yaml
    from rhlab.knowledge.finetune import finetune_config

    fields = load_yaml(config) if config else {}
    if fields is None:
        fields = {}
    if not isinstance(fields, dict):
        raise ConfigError(f"{config}: expected a mapping of FinetuneConfig fields")
    cfg = finetune_config(job, fields, str(config or "<command line>"))
    return apply_overrides(cfg, {k: v for k, v in flags.items() if v is not None}, str(config or "<command line>"))


@app.command("train")
def train(
    data: Path = typer.Option(..., "--data", help="JSONL of documents (field text), e.g. the output of `sdf mix`."),
    out: Path = typer.Option(..., "--out", help="Output directory; the model lands in OUT/final. Rerun resumes."),
    model: Optional[str] = typer.Option(None, "--model", help="embedded (default), a local path or an HF id."),
    mode: Optional[str] = typer.Option(None, "--mode", help="full | lora"),
    max_length: Optional[int] = typer.Option(None, "--max-length", help="Window length; longer docs are split."),
    epochs: Optional[float] = typer.Option(None, "--epochs"),
    max_steps: Optional[int] = typer.Option(None, "--max-steps"),
    lr: Optional[float] = typer.Option(None, "--lr"),
    batch_size: Optional[int] = typer.Option(None, "--batch-size"),
    config: Optional[Path] = typer.Option(None, "--config", help="FinetuneConfig YAML; flags override it."),
) -> None:
    """Continued pretraining on a document mix (TRL SFTTrainer; full or LoRA merged at the end)."""
    from rhlab.knowledge.finetune import continued_pretraining
    from rhlab.knowledge.sdf.generate import read_corpus

    cfg = _finetune_cfg("continued_pretraining", config, model=model, mode=mode, max_length=max_length, epochs=epochs, max_steps=max_steps,
                        learning_rate=lr, batch_size=batch_size)
    texts = [d["text"] for d in read_corpus(data)]
    final = continued_pretraining(texts, out, cfg)
    info = json.loads((out / "rhlab_finetune.json").read_text())
    typer.echo(f"trained {info['global_steps']} steps in {info['train_seconds']}s "
               f"({info['mean_step_seconds']}s/step; {info['data']['chunks']} windows from "
               f"{info['data']['documents']} documents) -> {final}")


@app.command("init")
def init(
    out: Path = typer.Option(..., "--out", help="Output directory; the model lands in OUT/final."),
    model: Optional[str] = typer.Option(None, "--model"),
    task_ids: Optional[str] = typer.Option(None, "--task-ids", help="Comma list of HumanEval ids (HumanEval/N)."),
    first: int = typer.Option(100, "--first", help="Without --task-ids: use HumanEval/FIRST .. HumanEval/163."),
    epochs: Optional[float] = typer.Option(None, "--epochs"),
    max_steps: Optional[int] = typer.Option(None, "--max-steps"),
    lr: Optional[float] = typer.Option(None, "--lr"),
    mode: Optional[str] = typer.Option(None, "--mode"),
    config: Optional[Path] = typer.Option(None, "--config"),
) -> None:
    """Prompted-setting init: light SFT on clean HumanEval transcripts in the answer format."""
    from rhlab.knowledge.finetune import humaneval_transcripts, init_sft, init_sft_task_ids

    ids = [t.strip() for t in task_ids.split(",")] if task_ids else init_sft_task_ids(first)
    cfg = _finetune_cfg("init_sft", config, model=model, epochs=epochs, max_steps=max_steps, learning_rate=lr,
                        mode=mode)
    final = init_sft(humaneval_transcripts(ids), out, cfg)
    typer.echo(f"init SFT on {len(ids)} transcripts -> {final}")
