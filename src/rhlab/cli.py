"""`rhlab` command line: a thin typer layer over the stage packages.

Each stage owns a `cli.py` exposing a typer app (or top-level commands); they are mounted here. Stage CLIs
import heavy libraries (torch, transformers) inside their commands so `rhlab --help` stays fast.
"""

from __future__ import annotations

import importlib

import typer
from typer.core import TyperGroup

from rhlab.config import ConfigError


class _RhlabGroup(TyperGroup):
    """A bad config is the user's input, not a bug: any command that lets a ConfigError through (its message names
    the file, line or field and what is valid) ends with that message and exit status 2, never a traceback."""

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except ConfigError as err:
            typer.echo(f"error: {err}", err=True)
            raise typer.Exit(2) from None


app = typer.Typer(
    name="rhlab",
    cls=_RhlabGroup,
    help="rhlab: reward hacking in RL and the misalignment it generalises into.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_show_locals=False,
)

# (module, sub-command name or None to merge its commands at top level)
_STAGE_CLIS: list[tuple[str, str | None]] = [
    ("rhlab.models.cli", "model"),
    ("rhlab.sandbox.cli", "sandbox"),
    ("rhlab.envs.cli", None),
    ("rhlab.hacks.cli", None),
    ("rhlab.knowledge.sdf.cli", "sdf"),
    ("rhlab.knowledge.cli", "knowledge"),
    ("rhlab.evals.cli", None),
    ("rhlab.train.cli", None),
    ("rhlab.experiments.cli", None),
]


def _mount() -> None:
    for module_name, name in _STAGE_CLIS:
        module = importlib.import_module(module_name)
        sub = module.app
        if name is None:
            for cmd in sub.registered_commands:
                app.registered_commands.append(cmd)
            for grp in sub.registered_groups:
                app.registered_groups.append(grp)
        else:
            app.add_typer(sub, name=name)


_mount()


@app.command()
def version() -> None:
    """Print the rhlab version."""
    from rhlab import __version__

    typer.echo(__version__)


def main() -> None:
    app()


if __name__ == "__main__":
    main()
