"""Eval throughput on the embedded model: `HF_HUB_OFFLINE=1 python bench/evals.py [--batch-size 16]`.

In one run: the core suite (`rhlab.evals.run_suite`, Inspect's hf provider, the offline topic screen as judge) at
batch 1 (`batch_size=1`: one generate call at a time) and at the batched setting, each on fresh log dirs; prints
samples per second of each (wall clock, model load included: the same few seconds in both), samples per CPU-second
of this process, and their ratio. Both runs take the same `--limit` samples of every core eval (so the fixed cost of
a run, model and judge loading, weighs the same on both rates); `--limit-batch1` can shorten the batch-1 run.
`--ungrouped` adds, per batched setting, a run with all six tasks at once (no prompt-length groups), for the ratio
the grouping buys (it reuses the model the grouped run loaded: Inspect caches one per `max_connections`). Then the
probes' items per second at their batch size (`rhlab.evals.probes.score_items_packed`, the scorer the probe suite
runs) on the first `--probe-items` items, and a greedy check: a few core prompts generated at temperature 0 one at a
time and as one left-padded batch through the same provider must give the same text.
The load average is printed at each phase: the box may be shared, and only same-run ratios mean anything.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import tempfile
import time
from pathlib import Path

from _cpu import load_average as _load  # bench/ is the script directory, so on the path


def core_rate(model: str, batch_size: int, limit: int, max_tokens: int, log_dir: Path,
              group_by_length: bool = True) -> dict:
    import inspect_ai.model._providers.hf as hf

    from rhlab.evals.suite import run_suite

    sizes: list[int] = []  # observation only: the size of each batch Inspect's hf provider generates
    generate_batch = hf._generate_batch

    def counted(batch):
        sizes.append(len(batch))
        return generate_batch(batch)

    hf._generate_batch = counted
    load0 = _load()
    t0, cpu0 = time.monotonic(), time.process_time()
    s = run_suite(model, suite="core", judge=None, limit=limit, log_dir=log_dir, max_tokens=max_tokens,
                  batch_size=batch_size, judge_cache=False, group_by_length=group_by_length)
    wall, cpu = time.monotonic() - t0, time.process_time() - cpu0
    hf._generate_batch = generate_batch
    n = sum(e.get("n_total", 0) for e in s["evals"].values() if isinstance(e, dict))
    return {"batch_size": batch_size, "limit_per_eval": limit, "samples": n, "wall_s": round(wall, 1),
            "cpu_s": round(cpu, 1), "samples_per_s": round(n / wall, 4), "samples_per_cpu_s": round(n / cpu, 4),
            "success": s.get("success"), "generate_calls": sum(sizes), "batches": len(sizes),
            "mean_batch": round(sum(sizes) / max(len(sizes), 1), 2), "task_groups": len(s.get("task_groups", [])),
            "load_before": load0, "load_after": _load()}


def greedy_check(model: str, n_prompts: int, max_tokens: int) -> dict:
    """The first user turns of a few core samples, generated greedily one at a time and as one batch."""
    from inspect_ai.model import GenerateConfig, get_model

    from rhlab.evals.suite import build_tasks, inspect_model_args

    name, args = inspect_model_args(model, judge=True)  # judge=True: do_sample=False (greedy)
    m = get_model(name, **args)
    inputs = []
    for task in build_tasks("core", n_goals=n_prompts, n_agentic=n_prompts):
        for sample in list(task.dataset)[:1]:
            inputs.append(sample.input)
        if len(inputs) >= n_prompts:
            break

    async def go(batch: int) -> list[str]:
        cfg = GenerateConfig(max_tokens=max_tokens, max_connections=batch)
        if batch == 1:
            return [(await m.generate(x, config=cfg)).completion for x in inputs]
        outs = await asyncio.gather(*(m.generate(x, config=cfg) for x in inputs))
        return [o.completion for o in outs]

    # batched first: outside an eval Inspect keeps a model's connection limit from its first call; the batch-1
    # calls are awaited one at a time, so each is a batch of its own
    batched = asyncio.run(go(len(inputs)))
    one = asyncio.run(go(1))
    return {"prompts": len(inputs), "max_tokens": max_tokens, "same": sum(a == b for a, b in zip(one, batched)),
            "first_mismatch": next(([a, b] for a, b in zip(one, batched) if a != b), None)}


def probe_rate(model: str, batch_size: int, n_items: int) -> dict:
    from rhlab.evals import probes as P

    model_, tok = P.load_hf(model, device="cpu")
    items = P.load_items()[:n_items]
    enc = P.encode_items(tok, items, 1024)
    load0 = _load()
    t0, cpu0 = time.monotonic(), time.process_time()
    P.score_items_packed(model_, enc, batch_size, pad_id=tok.pad_token_id)
    wall, cpu = time.monotonic() - t0, time.process_time() - cpu0
    return {"batch_size": batch_size, "items": len(items), "tokens": sum(len(x) for e in enc for x in e),
            "wall_s": round(wall, 1), "items_per_s": round(len(items) / wall, 3),
            "items_per_cpu_s": round(len(items) / cpu, 3), "load_before": load0, "load_after": _load()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="embedded")
    ap.add_argument("--batch-size", type=int, nargs="+", default=None,
                    help="the batched setting(s), each against the same batch-1 run (default: run_suite's)")
    ap.add_argument("--limit", type=int, default=4, help="samples per core eval (6 evals)")
    ap.add_argument("--limit-batch1", type=int, default=None, help="samples per core eval at batch 1 (default --limit)")
    ap.add_argument("--max-tokens", type=int, default=64)
    ap.add_argument("--probe-items", type=int, default=32)
    ap.add_argument("--probe-batch-size", type=int, default=8)
    ap.add_argument("--greedy-prompts", type=int, default=4, help="0 skips the greedy check")
    ap.add_argument("--skip-probes", action="store_true")
    ap.add_argument("--ungrouped", action="store_true",
                    help="also run each batched setting with all six tasks at once (run_suite group_by_length=False)")
    args = ap.parse_args()

    import torch

    from rhlab.evals.suite import HF_BATCH_SIZE

    batches = args.batch_size or [HF_BATCH_SIZE]
    out: dict = {"date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "model": args.model,
                 "max_tokens": args.max_tokens, "cpus": os.cpu_count(), "torch_threads": torch.get_num_threads(),
                 "load_start": _load()}
    with tempfile.TemporaryDirectory(prefix="rhlab-bench-evals-") as tmp:
        out["core_batch1"] = core_rate(args.model, 1, args.limit_batch1 or args.limit, args.max_tokens, Path(tmp) / "b1")
        print(json.dumps({"core_batch1": out["core_batch1"]}), flush=True)
        for batch in batches:
            out[f"core_batch{batch}"] = core_rate(args.model, batch, args.limit, args.max_tokens,
                                                  Path(tmp) / f"b{batch}")
            print(json.dumps({f"core_batch{batch}": out[f"core_batch{batch}"]}), flush=True)
            if args.ungrouped:
                key = f"core_batch{batch}_ungrouped"
                out[key] = core_rate(args.model, batch, args.limit, args.max_tokens, Path(tmp) / f"b{batch}u",
                                     group_by_length=False)
                print(json.dumps({key: out[key]}), flush=True)
    b1 = out["core_batch1"]
    for key in [k for k in list(out) if k.startswith("core_batch") and k != "core_batch1"]:
        tail = key[len("core_batch"):]
        out[f"core_speedup_batch{tail}"] = round(out[key]["samples_per_s"] / b1["samples_per_s"], 2)
        out[f"core_speedup_cpu_batch{tail}"] = round(out[key]["samples_per_cpu_s"] / b1["samples_per_cpu_s"], 2)
    if args.greedy_prompts:
        out["greedy_batch1_vs_batched"] = greedy_check(args.model, args.greedy_prompts, 24)
    if not args.skip_probes:
        out["probes"] = probe_rate(args.model, args.probe_batch_size, args.probe_items)
    out["load_end"] = _load()
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
