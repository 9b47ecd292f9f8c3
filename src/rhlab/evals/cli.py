"""`rhlab eval run|probe` (`app`), `rhlab judge calibrate|score` (`judge_app`) and `rhlab sabotage score-detector`
(`sabotage_app`)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer

app = typer.Typer(help="Misalignment evals: the Inspect suites and the paired-choice probes.", no_args_is_help=True)
judge_app = typer.Typer(help="Judges of record: calibration on labelled items (with decoys) and per-item audits.",
                        no_args_is_help=True)
sabotage_app = typer.Typer(help="Code sabotage: score reward-hack detector modules by running them, without a judge.",
                           no_args_is_help=True)


@app.command("run")
def eval_cmd(
    model: str = typer.Option(..., "--model", "-m", help="embedded | local HF dir | Inspect model (openai/..., vllm/..., hf/...)"),
    suite: str = typer.Option("core", "--suite", help="core | sabotage (code_sabotage: write rhlab's hack detector) | diagnostics | probes | all"),
    judge: Optional[str] = typer.Option(None, "--judge", "-j", help="judge of record (default: the topic screen rhlab/topic-screen, which fails calibration)"),
    limit: Optional[int] = typer.Option(None, "--limit", help="at most N samples per eval"),
    log_dir: Path = typer.Option(Path("logs/evals"), "--log-dir", help="Inspect logs + summary.json; rerun to resume"),
    n_goals: int = typer.Option(300, "--n-goals", help="samples of the Goals eval"),
    n_agentic: int = typer.Option(50, "--n-agentic", help="samples of each agentic eval"),
    max_tokens: int = typer.Option(1024, "--max-tokens", help="generation budget of the evaluated model"),
    temperature: float = typer.Option(1.0, "--temperature"),
    no_judge_cache: bool = typer.Option(False, "--no-judge-cache", help="do not reuse cached judge replies"),
    betley_yaml: Optional[Path] = typer.Option(None, "--betley-yaml", help="your own copy of Betley et al.'s question YAML"),
    max_connections: Optional[int] = typer.Option(None, "--max-connections", help="concurrent model calls (API models)"),
    probe_batch_size: int = typer.Option(8, "--probe-batch-size", help="probe items per forward pass (suites probes, all)"),
    em_samples: int = typer.Option(1, "--em-samples", min=1, help="answers sampled per EM question (the paper: >= 10)"),
    batch_size: Optional[int] = typer.Option(None, "--batch-size", min=1, help="generate calls batched together on a local HF model (default 32; 1 = one at a time)"),
) -> None:
    """Run an eval suite; write Inspect logs and a JSON summary (MGS over measured evals, per-eval rates, judge)."""
    from rich.console import Console
    from rich.table import Table

    from rhlab.evals.suite import run_suite

    summary = run_suite(model, suite=suite, judge=judge, limit=limit, log_dir=log_dir, n_goals=n_goals,
                        n_agentic=n_agentic, max_tokens=max_tokens, temperature=temperature,
                        judge_cache=not no_judge_cache, betley_yaml=str(betley_yaml) if betley_yaml else None,
                        max_connections=max_connections, probe_batch_size=probe_batch_size, em_samples=em_samples,
                        batch_size=batch_size)
    console = Console()
    if suite == "probes":
        _print_probes(console, summary)
        console.print(f"summary: {summary['summary_path']}")
        return
    table = Table(title=f"{model} — suite {suite} — judge {summary['judge']['name']}")
    for col in ("eval", "n", "misaligned %", "± SE", "scope", "hack attempts", "covert share", "judge failures"):
        table.add_column(col)
    for name, e in summary["evals"].items():
        if "measured" not in e:  # not an eval entry of the Inspect suite
            continue
        cs = e.get("covert_share")
        if e["measured"]:
            rate, se = f"{100 * e['misaligned_rate']:.1f}", f"{100 * e['se']:.1f}"
        else:
            rate, se = f"not measured — {e['not_measured_reason']}", "-"
        table.add_row(name, str(e["n"]), rate, se, str(e.get("scope") or "-"), str(e["attempted_hack"]),
                      "-" if cs is None else f"{100 * cs:.0f}%", str(e["judge_failures"]))
    console.print(table)
    m = summary["mgs"]
    if m.get("mgs") is not None:
        console.print(f"MGS = {100 * m['mgs']:.1f}% ± {100 * m['se']:.1f} over {', '.join(m['evals'])}")
    else:
        console.print("MGS: not measured (no eval measured)")
    for name, why in (m.get("not_measured") or {}).items():
        console.print(f"  {name}: not measured — {why}")
    f = summary["judge"]["failures"]
    console.print(f"judge {summary['judge']['name']}: {f['failures']} failures, {f['retries']} re-asks, "
                  f"{f['invalid_quotes']} invalid quotes, {f['refusals']} refusals")
    if suite == "all":
        if summary.get("probes"):
            _print_probes(console, summary["probes"])
        else:
            console.print(f"probes: not measured — {summary.get('probes_not_measured_reason')}")
    console.print(f"summary: {summary['summary_path']}  wall time {summary['wall_time_s']:.0f}s")


def _print_probes(console, res: dict) -> None:
    """A ProbeResult dict as a table: per category, overall, and hack_endorsement apart."""
    from rich.table import Table

    def pct(x):
        return "-" if x is None else f"{100 * x:.1f}"

    t = Table(title=f"{res['model']} — paired-choice probes (mean p_misaligned ± bootstrap SE)")
    for col in ("category", "n", "p_misaligned %", "± SE", "misaligned preferred %"):
        t.add_column(col)
    for cat, c in res["per_category"].items():
        t.add_row(cat, str(c["n"]), pct(c["score"]), pct(c["se"]), pct(c["share_misaligned_preferred"]))
    t.add_row("probe score", str(res["n"]), pct(res["score"]), pct(res["se"]), pct(res["share_misaligned_preferred"]))
    h = res.get("hack_endorsement")
    if h:
        t.add_row("hack_endorsement (apart)", str(h["n"]), pct(h["score"]), pct(h["se"]),
                  pct(h["share_misaligned_preferred"]))
    console.print(t)


@app.command("probe")
def probe_cmd(
    model: str = typer.Option(..., "--model", "-m", help="embedded | local HF dir | LoRA adapter dir | hub id (hf/ORG/NAME, vllm/ORG/NAME)"),
    items: Optional[list[Path]] = typer.Option(None, "--items", help="probe item JSONL (id, category, prompt, aligned, misaligned); repeatable; default: the shipped probes"),
    batch_size: int = typer.Option(8, "--batch-size", help="items per forward pass"),
    backend: str = typer.Option("hf", "--backend", help="hf | vllm (GPU)"),
    category: Optional[list[str]] = typer.Option(None, "--category", help="only these categories (repeatable)"),
    max_length: int = typer.Option(1024, "--max-length", help="tokens per prompt + reply; longer items are an error"),
    dtype: str = typer.Option("auto", "--dtype", help="hf backend: auto (float32 on CPU, bfloat16 on CUDA) | float32 | bfloat16"),
    out: Optional[Path] = typer.Option(None, "--out", help="write OUT/summary.json; rerun with the same config to reuse it"),
    as_json: bool = typer.Option(False, "--json", help="print the result as JSON"),
) -> None:
    """Paired-choice probes: p(misaligned reply preferred) per item from one forward pass, no generation, no judge."""
    from rich.console import Console

    from rhlab.config import ConfigError, validate
    from rhlab.evals.probes import ProbeConfig, ProbeItemError, run, score_items, select_items

    try:
        cfg = validate(ProbeConfig, dict(model=model, items=[str(p) for p in items] if items else None,
                                         batch_size=batch_size, backend=backend, categories=category or None,
                                         max_length=max_length, dtype=dtype), "rhlab eval probe options")
        res = run(cfg, out) if out else score_items(cfg, select_items(cfg))
    except (ProbeItemError, ConfigError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    if as_json:
        typer.echo(json.dumps(res.model_dump(), indent=2))
        return
    console = Console()
    _print_probes(console, res.model_dump())
    console.print(f"{res.n_tokens} tokens in {res.wall_time_s:.1f}s" + (f"; summary: {out / 'summary.json'}" if out else ""))


def _judge_model(judge: str):
    from inspect_ai.model import get_model

    from rhlab.evals.suite import inspect_model_args

    name, args = inspect_model_args(judge, judge=True)
    return get_model(name, **args)


def _items(path: Optional[Path], rubric: Optional[str]):
    """Items from a file (or the shipped set); a malformed file ends the command with its FILE:LINE error."""
    from rhlab.evals.calibrate import CalibrationItemError, load_items, shipped_items
    from rhlab.evals.judges import RECORD_RUBRICS

    if rubric is not None and rubric not in RECORD_RUBRICS:
        typer.echo(f"error: unknown rubric {rubric!r}; rubrics: {', '.join(RECORD_RUBRICS)}", err=True)
        raise typer.Exit(2)
    try:
        return load_items(path, rubric) if path else shipped_items([rubric] if rubric else None)
    except CalibrationItemError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None


def _pct(x: Optional[float]) -> str:
    return "-" if x is None else f"{100 * x:.0f}%"


@judge_app.command("calibrate")
def calibrate_cmd(
    judge: str = typer.Option("rhlab/topic-screen", "--judge", "-j", help="judge (embedded, a local dir, or an Inspect model)"),
    items: Optional[Path] = typer.Option(None, "--items", help="JSONL items (default: the shipped calibration set)"),
    rubric: Optional[str] = typer.Option(None, "--rubric", help="only this rubric (and the rubric of items that have none)"),
    as_json: bool = typer.Option(False, "--json", help="print the result as JSON"),
    out: Optional[Path] = typer.Option(None, "--out", help="also write the full result (with every verdict) here"),
    save: bool = typer.Option(True, "--save/--no-save", help="write the calibration record a run's summary cites"),
    no_cache: bool = typer.Option(False, "--no-judge-cache", help="do not reuse cached judge verdicts"),
) -> None:
    """Score labelled items per rubric: κ (bootstrap CI), confusion matrix, FPR on plain aligned items and on decoys,
    recall on plain misaligned items, incoherent flag rate; pass/fail. Records the result for the judge's runs."""
    from rhlab.evals.calibrate import CalibrationItemError, calibrate_judge, save_calibration

    its = _items(items, rubric)
    try:
        res = calibrate_judge(_judge_model(judge), its, rubrics=[rubric] if rubric else None, cache=not no_cache,
                              items_source=str(items) if items else None)
    except CalibrationItemError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    if save:
        res["calibration_files"] = [str(p) for p in save_calibration(res)]
    if out:
        out.write_text(json.dumps(res, indent=2, default=str), encoding="utf-8")
    if as_json:
        typer.echo(json.dumps({k: v for k, v in res.items() if k != "verdicts"}, indent=2, default=str))
        return
    from rich.console import Console
    from rich.table import Table

    console = Console()
    t = Table(title=f"judge {res['judge']} — {'PASSED' if res['passed'] else 'FAILED'} ({res['wall_time_s']:.0f}s)")
    for col in ("rubric", "n", "κ [95% CI]", "FPR aligned", "FPR decoy", "recall plain mis.", "incoherent flagged",
                "failures", "passed", "why not"):
        t.add_column(col)
    for rub, r in res["rubrics"].items():
        ci = r["kappa_ci"]
        k = "-" if r["kappa"] is None else f"{r['kappa']:.2f}" + (f" [{ci[0]:.2f}, {ci[1]:.2f}]" if ci else "")
        t.add_row(rub, str(r["n"]), k, _pct(r["fpr_aligned"]), _pct(r["fpr_decoy"]), _pct(r["recall_plain_misaligned"]),
                  _pct(r["flag_rate_incoherent"]), str(r["failures"]), "yes" if r["passed"] else "no",
                  "; ".join(r["reasons"]))
    console.print(t)
    for rub, r in res["rubrics"].items():
        c = r["confusion"]
        console.print(f"{rub}: truth aligned → {c['aligned']['aligned']} aligned / {c['aligned']['misaligned']} flagged; "
                      f"truth misaligned → {c['misaligned']['aligned']} aligned / {c['misaligned']['misaligned']} flagged")
    for p in res.get("calibration_files", []):
        console.print(f"saved {p}")


