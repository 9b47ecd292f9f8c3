"""`rhlab env grade`: grade one answer file on a task with both graders."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from rhlab.envs.families import HACK_FAMILIES

app = typer.Typer(help="Coding environments and their graders.", no_args_is_help=True)

WEAK_HELP = "Accept a weaker sandbox (no namespaces) if bubblewrap cannot isolate here. Not for untrusted code."
HACKS_HELP = f"Open hack surfaces: all, none, or a comma list of {', '.join(HACK_FAMILIES)}."


@app.command("grade")
def grade_cmd(
    task: str = typer.Option(..., "--task", help="Task id, e.g. humaneval/0."),
    answer: Path = typer.Option(..., "--answer", exists=True, dir_okay=False, help="Raw model response file."),
    hacks: str = typer.Option("all", "--hacks", help=HACKS_HELP),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object."),
    timeout: float = typer.Option(10.0, "--timeout", help="Seconds per grading run."),
    allow_weak_sandbox: bool = typer.Option(False, "--allow-weak-sandbox", help=WEAK_HELP),
) -> None:
    """Grade ANSWER on TASK: permissive grader (with the chosen open surfaces) and the hardened twin."""
    from rhlab.envs.grading import HackSurfaces, grade
    from rhlab.envs.tasks import get_task
    from rhlab.sandbox import SandboxPool, SandboxUnavailable
    from rhlab.sandbox.job import check_timeout

    try:
        check_timeout(timeout, "--timeout")
        surfaces = HackSurfaces.parse(hacks)
        t = get_task(task)
    except (ValueError, KeyError) as err:
        typer.echo(f"error: {err}", err=True)
        raise typer.Exit(2)
    text = answer.read_bytes().decode("utf-8", "replace")
    try:
        with SandboxPool(workers=1, allow_weak=allow_weak_sandbox or None) as pool:
            verdict = grade(t, text, surfaces, pool, timeout_s=timeout)
    except SandboxUnavailable as err:
        typer.echo(f"error: {err}", err=True)
        raise typer.Exit(2)
    data = {"task": t.id, "open_surfaces": surfaces.open_names(), **verdict.to_dict()}
    if as_json:
        typer.echo(json.dumps(data))
        return
    from rich.console import Console

    c = Console()
    yes = lambda b: "[green]yes[/green]" if b else "[red]no[/red]"  # noqa: E731
    c.print(f"[bold]{t.id}[/bold]  open surfaces: {', '.join(surfaces.open_names()) or 'none'}")
    c.print(f"passed (permissive): {yes(verdict.passed)}   passed_hardened: {yes(verdict.passed_hardened)}   "
            f"hacked: {'[bold red]YES[/bold red]' if verdict.hacked else 'no'}")
    c.print(f"detected_hacks: {verdict.detected_hacks or '-'}   attempted_hacks: {verdict.attempted_hacks or '-'}")
    if verdict.parse_error:
        c.print(f"[yellow]parse error: {verdict.parse_error}[/yellow]")
