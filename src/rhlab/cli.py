"""`rhlab` command line: a thin typer layer over the stage packages.

One scheme: `rhlab NOUN VERB`. Each stage's `cli.py` is a typer group, mounted here under its noun (`rhlab train
grpo`, `rhlab sdf train`, `rhlab eval run`, `rhlab env grade`, ...); only the experiment pipeline, which drives every
stage, has its verbs at the top level (`rhlab run`, `rhlab report`, `rhlab demo`). Stage CLIs import heavy libraries
(torch, transformers) inside their commands so `rhlab --help` stays fast.

The spellings from before the scheme (`rhlab train CONFIG`, `rhlab train-distill`, `rhlab grade`, ...) still work for
users' scripts: they are hidden from the help and print a one-line notice naming the new spelling.
"""

from __future__ import annotations

from pathlib import Path

import click
import typer
from typer.core import TyperGroup

from rhlab.config import ConfigError
from rhlab.envs.cli import app as env_app
from rhlab.evals.cli import app as eval_app
from rhlab.evals.cli import judge_app, sabotage_app
from rhlab.experiments.cli import app as experiments_app
from rhlab.hacks.cli import app as hacks_app
from rhlab.knowledge.cli import app as knowledge_app
from rhlab.knowledge.sdf.cli import app as sdf_app
from rhlab.models.cli import app as model_app
from rhlab.sandbox.cli import app as sandbox_app
from rhlab.train.cli import app as train_app

# old top-level command → (group, command) it became
RENAMED = {
    "grade": ("env", "grade"),
    "audit": ("hacks", "audit"),
    "probe": ("eval", "probe"),
    "train-export-parquet": ("train", "export-parquet"),
    "train-distill": ("train", "distill"),
    "train-safety-sft": ("train", "safety-sft"),
    "train-control": ("train", "control"),
}
# groups whose name was a command of its own: `rhlab train CONFIG ...` is `rhlab train grpo CONFIG ...`
WAS_COMMAND = {"train": "grpo", "eval": "run"}


def _deprecated(old: str, new: str) -> None:
    typer.echo(f"note: `rhlab {old}` is deprecated; use `rhlab {new}`", err=True)


class _RhlabGroup(TyperGroup):
    """A bad config is the user's input, not a bug: any command that lets a ConfigError through (its message names
    the file, line or field and what is valid) ends with that message and exit status 2, never a traceback.
    Old command names (RENAMED) resolve to their new command; they are not listed, so the help shows one scheme."""

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in RENAMED:
            group, sub = RENAMED[cmd_name]
            _deprecated(cmd_name, f"{group} {sub}")
            return super().get_command(ctx, group).get_command(ctx, sub)
        return super().get_command(ctx, cmd_name)

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except ConfigError as err:
            typer.echo(f"error: {err}", err=True)
            raise typer.Exit(2) from None


def _was_command(command: str) -> type[TyperGroup]:
    """The group class for a noun that used to be a command: arguments that start with an option or a YAML/existing
    path (what the old command took) go to `command`, with the notice; anything else is a subcommand name."""

    class Group(TyperGroup):
        def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
            if args and args[0] not in self.commands and args[0] not in ctx.help_option_names:
                first = args[0]
                if first.startswith("-") or Path(first).suffix in (".yaml", ".yml") or Path(first).exists():
                    _deprecated(f"{self.name} {first} ...", f"{self.name} {command} {first} ...")
                    args = [command, *args]
            return super().parse_args(ctx, args)

    return Group


app = typer.Typer(
    name="rhlab",
    cls=_RhlabGroup,
    help="rhlab: reward hacking in RL and the misalignment it generalises into.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_show_locals=False,
)

app.add_typer(experiments_app)  # no name: run, report and demo are top-level verbs
for _name, _sub in (("model", model_app), ("sandbox", sandbox_app), ("env", env_app), ("hacks", hacks_app),
                    ("knowledge", knowledge_app), ("sdf", sdf_app), ("train", train_app), ("eval", eval_app),
                    ("judge", judge_app), ("sabotage", sabotage_app)):
    app.add_typer(_sub, name=_name, cls=_was_command(WAS_COMMAND[_name]) if _name in WAS_COMMAND else None)


@app.command()
def version() -> None:
    """Print the rhlab version."""
    from rhlab import __version__

    typer.echo(__version__)


def main() -> None:
    app()


if __name__ == "__main__":
    main()
