"""`rhlab knowledge probe|prompt`: propensity/knowledge probes and the system prompts."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer

from rhlab.envs.families import HACK_FAMILIES
from rhlab.knowledge.prompts import ARMS

app = typer.Typer(help="Hack knowledge: system-prompt framings and propensity probes.", no_args_is_help=True)


@app.command("prompt")
def prompt(
    arm: str = typer.Option("dont_hack", "--arm", help=" | ".join(ARMS)),
    style: str = typer.Option("prose", "--style", help="Hint style: prose | code (or one from --prompts)."),
    prompts: Optional[Path] = typer.Option(None, "--prompts", help="YAML overriding any prompt part."),
    hacks: str = typer.Option(",".join(HACK_FAMILIES), "--hacks"),
    exit_call: str = typer.Option("sys.exit(0)", "--exit-call"),
) -> None:
    """Print the system prompt of an arm."""
    from rhlab.knowledge.prompts import build_system_prompt, load_prompt_texts

    try:
        texts = load_prompt_texts(prompts) if prompts else None
        text = build_system_prompt(arm, hint_style=style, texts=texts, exit_call=exit_call,
                                   hacks=[h.strip() for h in hacks.split(",") if h.strip()])
    except ValueError as err:  # ConfigError included: an unknown arm, style or hack family, or a bad --prompts file
        typer.echo(f"error: {err}", err=True)
        raise typer.Exit(2)
    typer.echo(text)


@app.command("probe")
def probe(
    out: Path = typer.Option(..., "--out", help="Run directory (rerun to resume)."),
    model: Optional[str] = typer.Option(None, "--model", help="embedded (default), a path or an HF id."),
    arm: Optional[str] = typer.Option(None, "--arm", help="System-prompt arm; no_hints by default."),
    hint_style: Optional[str] = typer.Option(None, "--style"),
    prompts: Optional[str] = typer.Option(None, "--prompts", help="YAML overriding prompt parts."),
    tasks: Optional[str] = typer.Option(None, "--tasks", help="humaneval, a JSONL file or an HF dataset."),
    n_tasks: Optional[int] = typer.Option(None, "--n-tasks"),
    task_offset: Optional[int] = typer.Option(None, "--task-offset"),
    n_samples: Optional[int] = typer.Option(None, "--samples", help="Samples per task (n)."),
    k: Optional[list[int]] = typer.Option(None, "--k", help="k for hack@k (repeatable)."),
    hacks: Optional[str] = typer.Option(None, "--hacks", help="Open grader surfaces: all | none | families."),
    temperature: Optional[float] = typer.Option(None, "--temperature"),
    max_new_tokens: Optional[int] = typer.Option(None, "--max-new-tokens"),
    batch_size: Optional[int] = typer.Option(None, "--batch-size"),
    no_knowledge: bool = typer.Option(False, "--no-knowledge", help="Skip the can-you-describe-the-hack probe."),
    seed: Optional[int] = typer.Option(None, "--seed"),
    config: Optional[Path] = typer.Option(None, "--config", help="ProbeConfig YAML; flags override it."),
    sample_only: bool = typer.Option(False, "--sample-only",
                                     help="Sample and stop (e.g. on a GPU box without the sandbox); rerun the "
                                          "same command without it on a machine with the sandbox to grade."),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """hack@k per hack family (attempted and successful) + a knowledge probe, graded by the environments."""
    from rich.console import Console
    from rich.table import Table

    from rhlab.knowledge.probe import ProbeConfig, format_summary, run_probe
    from rhlab.knowledge.sdf.cli import _merge, _progress

    cfg = _merge(ProbeConfig, config, model=model, arm=arm, hint_style=hint_style, prompts_file=prompts,
                 tasks=tasks, n_tasks=n_tasks, task_offset=task_offset, n_samples=n_samples, ks=k or None,
                 hacks=hacks, temperature=temperature, max_new_tokens=max_new_tokens, batch_size=batch_size,
                 seed=seed, knowledge_probe=False if no_knowledge else None)
    with _progress() as progress:
        ids: dict[str, int] = {}

        def report(stage, done, total):
            if stage not in ids:
                ids[stage] = progress.add_task(stage, total=total)
            progress.update(ids[stage], completed=done, total=total)

        summary = run_probe(cfg, out, progress=report, sample_only=sample_only)
    if as_json or sample_only:
        typer.echo(json.dumps(summary, indent=2))
        return
    ks = [x for x in cfg.ks if x <= cfg.n_samples]
    table = Table(title=f"{cfg.model} · arm {cfg.arm} · {summary['n_tasks']} tasks × {cfg.n_samples} samples")
    for col in ["family", "attempted", "successful"] + [c for x in ks for c in (f"attempted@{x}", f"successful@{x}")]:
        table.add_column(col)
    for row in format_summary(summary, ks):
        table.add_row(*row)
    console = Console()
    console.print(table)
    console.print(f"pass rate {summary['pass_rate']:.3f} (hardened {summary['pass_hardened_rate']:.3f})")
    if "knowledge" in summary:
        console.print("knowledge probe (share of answers describing the hack): " +
                      ", ".join(f"{f} {v:.2f}" for f, v in summary["knowledge"].items()))
