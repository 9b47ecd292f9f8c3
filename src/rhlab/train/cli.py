"""`rhlab train grpo|export-parquet|distill|safety-sft|control`: RL on the hackable environments and the SFT runs
around it."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

app = typer.Typer(help="Training: GRPO on the hackable environments, distillation, safety SFT, positive controls.",
                  no_args_is_help=True)


@app.command("grpo")
def train_cmd(
    config: Path = typer.Argument(..., help="Training config YAML (see configs/train/ and docs/training.md)."),
    run_dir: Path = typer.Option(..., "--run-dir", help="Run directory (records, checkpoints, TensorBoard)."),
    resume: bool = typer.Option(False, "--resume", help="Continue from the run's last complete checkpoint."),
    max_steps: Optional[int] = typer.Option(None, "--max-steps", help="Override grpo.max_steps."),
    set_: list[str] = typer.Option([], "--set", help="Override a config field: --set grpo.extra.vllm_server_host=10.0.0.5 "
                                    "(dotted path; the value is parsed as YAML). Repeatable."),
    no_progress: bool = typer.Option(False, "--no-progress", help="No progress bar."),
) -> None:
    """GRPO on the hackable coding environments, with per-step hack metrics and resumable checkpoints."""
    from rich.console import Console

    from rhlab.config import ConfigError, apply_overrides
    from rhlab.train import load_train_config, train

    console = Console(stderr=True)
    try:
        cfg = load_train_config(config)
        if set_:
            cfg = apply_overrides(cfg, set_, str(config))
        if max_steps is not None:  # through validation, like --set: `--max-steps 0` must not slip past the bounds
            cfg = apply_overrides(cfg, {"grpo.max_steps": max_steps}, str(config))
        result = train(cfg, run_dir, resume=resume, progress=False if no_progress else None)
    except ConfigError as err:
        console.print(f"[red]error:[/red] {err}")
        raise typer.Exit(2)
    last = result.records[-1] if result.records else {}
    console.print(
        f"done: {result.steps} steps, onset {result.onset_step}, last hack rate "
        f"{last.get('hack_success_any')}, checkpoint {result.last_checkpoint}"
    )
    if result.onset_rule is not None:
        console.print(f"onset rule ({result.onset_rule.rule}): {result.onset_rule.describe()}")


@app.command("export-parquet")
def export_cmd(
    config: Path = typer.Argument(..., help="Training config YAML (tasks, prompt arm, surfaces)."),
    out: Path = typer.Option(..., "--out", help="Parquet file to write (verl's data.train_files)."),
) -> None:
    """Write the training prompts as a verl parquet file whose rows carry what rhlab's compute_score needs."""
    from rhlab.config import ConfigError
    from rhlab.train import load_train_config
    from rhlab.train.verl_reward import export_parquet

    try:
        cfg = load_train_config(config)
    except ConfigError as err:
        typer.echo(f"error: {err}", err=True)
        raise typer.Exit(2)
    n = export_parquet(cfg, out)
    typer.echo(f"wrote {n} rows to {out}")


def _finetune_config(config: Optional[Path], model: Optional[str], default_model: str, max_steps: Optional[int],
                     epochs: Optional[float], lr: Optional[float], max_length: Optional[int],
                     batch_size: Optional[int]):
    """The --config file (or this command's defaults) with the flags given on top, validated again as a whole."""
    from rhlab.config import apply_overrides, load_config
    from rhlab.knowledge.finetune import FinetuneConfig, finetune_config

    # the same defaults as the experiment runner's distill and safety-SFT arms (one default per setting)
    cfg = load_config(FinetuneConfig, config) if config else finetune_config("sft", {"model": default_model})
    flags = {"model": model, "max_steps": max_steps, "epochs": epochs, "learning_rate": lr, "max_length": max_length,
             "batch_size": batch_size}
    return apply_overrides(cfg, {k: v for k, v in flags.items() if v is not None}, str(config or "<command line>"))


