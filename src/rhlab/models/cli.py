"""`rhlab model ...`: prepare the embedded model, resolve model names."""

from __future__ import annotations

import typer

app = typer.Typer(help="Models: the embedded default and any HF id or local path.", no_args_is_help=True)
