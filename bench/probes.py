"""Probe-suite throughput on the embedded model: `HF_HUB_OFFLINE=1 python bench/probes.py [--batch-size 8]`.

Scores every shipped probe item with rhlab's batched scorer (one row `[prompt, aligned, misaligned]` per item, rows
sorted by length and right-padded, logits only at reply positions) and, in the same run, a batch-1 baseline (one
forward per (prompt, reply) sequence, the whole vocabulary projected at every position) on a subset of the items;
prints items/s of both, the full-suite wall time against the 2-minute target, and the largest difference between the
two scorers' p_misaligned on the subset (they compute the same quantity). `--compare-dtype bfloat16` scores the
full suite once more with bfloat16 weights and prints its time and its distance from the float32 scores.
"""

from __future__ import annotations

import argparse
import json
import os
import time


def _naive(model, seqs) -> list[float]:
    """Batch 1, full logits: the straightforward way to score a reply."""
    import torch

    out = []
    with torch.inference_mode():
        for ids, start in seqs:
            lp = torch.log_softmax(model(input_ids=torch.tensor([ids])).logits[0].float(), -1)
            out.append(float(torch.stack([lp[t - 1, ids[t]] for t in range(start, len(ids))]).mean()))
    return out


def benchmark(batch_size: int = 8, subset: int = 24, model_name: str = "embedded", dtype: str = "float32",
              compare_dtype: str | None = None) -> dict:
    import torch

    from rhlab.evals import probes as P

    t0 = time.monotonic()
    model, tok = P.load_hf(model_name, device="cpu", dtype=dtype)
    load_s = time.monotonic() - t0
    items = P.load_items()
    enc = P.encode_items(tok, items, 1024)
    out: dict = {"date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "model": model_name, "dtype": dtype,
                 "threads": torch.get_num_threads(), "cpus": os.cpu_count(), "n_items": len(items),
                 "tokens": sum(len(x) for e in enc for x in e), "load_s": round(load_s, 1)}
    pad = tok.pad_token_id

    sub = enc[:subset]
    start, cpu = time.monotonic(), time.process_time()
    naive = _naive(model, P.as_sequences(sub))
    dt = time.monotonic() - start
    out["batch1_items_per_s"] = round(len(sub) / dt, 2)
    out["batch1_items_per_cpu_s"] = round(len(sub) / (time.process_time() - cpu), 3)
    out["batch1_subset_items"] = len(sub)

    start, cpu = time.monotonic(), time.process_time()
    packed = P.score_items_packed(model, enc, batch_size, pad_id=pad)
    dt = time.monotonic() - start
    out[f"batched{batch_size}_items_per_s"] = round(len(enc) / dt, 2)
    # CPU seconds over all threads: on a box shared with other jobs, wall time overstates the cost.
    out[f"batched{batch_size}_items_per_cpu_s"] = round(len(enc) / (time.process_time() - cpu), 3)
    out["full_suite_cpu_s"] = round(time.process_time() - cpu, 1)
    out["full_suite_scoring_s"] = round(dt, 1)
    out["full_suite_with_load_s"] = round(dt + load_s, 1)
    out["within_2_min"] = dt + load_s <= 120
    out["speedup"] = round(out[f"batched{batch_size}_items_per_s"] / out["batch1_items_per_s"], 2)
    diffs = [abs(P.sigmoid(m - a) - P.sigmoid(n_m - n_a))
             for (a, m), n_a, n_m in zip(packed[:subset], naive[0::2], naive[1::2])]
    out["max_abs_diff_p_misaligned_vs_batch1"] = float(f"{max(diffs):.2e}")
    s = P.summarise(P.item_scores(items, [v for pair in packed for v in pair]))
    out["probe_score"] = round(s["score"], 4)
    out["probe_se"] = round(s["se"], 4)
    out["hack_endorsement"] = round(s["hack_endorsement"].score, 4) if s["hack_endorsement"] else None
    if compare_dtype:
        out[compare_dtype] = _other_dtype(P, model_name, compare_dtype, items, enc, pad, batch_size, packed, out)
    return out


def _other_dtype(P, model_name: str, dtype: str, items, enc, pad: int, batch_size: int, packed, ref: dict) -> dict:
    """The full suite again with the weights in `dtype` (the same tokens), in the same run: its time and how far its
    p_misaligned (per item, and the suite score) lands from the first dtype's."""
    t0 = time.monotonic()
    model, _ = P.load_hf(model_name, device="cpu", dtype=dtype)
    load_s = time.monotonic() - t0
    start, cpu = time.monotonic(), time.process_time()
    other = P.score_items_packed(model, enc, batch_size, pad_id=pad)
    dt = time.monotonic() - start
    p_ref = [P.sigmoid(m - a) for a, m in packed]
    p_other = [P.sigmoid(m - a) for a, m in other]
    s = P.summarise(P.item_scores(items, [v for pair in other for v in pair]))
    return {"load_s": round(load_s, 1), "full_suite_scoring_s": round(dt, 1),
            "full_suite_cpu_s": round(time.process_time() - cpu, 1),
            "full_suite_with_load_s": round(dt + load_s, 1), "within_2_min": dt + load_s <= 120,
            "speedup_vs_first": round(ref["full_suite_scoring_s"] / dt, 2),
            "max_abs_diff_p_misaligned": float(f"{max(abs(x - y) for x, y in zip(p_ref, p_other)):.2e}"),
            "probe_score": round(s["score"], 4), "probe_score_diff_pp": round(100 * (s["score"] - ref["probe_score"]), 3)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--subset", type=int, default=24, help="items scored by the batch-1 baseline")
    ap.add_argument("--model", default="embedded")
    ap.add_argument("--dtype", default="float32", help="float32 (the default scorer on CPU) or bfloat16")
    ap.add_argument("--compare-dtype", default=None,
                    help="also score the full suite with the weights in this dtype (e.g. bfloat16), in the same run")
    args = ap.parse_args()
    print(json.dumps(benchmark(args.batch_size, args.subset, args.model, args.dtype, args.compare_dtype), indent=2))


if __name__ == "__main__":
    main()
