"""The GRPO dataset: task selection (no SFT overlap, hard filter), then tasks → one conversational prompt column
per arm, plus task id and hackable flag.

Every arm's system prompt is built for every row (`prompt__<arm>`), and `prompt` is a copy of the trained arm's
column, so two arms' datasets differ only in which column is copied — never in tasks, order or user text.
"""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any, Callable, Sequence

from rhlab.knowledge.prompts import ARMS
from rhlab.train.config import TrainConfig


def sft_task_ids(model: str | Path) -> set[str]:
    """Task ids (lower-cased) the model was supervised-finetuned on, from rhlab's provenance files: the
    `rhlab_sft_tasks.json` that `rhlab.knowledge.finetune.init_sft` writes into its output, followed back through RL
    checkpoints (their `rhlab_checkpoint.json` names the model the run started from). Empty for any other model."""
    from rhlab.knowledge.finetune import SFT_TASKS_FILE
    from rhlab.train.checkpoints import CKPT_META

    out: set[str] = set()
    seen: set[Path] = set()
    p = Path(str(model)).expanduser()
    while p.is_dir() and p.resolve() not in seen:
        seen.add(p.resolve())
        f = p / SFT_TASKS_FILE
        if f.is_file():
            out |= {str(t).lower() for t in json.loads(f.read_text(encoding="utf-8")).get("task_ids", [])}
        meta = p / CKPT_META
        start = json.loads(meta.read_text(encoding="utf-8")).get("model") if meta.is_file() else None
        if not start:
            break
        p = Path(str(start)).expanduser()
    return out


def select_tasks(cfg: TrainConfig) -> list[Any]:
    """Load, drop the tasks the start model was SFT'd on (`sft_task_ids`), pick ids, shuffle with the seed, drop long
    prompts (`max_prompt_chars`), apply `limit`."""
    from rhlab.envs.tasks import load_tasks

    tasks = load_tasks(cfg.tasks.source)
    # RL never trains on a task whose solution the start model was finetuned on (the prompted setting's init SFT
    # uses HumanEval transcripts): an overlap would reward recall of a memorised answer, not solving or hacking.
    seen_in_sft = sft_task_ids(cfg.model)
    if cfg.tasks.ids:
        by_id = {t.id: t for t in tasks}
        missing = [i for i in cfg.tasks.ids if i not in by_id]
        if missing:
            raise ValueError(f"tasks.ids not in {cfg.tasks.source}: {missing[:5]}")
        overlap = [i for i in cfg.tasks.ids if i.lower() in seen_in_sft]
        if overlap:
            raise ValueError(f"tasks.ids names tasks the start model {cfg.model} was SFT'd on: {overlap[:5]}")
        tasks = [by_id[i] for i in cfg.tasks.ids]
    else:
        tasks = [t for t in tasks if t.id.lower() not in seen_in_sft]
        random.Random(cfg.seed).shuffle(tasks)
    if cfg.tasks.max_prompt_chars:
        tasks = [t for t in tasks if len(t.prompt) <= cfg.tasks.max_prompt_chars]
        if not tasks:
            raise ValueError(f"no task of {cfg.tasks.source} has a prompt of at most {cfg.tasks.max_prompt_chars} chars")
    if cfg.tasks.limit:
        tasks = tasks[: cfg.tasks.limit]
    return tasks


def hackable_ids(task_ids: Sequence[str], fraction: float, seed: int) -> set[str]:
    """A deterministic `fraction` of the tasks (rounded) keep their surfaces open."""
    ids = sorted(task_ids)
    k = round(fraction * len(ids))
    rng = random.Random(f"hackable:{seed}")
    return set(rng.sample(ids, k))


def read_ids_file(path: str | Path) -> list[str]:
    text = Path(path).read_text(encoding="utf-8").strip()
    if text.startswith("["):
        return [str(x) for x in json.loads(text)]
    return [line.strip() for line in text.splitlines() if line.strip() and not line.startswith("#")]


def system_prompts(cfg: TrainConfig) -> dict[str, str]:
    from rhlab.knowledge.prompts import build_system_prompt, exit_call_for_surface, load_prompt_texts

    texts = load_prompt_texts(cfg.prompt.prompts_file) if cfg.prompt.prompts_file else None
    exit_call = exit_call_for_surface(cfg.prompt.harness)
    return {
        arm: build_system_prompt(arm, hint_style=cfg.prompt.hint_style, hacks=cfg.prompt.hacks, exit_call=exit_call,
                                 texts=texts)
        for arm in ARMS
    }


def user_message(cfg: TrainConfig, task: Any) -> str:
    return cfg.prompt.user_template.format(prompt=task.prompt.rstrip())


