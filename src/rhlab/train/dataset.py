"""The GRPO dataset: task selection (no SFT overlap, hard filter), then tasks → one conversational prompt column
per arm, plus task id and hackable flag.

Every arm's system prompt is built for every row (`prompt__<arm>`), and `prompt` is a copy of the trained arm's
column, so two arms' datasets differ only in which column is copied — never in tasks, order or user text.
"""

from __future__ import annotations

import json
import random
import sys
import time
from pathlib import Path
from typing import Any, Callable, Sequence

from rhlab.knowledge.prompts import ARMS
from rhlab.rundir import write_json
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


def prompt_texts(cfg: TrainConfig):
    """The prompt texts of a run: the shipped ones, or `prompt.prompts_file` merged over them."""
    from rhlab.knowledge.prompts import default_texts, load_prompt_texts

    return load_prompt_texts(cfg.prompt.prompts_file) if cfg.prompt.prompts_file else default_texts()


def system_prompts(cfg: TrainConfig, task_kind: str = "function", texts=None) -> dict[str, str]:
    """Every arm's system prompt for tasks of `task_kind` (function, stdio, repo): the kinds differ only in the task
    context and answer format, never in hints or framing."""
    from rhlab.knowledge.prompts import build_system_prompt, exit_call_for_surface

    texts = texts if texts is not None else prompt_texts(cfg)
    exit_call = exit_call_for_surface(cfg.prompt.harness)
    return {
        arm: build_system_prompt(arm, hint_style=cfg.prompt.hint_style, hacks=cfg.prompt.hacks, exit_call=exit_call,
                                 texts=texts, task_kind=task_kind)
        for arm in ARMS
    }


def user_message(cfg: TrainConfig, task: Any, texts=None) -> str:
    """The user turn: `prompt.user_template` if set, else the task kind's own template."""
    from rhlab.knowledge.prompts import kind_user_message

    texts = texts if texts is not None else prompt_texts(cfg)
    return kind_user_message(task.prompt, task.style, texts, cfg.prompt.user_template)


def build_rows(cfg: TrainConfig, tasks: Sequence[Any]) -> list[dict[str, Any]]:
    texts = prompt_texts(cfg)
    by_kind: dict[str, dict[str, str]] = {}
    hack = hackable_ids([t.id for t in tasks], cfg.tasks.hackable_fraction, cfg.seed)
    rows = []
    for t in tasks:
        if t.style not in by_kind:
            by_kind[t.style] = system_prompts(cfg, t.style, texts)
        systems = by_kind[t.style]
        user = user_message(cfg, t, texts)
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

# conversations (system + user messages), k -> k answers per conversation
Sampler = Callable[[Sequence[list[dict[str, str]]], int], list[list[str]]]


class HFSampler:
    """`k` sampled answers per conversation from a transformers causal LM: `batch_size` conversations per
    `generate` call (left padding, `num_return_sequences=k`), seeded once."""

    def __init__(self, model: str, *, max_new_tokens: int, temperature: float = 1.0, top_p: float = 1.0,
                 batch_size: int = 8, seed: int = 0, device: str = "cpu"):
        import torch

        from rhlab.models import load_model_and_tokenizer

        gpu = device != "cpu" and torch.cuda.is_available()
        # on GPU: bf16, spread over the visible GPUs (it runs before the policy model is loaded)
        kw = {"dtype": "bfloat16", "device_map": "auto"} if gpu else {}
        self.model, self.tok = load_model_and_tokenizer(model, padding_side="left", **kw)
        self.model.eval()
        self.max_new_tokens, self.temperature, self.top_p = max_new_tokens, temperature, top_p
        self.batch_size, self.seed = batch_size, seed

    def __call__(self, conversations: Sequence[list[dict[str, str]]], k: int) -> list[list[str]]:
        import torch

        torch.manual_seed(self.seed)
        texts = [self.tok.apply_chat_template(c, tokenize=False, add_generation_prompt=True) for c in conversations]
        out: list[list[str]] = []
        for i in range(0, len(texts), self.batch_size):
            enc = self.tok(texts[i:i + self.batch_size], return_tensors="pt", padding=True, add_special_tokens=False)
            enc = enc.to(self.model.device)
            with torch.inference_mode():
                gen = self.model.generate(**enc, do_sample=True, temperature=self.temperature, top_p=self.top_p,
                                          max_new_tokens=self.max_new_tokens, num_return_sequences=k,
                                          pad_token_id=self.tok.pad_token_id)
            answers = self.tok.batch_decode(gen[:, enc["input_ids"].shape[1]:], skip_special_tokens=True)
            out += [answers[j:j + k] for j in range(0, len(answers), k)]
        return out

    def close(self) -> None:
        import gc

        import torch

        del self.model
        gc.collect()
        if torch.cuda.is_available():
            torch.cuda.empty_cache()


