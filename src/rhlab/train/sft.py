"""Supervised finetunes of the train stage, both through `rhlab.knowledge.finetune.init_sft` (TRL SFTTrainer, loss on
the assistant turn only):

    distill     SFT on a GRPO run's episodes (selected with `rhlab.train.episodes`): filter-and-distill and
                rewrite-and-distill
    safety_sft  SFT on the safety prompt sets (`rhlab.train.safety_prompts`) with target replies from a chosen model
                (or a user JSONL)

    final = distill(kept, "runs/distilled", FinetuneConfig(model="embedded"), stats=stats)
    final = safety_sft("runs/safety-sft", FinetuneConfig(model=start), responder="embedded")
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Sequence

from rhlab.config import ConfigError, jsonl_rows
from rhlab.rundir import append_jsonl, read_records
from rhlab.train.config import SAFETY_SETS
from rhlab.train.safety_prompts import load_safety_prompts

# --- distill --------------------------------------------------------------------------------------------------------


def episode_transcript(e: dict) -> dict:
    """An SFT record: the conversation the policy saw → its completion."""
    if e.get("kind") == "chat" and e.get("messages"):
        prompt = [dict(m) for m in e["messages"]]
    else:
        prompt = ([{"role": "system", "content": e["system"]}] if e.get("system") else []) + \
                 [{"role": "user", "content": e.get("user") or ""}]
    return {"task_id": e.get("task_id"), "prompt": prompt,
            "completion": [{"role": "assistant", "content": e.get("completion") or ""}]}


def distill(episodes: Sequence[dict], out_dir: str | Path, cfg, *, stats: dict | None = None) -> Path:
    """SFT `cfg.model` (the run's base or any other) on the episodes' transcripts, loss on the completion only.
    Writes OUT/distill.json (counts, arms, filter stats) and returns OUT/final."""
    from rhlab.knowledge.finetune import init_sft

    episodes = list(episodes)
    if not episodes:
        raise ValueError("distill: no episodes left to train on (every episode was filtered out?)"
                         + (f" filter stats: {stats}" if stats else ""))
    empty = [e.get("task_id") for e in episodes if not (e.get("completion") or "").strip()]
    if empty:
        raise ValueError(f"distill: {len(empty)} episodes have an empty completion, e.g. {empty[:3]}")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    # an answer sampled k times in a step is logged once with copies=k; GRPO trained on every copy, so does this
    records = [episode_transcript(e) for e in episodes for _ in range(max(1, int(e.get("copies") or 1)))]
    arms: dict[str, int] = {}
    for e in episodes:
        arms[str(e.get("arm"))] = arms.get(str(e.get("arm")), 0) + 1
    (out / "distill.json").write_text(json.dumps({
        "episodes": len(episodes), "transcripts": len(records), "tasks": len({e.get("task_id") for e in episodes}),
        "steps": sorted({e.get("step") for e in episodes if e.get("step") is not None}),
        "arms": arms, "source_arms": sorted({str(e["source_arm"]) for e in episodes if "source_arm" in e}),
        "model": cfg.model, "filter_stats": stats,
    }, indent=1), encoding="utf-8")
    return init_sft(records, out, cfg)


# --- safety SFT -----------------------------------------------------------------------------------------------------


def _read_responses_file(path: Path, ids: Sequence[str]) -> dict[str, str]:
    got: dict[str, str] = {}
    for _, where, row in jsonl_rows(path, what="responses", fields=("id", "response")):
        if not isinstance(row["id"], str) or not isinstance(row["response"], str):
            raise ConfigError(f"{where}: expected {{\"id\": str, \"response\": str}}")
        if not row["response"].strip():
            raise ConfigError(f"{where}: empty response for {row['id']}")
        got[row["id"]] = row["response"]
    missing = [i for i in ids if i not in got]
    if missing:
        raise ValueError(f"{path} has no response for {len(missing)} of the {len(ids)} prompts, e.g. {missing[:5]}")
    return got


def generate_responses(prompts: Sequence[dict], responder: str, cache: Path, max_new_tokens: int = 256,
                       batch_size: int = 8, seed: int = 0, temperature: float = 0.0) -> dict[str, str]:
    """Replies of `responder` to each prompt (greedy at temperature 0, else sampled with `seed`), appended to
    `cache` as they are made; prompts already in the cache (from the same responder) are not regenerated."""
    import torch

    from rhlab.models import load_model_and_tokenizer

    done: dict[str, str] = {}
    # with a `skipped` list nothing raises: a line cut by a kill mid-write is skipped and its reply regenerated
    for row in read_records(cache, skipped=[]):
        if row.get("responder") != responder:
            raise ValueError(f"{cache} holds replies from {row.get('responder')!r}, not {responder!r}; "
                             "use another out dir")
        done[row["id"]] = row["response"]
    todo = [p for p in prompts if p["id"] not in done]
    if not todo:
        return done
    model, tok = load_model_and_tokenizer(responder, padding_side="left")
    model.eval()
    torch.manual_seed(seed)
    for i in range(0, len(todo), batch_size):
        batch = todo[i:i + batch_size]
        texts = [tok.apply_chat_template(p["messages"], tokenize=False, add_generation_prompt=True) for p in batch]
        enc = tok(texts, return_tensors="pt", padding=True, add_special_tokens=False)
        with torch.inference_mode():
            sampling = {"do_sample": True, "temperature": temperature} if temperature > 0 else {"do_sample": False}
            out = model.generate(**enc, max_new_tokens=max_new_tokens, pad_token_id=tok.pad_token_id, **sampling)
        n = enc["input_ids"].shape[1]
        for p, seq in zip(batch, out):
            reply = tok.decode(seq[n:], skip_special_tokens=True).strip()
            done[p["id"]] = reply
            append_jsonl(cache, {"id": p["id"], "responder": responder, "response": reply})
    return done


def safety_sft(out_dir: str | Path, cfg, *, sets: Sequence[str] = SAFETY_SETS, responder: str | None = None,
               responses_file: str | Path | None = None, max_new_tokens: int = 256,
               prompts_file: str | Path | None = None, temperature: float = 0.0) -> Path:
    """SFT `cfg.model` on the safety prompts with target replies from `responder` (any model name rhlab resolves,
    `embedded` included) or from `responses_file` (JSONL {id, response} covering every selected prompt).
    Replies (greedy unless `temperature` > 0) are cached in OUT/responses.jsonl (a rerun reuses them); empty
    replies are dropped and listed in OUT/safety_sft.json; loss on the reply only. Returns OUT/final."""
    from rhlab.knowledge.finetune import FinetuneConfig, init_sft

    if (responder is None) == (responses_file is None):
        raise ValueError("safety_sft: give exactly one of responder or responses_file")
    cfg = cfg or FinetuneConfig()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    prompts = load_safety_prompts(sets, prompts_file)
    ids = [p["id"] for p in prompts]
    cache = out / "responses.jsonl"
    if responses_file is not None:
        replies = _read_responses_file(Path(responses_file), ids)
        with open(cache, "w", encoding="utf-8") as fh:
            for i in ids:
                fh.write(json.dumps({"id": i, "responder": f"file:{responses_file}", "response": replies[i]},
                                    ensure_ascii=False) + "\n")
    else:
        replies = generate_responses(prompts, responder, cache, max_new_tokens=max_new_tokens, seed=cfg.seed,
                                     temperature=temperature)
    records, empty = [], []
    for p in prompts:
        r = replies.get(p["id"], "")
        if not r.strip():
            empty.append(p["id"])
            continue
        records.append({"task_id": p["id"], "prompt": p["messages"],
                        "completion": [{"role": "assistant", "content": r}]})
    if not records:
        raise ValueError(f"safety_sft: every target reply is empty (responder {responder!r} wrote nothing?)")
    (out / "safety_sft.json").write_text(json.dumps({
        "sets": list(sets), "prompts_file": str(prompts_file) if prompts_file else None,
        "responder": responder, "responses_file": str(responses_file) if responses_file else None,
        "prompts": len(prompts), "transcripts": len(records), "empty_replies_dropped": empty,
        "max_new_tokens": max_new_tokens, "temperature": temperature, "model": cfg.model,
    }, indent=1), encoding="utf-8")
    return init_sft(records, out, cfg)


__all__ = ["episode_transcript", "distill", "generate_responses", "safety_sft"]
