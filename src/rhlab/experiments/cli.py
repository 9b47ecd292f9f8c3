"""The experiment pipeline's commands, at the top level of the CLI (they drive every stage): `rhlab run SPEC`,
`rhlab report RUN_DIR`, `rhlab demo`."""

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
    run_dir: Path = typer.Argument(..., help="A run directory written by `rhlab run` (finished or partial)."),
) -> None:
    """Write RUN_DIR/report/index.html with plots (hack rates, MGS, per-arm bars, scatter) and tables, and
    RUN_DIR/report/summary.md.

    Exit codes: 0 the report is complete (every record read); 1 the report was written but some records could not
    be used (a corrupt or torn JSONL line, a field of the wrong type, an unreadable summary.json / stage marker /
    config): each is listed with its file and line on the page, in summary.md and here, and left out of every number;
    2 no report: RUN_DIR does not exist, or its spec.yaml is missing, not UTF-8, not valid YAML or malformed.
    """
    from rhlab.config import ConfigError
    from rhlab.experiments.report import build_report

    skipped: list = []
    try:
        index = build_report(run_dir, skipped=skipped)
    except ConfigError as err:
        typer.echo(f"error: {err}", err=True)
        raise typer.Exit(2)
    if skipped:
        from rhlab.experiments.report.collect import group_skipped

        lines = group_skipped(run_dir, skipped)
        typer.echo(f"warning: {len(skipped)} record{'s' if len(skipped) > 1 else ''} could not be read and "
                   f"{'are' if len(skipped) > 1 else 'is'} left out of the report (listed on the page and in "
                   f"{index.parent / 'summary.md'}):", err=True)
        for line in lines:
            typer.echo(f"  {line}", err=True)
    typer.echo(str(index))
    if skipped:
        raise typer.Exit(1)


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