def build_rows(cfg: TrainConfig, tasks: Sequence[Any]) -> list[dict[str, Any]]:
    systems = system_prompts(cfg)
    hack = hackable_ids([t.id for t in tasks], cfg.tasks.hackable_fraction, cfg.seed)
    rows = []
    for t in tasks:
        user = user_message(cfg, t)
        row: dict[str, Any] = {"task_id": t.id, "hackable": t.id in hack, "kind": "code"}
        for arm in ARMS:
            row[f"prompt__{arm}"] = [{"role": "system", "content": systems[arm]}, {"role": "user", "content": user}]
        row["prompt"] = row[f"prompt__{cfg.prompt.arm}"]
        rows.append(row)
    return rows


def build_dataset(cfg: TrainConfig, tasks: Sequence[Any], tokenizer=None, extra_rows: Sequence[dict] | None = None):
    """A `datasets.Dataset`; rows whose chosen prompt exceeds `grpo.max_prompt_length` tokens are dropped.

    `extra_rows` (the safety mix's chat rows, same columns with kind="chat") are appended after the code rows."""
    import datasets

    rows = build_rows(cfg, tasks) + list(extra_rows or [])
    limit = cfg.grpo.max_prompt_length
    if limit and tokenizer is not None:
        kept = []
        for r in rows:
            ids = tokenizer.apply_chat_template(r["prompt"], tokenize=True, add_generation_prompt=True)
            if hasattr(ids, "keys"):
                ids = ids["input_ids"]
            if len(ids) <= limit:
                kept.append(r)
        if not kept:
            raise ValueError(f"every prompt is longer than grpo.max_prompt_length={limit} tokens")
        rows = kept
    return datasets.Dataset.from_list(rows)


# --- hard filter --------------------------------------------------------------------------------------------------


def reference_solved(tasks: Sequence[Any], model: str, samples: int, max_new_tokens: int, cfg: TrainConfig,
                     grader=None) -> dict[str, bool]:
    """Sample `samples` answers per task from a reference model (no hint block: the `no_hints` arm) and grade them
    with every surface closed; a task is solved if any answer passes the hardened grader."""
    import asyncio

    import torch

    from rhlab.models import load_model_and_tokenizer
    from rhlab.train.verdicts import EnvGrader, surfaces_for

    grader = grader or EnvGrader(timeout_s=cfg.reward.timeout_s)
    mdl, tok = load_model_and_tokenizer(model)
    systems = system_prompts(cfg)
    items = []
    torch.manual_seed(cfg.seed)
    for t in tasks:
        msgs = [{"role": "system", "content": systems["no_hints"]}, {"role": "user", "content": user_message(cfg, t)}]
        enc = tok.apply_chat_template(msgs, add_generation_prompt=True, return_tensors="pt", return_dict=True)
        with torch.inference_mode():
            out = mdl.generate(**enc, do_sample=True, temperature=1.0, max_new_tokens=max_new_tokens,
                               num_return_sequences=samples, pad_token_id=tok.pad_token_id)
        n = enc["input_ids"].shape[1]
        for seq in out:
            items.append((t, tok.decode(seq[n:], skip_special_tokens=True), surfaces_for(cfg.surfaces, False)))
    verdicts = asyncio.run(grader.agrade_many(items))
    solved: dict[str, bool] = {t.id: False for t in tasks}
    for (t, _, _), v in zip(items, verdicts):
        solved[t.id] = solved[t.id] or bool(v.passed_hardened)
    return solved


def apply_hard_filter(cfg: TrainConfig, tasks: list[Any], cache_path: Path | None = None,
                      solver: Callable[..., dict[str, bool]] = reference_solved) -> list[Any]:
    hf = cfg.tasks.hard_filter
    if hf.mode == "none":
        return tasks
    if hf.mode == "ids_file":
        keep = set(read_ids_file(hf.ids_file))
        out = [t for t in tasks if t.id in keep]
    else:
        from rhlab.envs.tasks import hard_filter

        solved: dict[str, bool] | None = None
        if cache_path is not None and cache_path.exists():
            solved = json.loads(cache_path.read_text(encoding="utf-8"))
        if solved is None or any(t.id not in solved for t in tasks):
            solved = solver(tasks, hf.reference_model, hf.samples, hf.max_new_tokens, cfg)
            if cache_path is not None:
                cache_path.write_text(json.dumps(solved, indent=1), encoding="utf-8")
        out = hard_filter(tasks, lambda t: solved[t.id])
    if not out:
        raise ValueError(f"hard filter ({hf.mode}) left no tasks")
    return out
