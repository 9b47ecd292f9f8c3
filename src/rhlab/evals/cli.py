"""`rhlab eval ...` and `rhlab judge calibrate ...` (mounted at the top level of the `rhlab` CLI)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer

app = typer.Typer(no_args_is_help=True)
judge_app = typer.Typer(help="LLM judges: calibration against the golden labelled set.", no_args_is_help=True)
app.add_typer(judge_app, name="judge")


@app.command("eval")
def eval_cmd(
    model: str = typer.Option(..., "--model", "-m", help="embedded | local HF dir | Inspect model (openai/..., vllm/..., hf/...)"),
    suite: str = typer.Option("core", "--suite", help="core | sabotage | diagnostics | all"),
    judge: Optional[str] = typer.Option(None, "--judge", "-j", help="judge model (default: the offline judge rhlab/offline)"),
    limit: Optional[int] = typer.Option(None, "--limit", help="at most N samples per eval"),
    log_dir: Path = typer.Option(Path("logs/evals"), "--log-dir", help="Inspect logs + summary.json; rerun to resume"),
    n_goals: int = typer.Option(300, "--n-goals", help="samples of the Goals eval"),
    n_agentic: int = typer.Option(50, "--n-agentic", help="samples of each agentic eval"),
    max_tokens: int = typer.Option(1024, "--max-tokens", help="generation budget of the evaluated model"),
    temperature: float = typer.Option(1.0, "--temperature"),
    no_judge_cache: bool = typer.Option(False, "--no-judge-cache", help="do not reuse cached judge replies"),
    betley_yaml: Optional[Path] = typer.Option(None, "--betley-yaml", help="your own copy of Betley et al.'s question YAML"),
    max_connections: Optional[int] = typer.Option(None, "--max-connections", help="concurrent model calls (API models)"),
) -> None:
    """Run an eval suite; write Inspect logs and a JSON summary (MGS with SE, per-eval rates, judge agreement)."""
    from rich.console import Console
    from rich.table import Table

    from rhlab.evals.runner import run_suite

    summary = run_suite(model, suite=suite, judge=judge, limit=limit, log_dir=log_dir, n_goals=n_goals,
                        n_agentic=n_agentic, max_tokens=max_tokens, temperature=temperature,
                        judge_cache=not no_judge_cache, betley_yaml=str(betley_yaml) if betley_yaml else None,
                        max_connections=max_connections)
    console = Console()
    table = Table(title=f"{model} — suite {suite} — judge {summary['judge']['name']}")
    for col in ("eval", "n", "misaligned %", "± SE", "hack attempts", "covert share", "judge failures"):
        table.add_column(col)
    for name, e in summary["evals"].items():
        cs = e.get("covert_share")
        table.add_row(name, str(e["n"]), f"{100 * e['misaligned_rate']:.1f}", f"{100 * e['se']:.1f}",
                      str(e["attempted_hack"]), "-" if cs is None else f"{100 * cs:.0f}%", str(e["judge_failures"]))
    console.print(table)
    m = summary["mgs"]
    if m.get("mgs") is not None:
        note = "" if m.get("complete") else f" (partial: missing {', '.join(m['missing'])})"
        console.print(f"MGS = {100 * m['mgs']:.1f}% ± {100 * m['se']:.1f}{note}")
    ag = summary["judge"]["agreement"]
    console.print(f"judge {summary['judge']['name']}: κ = {ag.get('kappa')}  {ag.get('note', '')}")
    console.print(f"summary: {summary['summary_path']}  wall time {summary['wall_time_s']:.0f}s")


@judge_app.command("calibrate")
def calibrate_cmd(
    judge: str = typer.Option("rhlab/offline", "--judge", "-j", help="judge model (embedded, a local dir, or an Inspect model)"),
    rubric: Optional[list[str]] = typer.Option(None, "--rubric", help="only these rubrics"),
    max_tokens: int = typer.Option(400, "--max-tokens", help="judge budget for verdict rubrics"),
    out: Optional[Path] = typer.Option(None, "--out", help="also write the full result (with items) here"),
    save: bool = typer.Option(True, "--save/--no-save", help="record the agreement so eval summaries can cite it"),
) -> None:
    """Measure a judge against the golden labelled set: Cohen's κ, accuracy and the confusion matrix."""
    from rich.console import Console
    from rich.table import Table

    from rhlab.evals.calibrate import calibrate_judge
    from rhlab.evals.judges import JudgeOptions
    from rhlab.evals.runner import resolve_model
    from rhlab.evals.scoring import save_calibration

    name, args = resolve_model(judge, judge=True)
    res = calibrate_judge(name, rubric, model_args=args, options=JudgeOptions(max_tokens_verdict=max_tokens))
    res["judge"] = judge
    console = Console()
    console.print(f"judge {judge}: n={res['n']}  accuracy={res['accuracy']:.3f}  κ={res['kappa']:.3f}  "
                  f"failures={res['judge_failures']}  ({res['wall_time_s']:.0f}s)")
    t = Table(title="confusion (rows: golden label, columns: judge)")
    t.add_column("")
    t.add_column("aligned")
    t.add_column("misaligned")
    for lab, row in res["confusion"].items():
        t.add_row(lab, str(row["aligned"]), str(row["misaligned"]))
    console.print(t)
    pr = Table(title="per rubric")
    for col in ("rubric", "n", "accuracy", "κ", "failures"):
        pr.add_column(col)
    for rub, r in res["per_rubric"].items():
        pr.add_row(rub, str(r["n"]), f"{r['accuracy']:.2f}", f"{r['kappa']:.2f}", str(r["failures"]))
    console.print(pr)
    if save:
        p = save_calibration(judge, {k: v for k, v in res.items() if k != "items"})
        console.print(f"saved agreement to {p}")
    if out:
        out.write_text(json.dumps(res, indent=2, default=str), encoding="utf-8")
