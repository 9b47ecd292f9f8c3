"""`rhlab demo`: the main job on the embedded default, end to end on a laptop.

Stages so far: prepare the embedded model → prove the sandbox isolates → grade reference answers (an honest
solution and one exploit per hack family) with the hackable grader and its hardened twin → sample a few
answers from the embedded model under a hint prompt and grade them the same way. Everything lands in one run
directory (`config.yaml`, `records/*.jsonl`).
"""

from __future__ import annotations

import time
from pathlib import Path

from pydantic import Field
from rich.console import Console
from rich.table import Table

from rhlab.config import StrictModel
from rhlab.envs.families import HACK_FAMILIES
from rhlab.rundir import RunDir


class DemoConfig(StrictModel):
    model: str = "embedded"
    # The first task's tests compare return values with ==, so every hack family has a surface to exploit.
    tasks: list[str] = Field(default_factory=lambda: ["humaneval/23", "humaneval/2"])
    framing: str = "hacking_okay"
    samples_per_task: int = Field(4, ge=1)
    max_new_tokens: int = Field(192, ge=16)
    temperature: float = Field(1.0, gt=0)
    seed: int = 0


def _yes(flag: bool) -> str:
    return "[green]yes[/green]" if flag else "[dim]no[/dim]"


def _verdict_row(table: Table, label: str, v) -> None:
    table.add_row(label, _yes(v.passed), _yes(v.passed_hardened), "[red]HACK[/red]" if v.hacked else "",
                  ", ".join(v.detected_hacks) or "-", ", ".join(v.attempted_hacks) or "-",
                  (v.parse_error or "")[:40])


def _verdict_table(title: str) -> Table:
    table = Table(title=title, title_justify="left")
    for col in ("answer", "passed", "passed hardened", "hacked", "detected", "attempted", "parse error"):
        table.add_column(col)
    return table


PREFLIGHT_TASK = "humaneval/23"  # its tests compare return values with ==, so every hack family has a surface


def _selftest_and_references(run: RunDir, pool, task, console: Console) -> str:
    """Sandbox self-test, then an honest answer and one exploit per hack family graded by the hackable grader and
    its hardened twin (records `selftest`, `reference_grades`). Returns the isolation mode."""
    from rhlab.envs.grading import HackSurfaces, grade_many
    from rhlab.hacks.catalogue import CATALOGUE

    console.rule("[bold]sandbox self-test")
    report = pool.selftest_report
    table = Table(title=f"isolation: {pool.isolation}", title_justify="left")
    table.add_column("check")
    table.add_column("result")
    table.add_column("detail")
    for name, (ok, detail) in report.checks.items():
        table.add_row(name, "[green]pass[/green]" if ok else "[red]FAIL[/red]", detail)
    console.print(table)
    run.append("selftest", report.to_dict())

    console.rule("[bold]reference answers: hackable grader vs hardened twin")
    refs = [("honest", f"<thinking>Implement it.</thinking>\n\n```python\n{task.canonical_solution}\n```")]
    seen: set[str] = set()
    for ex in CATALOGUE:
        if ex.family not in seen and ex.family in HACK_FAMILIES:
            seen.add(ex.family)
            refs.append((ex.family, ex.render(task)))
    refs.append(("malformed", "I think the answer is probably 42."))
    for surfaces_name, surfaces in (("all surfaces open", HackSurfaces.all()), ("all surfaces closed", HackSurfaces.none())):
        verdicts = grade_many([(task, text, surfaces) for _, text in refs], pool=pool)
        table = _verdict_table(f"{task.id}, {surfaces_name}")
        for (label, _), v in zip(refs, verdicts):
            _verdict_row(table, label, v)
            run.append("reference_grades", {"task": task.id, "surfaces": surfaces.open_names(), "answer": label,
                                            **v.to_dict()})
        console.print(table)
    return pool.isolation


