"""`rhlab train CONFIG --run-dir D [--resume]` and `rhlab train-export-parquet`."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

app = typer.Typer(help="GRPO training on hackable environments.", no_args_is_help=True)


@app.command("train")
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

    from rhlab.config import ConfigError
    from rhlab.train.config import apply_overrides, load_train_config
    from rhlab.train.trainer import train

    console = Console(stderr=True)
    try:
        cfg = load_train_config(config)
        if set_:
            cfg = apply_overrides(cfg, set_, str(config))
        if max_steps is not None:
            cfg.grpo.max_steps = max_steps
        result = train(cfg, run_dir, resume=resume, progress=False if no_progress else None)
    except ConfigError as err:
        console.print(f"[red]error:[/red] {err}")
        raise typer.Exit(2)
    last = result.records[-1] if result.records else {}
    console.print(
        f"done: {result.steps} steps, onset {result.onset_step}, last hack rate "
        f"{last.get('hack_success_any')}, checkpoint {result.last_checkpoint}"
    )


@app.command("train-export-parquet")
def export_cmd(
    config: Path = typer.Argument(..., help="Training config YAML (tasks, prompt arm, surfaces)."),
    out: Path = typer.Option(..., "--out", help="Parquet file to write (verl's data.train_files)."),
) -> None:
    """Write the training prompts as a verl parquet file whose rows carry what rhlab's compute_score needs."""
    from rhlab.train.config import load_train_config
    from rhlab.train.verl_reward import export_parquet

    n = export_parquet(load_train_config(config), out)
    typer.echo(f"wrote {n} rows to {out}")
