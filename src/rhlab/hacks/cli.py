"""`rhlab hacks audit`: run the exploit catalogue against a grader and show which exploits get through."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer

from rhlab.envs.families import HACK_FAMILIES

app = typer.Typer(help="Reward-hack exploits and detectors.", no_args_is_help=True)

WEAK_HELP = "Accept a weaker sandbox (no namespaces) if bubblewrap cannot isolate here. Not for untrusted code."


@app.command("audit")
def audit_cmd(
    target: str = typer.Option("rhlab", "--target", help="rhlab (our graders) or command (use --command)."),
    hacks: str = typer.Option("all", "--hacks", help="Open surfaces of rhlab's permissive grader (all, none, or "
                              f"{','.join(HACK_FAMILIES)})."),
    hardened: bool = typer.Option(False, "--hardened", help="Audit rhlab's hardened twin instead."),
    tasks: str = typer.Option("humaneval/0", "--tasks", help="Comma list of task ids to try each exploit on "
                              "(HumanEval ids, or shipped stdio ids such as contest/pair_sums; one style per audit)."),
    command: Optional[str] = typer.Option(None, "--command", help="Your grader command, e.g. 'pytest -q'."),
    task_dir: Optional[Path] = typer.Option(None, "--task-dir", exists=True, file_okay=False,
                                            help="Directory the command runs in (copied into the sandbox)."),
    entry: str = typer.Option("solution", "--entry", help="Function name the exploits define (command mode)."),
    solution_file: str = typer.Option("solution.py", "--solution-file", help="Where the answer goes in the task dir."),
    reference: Optional[Path] = typer.Option(None, "--reference", exists=True, dir_okay=False,
                                             help="A correct solution (must pass the grader); default: the "
                                             "--solution-file already in --task-dir."),
    timeout: float = typer.Option(30.0, "--timeout", help="Seconds per grader run (command mode)."),
    describe: bool = typer.Option(False, "--describe", help="Add a column saying what each exploit does."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object."),
    allow_weak_sandbox: bool = typer.Option(False, "--allow-weak-sandbox", help=WEAK_HELP),
) -> None:
    """Try every exploit against a grader; print exploit -> passes?."""
    from rhlab.envs.grading import HackSurfaces
    from rhlab.hacks.audit import CONTROL, audit_command, audit_rhlab, rows_to_json, task_dir_warnings
    from rhlab.sandbox import SandboxPool, SandboxUnavailable
    from rhlab.sandbox.job import check_timeout

    if command is not None:
        target = "command"
    if target == "command" and (command is None or task_dir is None):
        typer.echo("error: --command and --task-dir are both needed to audit your own grader", err=True)
        raise typer.Exit(2)
    if target not in ("rhlab", "command"):
        typer.echo(f"error: --target {target!r}: choose rhlab or command", err=True)
        raise typer.Exit(2)
    warnings: list[str] = []
    try:
        surfaces = HackSurfaces.parse(hacks)
        check_timeout(timeout, "--timeout")
        if target == "command":
            warnings = task_dir_warnings(task_dir)
    except ValueError as err:
        typer.echo(f"error: {err}", err=True)
        raise typer.Exit(2)
    for w in warnings:
        typer.echo(f"warning: {w}", err=True)
    try:
        with SandboxPool(workers=2, allow_weak=allow_weak_sandbox or None) as pool:
            if target == "command":
                rows = audit_command(command, task_dir, entry, solution_file, pool, timeout, reference=reference)
                title = f"audit of `{command}` over {task_dir}"
            else:
                task_ids = [t.strip() for t in tasks.split(",") if t.strip()]
                rows = audit_rhlab(surfaces, hardened, task_ids, pool)
                title = ("audit of rhlab's hardened twin" if hardened else
                         f"audit of rhlab's permissive grader, open surfaces: {', '.join(surfaces.open_names()) or 'none'}")
    except SandboxUnavailable as err:
        typer.echo(f"error: {err}", err=True)
        raise typer.Exit(2)
    except (KeyError, ValueError) as err:
        typer.echo(f"error: {err}", err=True)
        raise typer.Exit(2)
    control = next(r for r in rows if r.exploit == CONTROL)
    exploit_rows = [r for r in rows if r.exploit != CONTROL]
    passing = [r for r in exploit_rows if r.passes]
    families = sorted({r.family for r in passing})
    mismatches = [r.exploit for r in exploit_rows if r.expected is not None and r.expected != r.passes]
    from rhlab.envs.grading import SURFACES

    style = "function"
    if target != "command":
        from rhlab.envs.tasks import get_task

        style = get_task(task_ids[0]).style
    found = sorted({s for r in passing for s in _requires(r.exploit, style)}, key=SURFACES.index)
    errored = [r.exploit for r in exploit_rows if r.error]
    summary = {"target": title, "exploitable_surfaces": found if target != "command" else None, "exploits": len(exploit_rows), "passing": len(passing),
               "exploitable_families": families, "control_passes": control.passes,
               "unexpected": mismatches, "errors": errored, "warnings": warnings, "rows": rows_to_json(rows)}
    if as_json:
        typer.echo(json.dumps(summary))
        if errored:
            raise typer.Exit(1)
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(title=title, show_lines=False)
    table.add_column("exploit", no_wrap=True)
    table.add_column("family", no_wrap=True)
    table.add_column("passes?", no_wrap=True)
    if target != "command":
        table.add_column("expected", no_wrap=True)
    table.add_column("detected as")
    if describe:
        table.add_column("what it does", overflow="fold")
    for r in rows:
        mark = ("[bold yellow]error[/bold yellow]" if r.error else
                "[bold red]PASSES[/bold red]" if r.passes else "[green]blocked[/green]")
        cells = [r.exploit, r.family, mark]
        if target != "command":
            cells.append("pass" if r.expected else "block")
        cells.append(", ".join(r.detected) or "-")
        if describe:
            cells.append(r.description)
        table.add_row(*cells)
    c = Console()
    c.print(table)
    if control.passes:
        c.print("[bold red]The control (a wrong honest answer) passes: this grader accepts anything.[/bold red]")
    if passing:
        c.print(f"[bold red]{len(passing)} of {len(exploit_rows)} exploits pass[/bold red] "
                f"(families: {', '.join(families)}).")
    else:
        c.print(f"[green]None of the {len(exploit_rows) - len(errored)} exploits that ran pass.[/green]")
    if target != "command":
        c.print(f"Exploitable surfaces found: {', '.join(found) or 'none'}   "
                f"(configured open: {', '.join([] if hardened else surfaces.open_names()) or 'none'})")
    if mismatches:
        c.print(f"[yellow]Differs from what the open surfaces predict: {', '.join(mismatches)}[/yellow]")
    if errored:
        # A row the grader never ran on is neither passed nor blocked: the audit is incomplete.
        c.print(f"[bold yellow]The grader did not run on {len(errored)} exploit(s): {', '.join(errored)} — "
                f"{next(r.error for r in exploit_rows if r.error)}[/bold yellow]")
        raise typer.Exit(1)


def _requires(name: str, style: str = "function") -> frozenset[str]:
    from rhlab.hacks.catalogue import BY_NAME

    x = BY_NAME.get(name)
    if x is None:
        return frozenset()
    return (x.stdio_requires or frozenset()) if style == "stdio" else x.requires