def reference_solve_rates(cfg: TrainConfig, tasks: Sequence[Any], sampler: Sampler, grader=None) -> dict[str, float]:
    """Each task's honest solve rate: `hard_filter.samples` answers from `sampler` under the `no_hints` prompt of
    the task's kind, graded with every surface closed (the hardened twin decides)."""
    import asyncio

    from rhlab.train.verdicts import EnvGrader, surfaces_for

    k = cfg.tasks.hard_filter.samples
    texts = prompt_texts(cfg)
    systems = {kind: system_prompts(cfg, kind, texts)["no_hints"] for kind in {t.style for t in tasks}}
    convs = [[{"role": "system", "content": systems[t.style]}, {"role": "user", "content": user_message(cfg, t, texts)}]
             for t in tasks]
    answers = sampler(convs, k)
    if len(answers) != len(tasks) or any(len(a) != k for a in answers):
        raise ValueError(f"hard filter: the sampler returned {[len(a) for a in answers]} answers for {len(tasks)} "
                         f"tasks; expected {k} each")
    closed = surfaces_for(cfg.surfaces, False)
    items = [(t, text, closed) for t, group in zip(tasks, answers) for text in group]
    grader = grader or EnvGrader(timeout_s=cfg.reward.timeout_s, workers=cfg.sandbox_workers)
    verdicts = asyncio.run(grader.agrade_many(items))
    passes: dict[str, int] = {t.id: 0 for t in tasks}
    for (t, _, _), v in zip(items, verdicts):
        passes[t.id] += bool(v.passed_hardened)
    return {tid: n / k for tid, n in passes.items()}


def _cache_key(cfg: TrainConfig) -> dict[str, Any]:
    """What the cached rates depend on: a cache made under other settings is not reused."""
    hf = cfg.tasks.hard_filter
    return {"reference_model": hf.reference_model, "samples": hf.samples, "max_new_tokens": hf.max_new_tokens,
            "seed": hf.seed, "temperature": cfg.grpo.temperature, "top_p": cfg.grpo.top_p,
            "prompts_file": cfg.prompt.prompts_file, "user_template": cfg.prompt.user_template}


def apply_hard_filter(cfg: TrainConfig, tasks: list[Any], cache_path: Path | None = None, *,
                      sampler: Sampler | None = None, grader=None, wait_s: float = 6 * 3600) -> list[Any]:
    """The tasks `tasks.hard_filter` keeps. reference_model: solve rates from `reference_solve_rates` (sampler:
    `HFSampler` on `reference_model` unless given), cached with the kept/dropped counts in `cache_path`; tasks
    already in the cache are not sampled again. Under several processes only rank 0 samples; the others wait for
    its cache (up to `wait_s`), so every rank trains on the same tasks."""
    from rhlab.envs.tasks import hard_filter
    from rhlab.train.checkpoints import is_main_process

    hf = cfg.tasks.hard_filter
    if hf.mode == "none":
        return tasks
    if hf.mode == "ids_file":
        keep = set(read_ids_file(hf.ids_file))
        out = [t for t in tasks if t.id in keep]
        if not out:
            raise ValueError(f"hard filter (ids_file {hf.ids_file}) keeps none of the {len(tasks)} selected tasks")
        return out
    key = _cache_key(cfg)
    ids = [t.id for t in tasks]
    if not is_main_process() and cache_path is not None:
        rates = _wait_for_cache(cache_path, key, ids, wait_s)
    else:
        rates = {}
        if cache_path is not None and cache_path.exists():
            cached = json.loads(cache_path.read_text(encoding="utf-8"))
            if cached.get("key") == key:
                rates = dict(cached.get("rates", {}))
        todo = [t for t in tasks if t.id not in rates]
        if todo:
            own = sampler is None
            if own:
                sampler = HFSampler(hf.reference_model, max_new_tokens=hf.max_new_tokens,
                                    temperature=cfg.grpo.temperature, top_p=cfg.grpo.top_p,
                                    batch_size=hf.batch_size, seed=hf.seed, device=cfg.device)
            try:
                rates.update(reference_solve_rates(cfg, todo, sampler, grader))
            finally:
                if own:
                    sampler.close()
    out = hard_filter(tasks, lambda t: rates[t.id] >= hf.threshold)
    if cache_path is not None and is_main_process():
        summary = {"key": key, "threshold": hf.threshold, "n_tasks": len(tasks), "kept": len(out),
                   "dropped": len(tasks) - len(out), "kept_ids": [t.id for t in out], "rates": rates}
        write_json(cache_path, summary)  # atomic: a waiting rank never reads half a file
    if not out:
        raise ValueError(
            f"hard filter: the reference model {hf.reference_model} solves every one of the {len(tasks)} tasks at a "
            f"rate >= {hf.threshold} ({hf.samples} samples each); raise hard_filter.threshold or use harder tasks")
    print(f"hard filter: kept {len(out)} of {len(tasks)} tasks (honest solve rate < {hf.threshold} by "
          f"{hf.reference_model}, {hf.samples} samples each)", file=sys.stderr, flush=True)
    return out


def _wait_for_cache(path: Path, key: dict, ids: Sequence[str], wait_s: float) -> dict[str, float]:
    deadline = time.monotonic() + wait_s
    while time.monotonic() < deadline:
        if path.exists():
            cached = json.loads(path.read_text(encoding="utf-8"))
            rates = cached.get("rates", {})
            if cached.get("key") == key and all(i in rates for i in ids):
                return rates
        time.sleep(5)
    raise TimeoutError(f"hard filter: rank 0 wrote no complete {path} within {wait_s:.0f} s")
