"""Top-level experiment commands: `rhlab run SPEC`, `rhlab report RUN_DIR`, `rhlab demo`."""

from __future__ import annotations

import datetime as _dt
from pathlib import Path
from typing import Optional

import typer

app = typer.Typer(no_args_is_help=True)


@app.command("run")
def run(
    spec: Path = typer.Argument(..., help="Experiment spec YAML (configs/experiments/*.yaml)."),
    run_dir: Optional[Path] = typer.Option(None, "--run-dir", help="Run directory (default runs/<spec name>). "
                                           "Rerun the same command to resume; finished stages are reused."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Validate the spec and estimate its cost; load no model."),
    force: list[str] = typer.Option([], "--force", help="Redo a stage (and what depends on it), e.g. knowledge, "
                                    "train/hacking_okay/seed-0, evals/base. Repeatable."),
    no_report: bool = typer.Option(False, "--no-report", help="Skip writing the report at the end."),
    progress: bool = typer.Option(True, "--progress/--no-progress", help="Training progress bars."),
) -> None:
    """Run an experiment spec: knowledge stage → RL arms → evals on checkpoints → report, in one run directory."""
    from rich.console import Console

    from rhlab.config import ConfigError
    from rhlab.experiments.spec import load_spec

    console = Console()
    try:
        s = load_spec(spec)
        if dry_run:
            from rhlab.experiments.cost import estimate, render

            render(estimate(s), console)
            console.print(f"[green]spec {spec} is valid[/green]; would write to {run_dir or Path('runs') / s.name}")
            return
        from rhlab.experiments.runner import run_spec

        run_spec(s, run_dir or Path("runs") / s.name, force=force, console=console, progress=progress,
                 report=not no_report)
    except ConfigError as err:
        console.print(f"[red]error:[/red] {err}")
        raise typer.Exit(2)


@app.command("report")
def report(
    run_dir: Path = typer.Argument(..., help="A run directory written by `rhlab run`."),
) -> None:
    """Write RUN_DIR/report/index.html with plots (hack rates, MGS, per-arm bars, scatter) and tables."""
    from rhlab.experiments.report import build_report

    if not (run_dir / "spec.yaml").exists():
        typer.echo(f"error: {run_dir} has no spec.yaml (not an experiment run directory)", err=True)
        raise typer.Exit(2)
    typer.echo(str(build_report(run_dir)))


@app.command("demo")
def demo(
    run_dir: Optional[Path] = typer.Option(None, "--run-dir", help="Where to write the run (default runs/demo-TIMESTAMP)."),
    model: str = typer.Option("embedded", "--model", help="embedded, a local path, or an HF model id."),
    samples: int = typer.Option(4, "--samples", help="Answers sampled per task from the model."),
) -> None:
    """Quick check without RL: sandbox → graders on reference answers → model samples graded (`make demo` runs
    configs/experiments/demo.yaml instead)."""
    from rhlab.experiments.demo import DemoConfig, run_demo

    stamp = _dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    run_demo(run_dir or Path("runs") / f"demo-{stamp}", DemoConfig(model=model, samples_per_task=samples))