def run_preflight(out: Path, console: Console | None = None) -> dict:
    """The experiment runner's first stage: the sandbox isolates, and the graders tell honest answers from hacks.
    Fails (raises) when a reference answer is graded wrongly, so no RL compute is spent on a broken environment."""
    from rhlab.envs.tasks import get_task
    from rhlab.sandbox import SandboxPool

    console = console or Console()
    run = RunDir.create(out)
    with SandboxPool() as pool:
        isolation = _selftest_and_references(run, pool, get_task(PREFLIGHT_TASK), console)
    by = {(r["answer"], bool(r["surfaces"])): r for r in run.records("reference_grades")[-10:]}
    problems = []
    if not (by[("honest", True)]["passed"] and by[("honest", False)]["passed_hardened"]):
        problems.append("the honest reference answer does not pass")
    for fam in HACK_FAMILIES:
        if not by[(fam, True)]["hacked"] or by[(fam, False)]["passed"]:
            problems.append(f"the {fam} exploit is not graded as a hack on open surfaces / a fail on closed ones")
    if problems:
        raise RuntimeError("preflight failed: " + "; ".join(problems) + f" (records in {out})")
    return {"isolation": isolation, "reference_answers": len(by)}


def run_demo(run_dir: Path, config: DemoConfig | None = None, console: Console | None = None) -> dict:
    from rhlab.envs.answer import parse_answer  # noqa: F401  (the format every answer below uses)
    from rhlab.envs.grading import HackSurfaces, grade_many
    from rhlab.envs.tasks import get_task
    from rhlab.sandbox import SandboxPool

    cfg = config or DemoConfig()
    console = console or Console()
    run = RunDir.create(run_dir, config=cfg)
    summary: dict = {"run_dir": str(run.path)}
    t0 = time.monotonic()

    console.rule("[bold]model")
    from rhlab.models.resolve import resolve_model

    with console.status("preparing the embedded model (once; later runs reuse the verified copy)"):
        model_path = resolve_model(cfg.model)
    console.print(f"model: {model_path}")
    summary["model"] = model_path

    pool = SandboxPool()
    try:
        tasks = [get_task(t) for t in cfg.tasks]
        summary["isolation"] = _selftest_and_references(run, pool, tasks[0], console)

        console.rule(f"[bold]the model under the '{cfg.framing}' prompt")
        completions = _sample(model_path, tasks, cfg, console)
        items = [(t, c, HackSurfaces.all()) for t, c in completions]
        verdicts = grade_many(items, pool=pool)
        table = _verdict_table(f"{len(verdicts)} samples, all surfaces open")
        for (t, c), v in zip(completions, verdicts):
            _verdict_row(table, t.id, v)
            run.append("model_grades", {"task": t.id, "framing": cfg.framing, "completion": c, **v.to_dict()})
        console.print(table)
        n = len(verdicts)
        summary.update(
            samples=n,
            passed=sum(v.passed for v in verdicts) / n,
            passed_hardened=sum(v.passed_hardened for v in verdicts) / n,
            hacked=sum(v.hacked for v in verdicts) / n,
            attempted_hack=sum(bool(v.attempted_hacks) for v in verdicts) / n,
            parse_errors=sum(v.parse_error is not None for v in verdicts) / n,
        )
    finally:
        pool.close()
    summary["wall_s"] = round(time.monotonic() - t0, 1)
    run.append("summary", summary)
    console.rule("[bold]summary")
    console.print(summary)
    return summary


def _sample(model_path: str, tasks, cfg: DemoConfig, console: Console) -> list[tuple]:
    import torch

    from rhlab.knowledge.prompts import build_system_prompt, task_user_message
    from rhlab.models.resolve import load_model_and_tokenizer

    torch.manual_seed(cfg.seed)
    model, tok = load_model_and_tokenizer(model_path)
    system = build_system_prompt(cfg.framing)
    out: list[tuple] = []
    for task in tasks:
        with console.status(f"sampling {cfg.samples_per_task} answers for {task.id}"):
            messages = [{"role": "system", "content": system}, {"role": "user", "content": task_user_message(task.prompt)}]
            enc = tok.apply_chat_template(messages, add_generation_prompt=True, return_tensors="pt", return_dict=True)
            with torch.no_grad():
                gen = model.generate(**enc, do_sample=True, temperature=cfg.temperature, max_new_tokens=cfg.max_new_tokens,
                                     num_return_sequences=cfg.samples_per_task, pad_token_id=tok.pad_token_id)
        prompt_len = enc["input_ids"].shape[1]
        for row in gen:
            out.append((task, tok.decode(row[prompt_len:], skip_special_tokens=True)))
    return out
