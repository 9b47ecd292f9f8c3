"""`rhlab sandbox ...`: run a file in the sandbox, check isolation."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer

app = typer.Typer(help="Isolated execution of model-written code.", no_args_is_help=True)

WEAK_HELP = "Accept a weaker sandbox (no namespaces) if bubblewrap cannot isolate here. Not for untrusted code."


@app.command("run")
def run_file(
    file: Path = typer.Argument(..., exists=True, dir_okay=False, help="Python file to run (or any file with --cmd)."),
    timeout: float = typer.Option(10.0, "--timeout", help="Wall-clock limit in seconds."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object."),
    pytest_mode: bool = typer.Option(False, "--pytest", help="Run the file with pytest instead of python."),
    stdin_file: Optional[Path] = typer.Option(None, "--stdin", exists=True, dir_okay=False, help="Feed this file to stdin."),
    allow_weak_sandbox: bool = typer.Option(False, "--allow-weak-sandbox", help=WEAK_HELP),
) -> None:
    """Run FILE in the sandbox and report exit code, output and timing."""
    from rhlab.sandbox import Job, SandboxPool, SandboxUnavailable
    from rhlab.sandbox.job import check_timeout

    try:
        check_timeout(timeout, "--timeout")
    except ValueError as err:
        typer.echo(f"error: {err}", err=True)
        raise typer.Exit(2)
    argv = ["pytest", "-q", "-p", "no:cacheprovider", file.name] if pytest_mode else ["python", file.name]
    job = Job(
        files={file.name: file.read_bytes()},
        argv=argv,
        timeout_s=timeout,
        stdin=stdin_file.read_bytes() if stdin_file else b"",
    )
    try:
        with SandboxPool(workers=1, allow_weak=allow_weak_sandbox or None) as pool:
            result = pool.run(job)
    except SandboxUnavailable as err:
        typer.echo(f"error: {err}", err=True)
        raise typer.Exit(2)
    if as_json:
        typer.echo(json.dumps(result.to_dict()))
        return
    from rich.console import Console

    console = Console()
    status = "timed out" if result.timed_out else f"exit {result.exit_code}"
    console.print(f"[bold]{status}[/bold] in {result.duration_s:.3f}s (isolation: {result.isolation})")
    if result.error:
        console.print(f"[red]sandbox: {result.error}[/red]")
    if result.stdout:
        console.rule("stdout")
        console.print(result.stdout, markup=False, highlight=False, end="")
    if result.stderr:
        console.rule("stderr")
        console.print(result.stderr, markup=False, highlight=False, end="")


@app.command("selftest")
def selftest(
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object."),
    allow_weak_sandbox: bool = typer.Option(False, "--allow-weak-sandbox", help=WEAK_HELP),
) -> None:
    """Check that isolation holds here and report the mode chosen."""
    from rhlab.sandbox import SandboxPool, SandboxUnavailable

    try:
        with SandboxPool(workers=1, allow_weak=allow_weak_sandbox or None) as pool:
            report = pool.selftest_report
            mode = pool.isolation
    except SandboxUnavailable as err:
        if as_json:
            typer.echo(json.dumps({"mode": None, "passed": False, "error": str(err)}))
        else:
            typer.echo(f"error: {err}", err=True)
        raise typer.Exit(2)
    data = report.to_dict()
    data["mode"] = mode
    if as_json:
        typer.echo(json.dumps(data))
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"sandbox self-test — isolation: {mode}")
    table.add_column("check")
    table.add_column("result")
    table.add_column("detail")
    for name, check in data["checks"].items():
        table.add_row(name, "[green]pass[/green]" if check["passed"] else "[red]FAIL[/red]", check["detail"])
    Console().print(table)
    if mode != "bwrap":
        Console().print("[bold red]WEAK SANDBOX: no namespace isolation; do not run untrusted code.[/bold red]")