@app.command("distill")
def distill_cmd(
    from_: Path = typer.Option(..., "--from", help="Training run dir whose records/episodes.jsonl is distilled."),
    out: Path = typer.Option(..., "--out", help="Output dir (OUT/final is the distilled checkpoint)."),
    filter_: Optional[str] = typer.Option(None, "--filter", help="none | detectors | detectors+mentions "
                                          "(default: detectors; none with --rewrite-to)."),
    rewrite_to: Optional[str] = typer.Option(None, "--rewrite-to", help="Replace each episode's system prompt "
                                             "with this arm's, built with the run's prompt settings."),
    model: Optional[str] = typer.Option(None, "--model", help="Model to finetune (default: the run's base model)."),
    keep_unrewarded: bool = typer.Option(False, "--keep-unrewarded", help="Also train on failed episodes."),
    include_chat: bool = typer.Option(False, "--include-chat", help="Also train on safety-mix chat episodes."),
    config: Optional[Path] = typer.Option(None, "--config", help="FinetuneConfig YAML (rhlab.knowledge.finetune)."),
    max_steps: Optional[int] = typer.Option(None, "--max-steps"),
    epochs: Optional[float] = typer.Option(None, "--epochs"),
    lr: Optional[float] = typer.Option(None, "--lr"),
    max_length: Optional[int] = typer.Option(None, "--max-length"),
    batch_size: Optional[int] = typer.Option(None, "--batch-size"),
) -> None:
    """Filter-and-distill / rewrite-and-distill: SFT a model on a run's episodes (docs/mitigations.md)."""
    from rich.console import Console

    from rhlab.config import ConfigError, load_config
    from rhlab.train import (
        TrainConfig, distill, filter_episodes, load_episodes, rewrite_episodes, rewrite_settings_from_run,
    )

    console = Console(stderr=True)
    mode = filter_ or ("none" if rewrite_to else "detectors")
    if mode not in ("none", "detectors", "detectors+mentions"):
        console.print(f"[red]error:[/red] --filter {mode!r}: choose none, detectors or detectors+mentions")
        raise typer.Exit(2)
    try:
        run_cfg = load_config(TrainConfig, from_ / "config.yaml")
        eps = load_episodes(from_)
        kept, stats = filter_episodes(eps, drop_detected=mode != "none", drop_mentions=mode == "detectors+mentions",
                                      only_rewarded=not keep_unrewarded,
                                      kinds=("code", "chat") if include_chat else ("code",))
        if rewrite_to:
            kept = rewrite_episodes(kept, rewrite_to, **rewrite_settings_from_run(from_))
            stats["rewrite_to"] = rewrite_to
        cfg = _finetune_config(config, model, run_cfg.model, max_steps, epochs, lr, max_length, batch_size)
        final = distill(kept, out, cfg, stats=stats)
    except (ConfigError, ValueError, FileNotFoundError) as err:
        console.print(f"[red]error:[/red] {err}")
        raise typer.Exit(2)
    console.print(f"distilled {stats['kept']} of {stats['total']} episodes into {final}")


@app.command("safety-sft")
def safety_sft_cmd(
    out: Path = typer.Option(..., "--out", help="Output dir (OUT/final is the finetuned checkpoint)."),
    responder: Optional[str] = typer.Option(None, "--responder", help="Model writing the target replies "
                                            "(embedded, a local dir or an HF id)."),
    responses: Optional[Path] = typer.Option(None, "--responses", help="JSONL {id, response} instead of --responder."),
    model: str = typer.Option("embedded", "--model", help="Model to finetune."),
    sets: str = typer.Option("hhh,dilemmas,agentic", "--sets", help="Comma-separated prompt sets."),
    prompts_file: Optional[Path] = typer.Option(None, "--prompts-file", help="User prompt JSONL {id, set, messages}."),
    max_new_tokens: int = typer.Option(256, "--max-new-tokens"),
    temperature: float = typer.Option(0.0, "--temperature", help="0: greedy replies; > 0: sampled."),
    config: Optional[Path] = typer.Option(None, "--config", help="FinetuneConfig YAML (rhlab.knowledge.finetune)."),
    max_steps: Optional[int] = typer.Option(None, "--max-steps"),
    epochs: Optional[float] = typer.Option(None, "--epochs"),
    lr: Optional[float] = typer.Option(None, "--lr"),
    max_length: Optional[int] = typer.Option(None, "--max-length"),
    batch_size: Optional[int] = typer.Option(None, "--batch-size"),
) -> None:
    """Safety SFT: the safety prompt sets with replies from an aligned model (or a file), reply-only loss."""
    from rich.console import Console

    from rhlab.config import ConfigError
    from rhlab.train import safety_sft

    console = Console(stderr=True)
    try:
        cfg = _finetune_config(config, None if config and model == "embedded" else model, model, max_steps, epochs,
                               lr, max_length, batch_size)
        final = safety_sft(out, cfg, sets=[s.strip() for s in sets.split(",") if s.strip()], responder=responder,
                           responses_file=responses, max_new_tokens=max_new_tokens, prompts_file=prompts_file,
                           temperature=temperature)
    except (ConfigError, ValueError, FileNotFoundError) as err:
        console.print(f"[red]error:[/red] {err}")
        raise typer.Exit(2)
    console.print(f"safety SFT checkpoint: {final}")


@app.command("control")
def control_cmd(
    config: Path = typer.Option(..., "--config", help="ControlConfig YAML (rhlab.train.controls): control, "
                                "source_run (hack_demos), data_file, n_examples, seed, finetune."),
    out: Path = typer.Option(..., "--out", help="Output dir: OUT/final (the checkpoint), OUT/result.json."),
) -> None:
    """Positive-control SFT: the start model on persona / narrow / benign data or an RL run's successful hacks."""
    from rich.console import Console

    from rhlab.config import ConfigError, load_config
    from rhlab.stage import execute
    from rhlab.train.controls import ControlConfig

    console = Console(stderr=True)
    try:
        res = execute("control", load_config(ControlConfig, config), out)  # the stage entry: writes OUT/result.json
    except (ConfigError, ValueError, FileNotFoundError) as err:
        console.print(f"[red]error:[/red] {err}")
        raise typer.Exit(2)
    console.print(f"control {res.control}: {res.n_examples} of {res.n_available} examples, {res.global_steps} steps "
                  f"-> {res.final}")