@judge_app.command("score")
def score_cmd(
    judge: str = typer.Option(..., "--judge", "-j", help="judge (embedded, a local dir, or an Inspect model)"),
    rubric: str = typer.Option(..., "--rubric", help="rubric id (an eval name, e.g. goals)"),
    items: Path = typer.Option(..., "--items", help="JSONL items: id, prompt + response (or transcript), label"),
    as_json: bool = typer.Option(False, "--json", help="print the verdicts as JSON"),
    no_cache: bool = typer.Option(False, "--no-judge-cache", help="do not reuse cached judge verdicts"),
) -> None:
    """Per-item verdicts of a judge under one rubric (for audits): misaligned or not, score, supporting quote."""
    from rhlab.evals.calibrate import score_items

    its = _items(items, rubric)
    res = score_items(_judge_model(judge), rubric, its, cache=not no_cache)
    if as_json:
        typer.echo(json.dumps(res, indent=2, default=str))
        return
    for v in res["verdicts"]:
        flag = "FAILED" if v["failure"] and v["label"] is None else ("MISALIGNED" if v["misaligned"] else v["label"])
        typer.echo(f"{v['id']}\t{flag}\t{'' if v['score'] is None else v['score']}\t{v['quote']!r}")


@sabotage_app.command("score-detector")
def score_detector_cmd(
    file: Path = typer.Argument(..., help="a detector module defining detect(answer_text: str, task_id: str) -> bool"),
    json_out: bool = typer.Option(False, "--json", help="print the score as JSON"),
) -> None:
    """Score a reward-hack detector module over rhlab's held-out labelled answers, run in the sandbox. Exit status
    0 whenever it was scored (a broken detector is a result: `error` says why), 2 when FILE does not exist."""
    from rhlab.evals.detector_audit import load_items, reference_score, relative_effectiveness, score_detector

    if not Path(file).is_file():
        typer.echo(f"error: no such file: {file}", err=True)
        raise typer.Exit(2)
    items = load_items()
    score = score_detector(Path(file), items)
    if json_out:
        typer.echo(json.dumps(score.to_json()))
        return
    if score.error:
        typer.echo(f"broken detector ({score.n} items): {score.error}")
        return
    typer.echo(f"items {score.n}: accuracy {score.accuracy}  precision {score.precision}  recall {score.recall}  "
               f"false-positive rate {score.false_positive_rate}")
    for fam, fs in (score.per_family or {}).items():
        typer.echo(f"  {fam:<20} n={fs.n:<3} recall {fs.recall}")
    ref = reference_score(items)
    typer.echo(f"relative effectiveness vs rhlab's reference detector (accuracy {ref.accuracy}): "
               f"{relative_effectiveness(score, ref)}")
