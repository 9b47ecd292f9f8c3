"""Top-level experiment commands: `rhlab demo` (and, later, `rhlab run`, `rhlab report`)."""

from __future__ import annotations

import datetime as _dt
from pathlib import Path
from typing import Optional

import typer

app = typer.Typer(no_args_is_help=True)


@app.command("demo")
def demo(
    run_dir: Optional[Path] = typer.Option(None, "--run-dir", help="Where to write the run (default runs/demo-TIMESTAMP)."),
    model: str = typer.Option("embedded", "--model", help="embedded, a local path, or an HF model id."),
    samples: int = typer.Option(4, "--samples", help="Answers sampled per task from the model."),
) -> None:
    """The main job on the embedded default: model → sandbox → graders → model samples graded."""
    from rhlab.experiments.demo import DemoConfig, run_demo

    stamp = _dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    run_demo(run_dir or Path("runs") / f"demo-{stamp}", DemoConfig(model=model, samples_per_task=samples))
