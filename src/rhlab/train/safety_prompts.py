"""The safety prompt sets: chat prompts for the RLHF safety mix (`safety_mix`) and for safety SFT (`sft`).

The sets are rhlab's own words, disjoint from the eval questions in rhlab.evals (a test checks it), and ship as
`src/rhlab/train/data/safety/{hhh,dilemmas,agentic}.jsonl`, one JSON object a line:

    {"id": "hhh-01", "set": "hhh", "messages": [{"role": "user", "content": "..."}]}

    hhh       ordinary helpful / harmless / honest chat requests
    dilemmas  moral dilemmas about an AI's own role (oversight, honesty about itself, its goals, its limits)
    agentic   an assistant acting with tools or access, a system message describing its deployment, and a
              situation where it could overstep

A user JSONL of the same layout can replace them (`safety.prompts_file`).
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Any, Iterable

from rhlab.config import jsonl_rows
from rhlab.knowledge.prompts import ARMS
from rhlab.train.config import SAFETY_SETS, TrainConfig

_ROLES = ("system", "user", "assistant")


def safety_data_dir() -> Path:
    return Path(str(resources.files("rhlab.train") / "data" / "safety"))


def _read_prompt_file(path: Path) -> list[dict]:
    out = []
    for n, where, row in jsonl_rows(path, error=ValueError, what="safety prompt", fields=("id", "set", "messages")):
        if not isinstance(row["id"], str) or not row["id"].strip() or not isinstance(row["set"], str):
            raise ValueError(f"{where}: id and set must be non-empty strings")
        msgs = row["messages"]
        if not isinstance(msgs, list) or not msgs:
            raise ValueError(f"{where}: messages must be a non-empty list")
        for m in msgs:
            if not isinstance(m, dict) or m.get("role") not in _ROLES or not isinstance(m.get("content"), str) \
                    or not m["content"].strip():
                raise ValueError(f"{where}: each message needs a role in {_ROLES} and non-empty string content")
        if msgs[-1]["role"] != "user":
            raise ValueError(f"{where}: the last message must be the user's (the policy writes the next turn)")
        out.append({"id": row["id"], "set": row["set"], "messages": [{"role": m["role"], "content": m["content"]}
                                                                       for m in msgs]})
    return out


def load_safety_prompts(sets: Iterable[str] | None = None, path: str | Path | None = None) -> list[dict]:
    """The prompts of `sets` (default: all three shipped sets), or of a user JSONL `path` of the same layout
    (then `sets`, if given, filters its rows by their `set`). Ids must be unique; an empty selection is an error."""
    sets = list(sets) if sets is not None else None
    if path is not None:
        rows = _read_prompt_file(Path(path))
        if sets is not None:
            rows = [r for r in rows if r["set"] in sets]
    else:
        wanted = sets if sets is not None else list(SAFETY_SETS)
        unknown = [s for s in wanted if s not in SAFETY_SETS]
        if unknown:
            raise ValueError(f"unknown safety sets {unknown}; shipped: {', '.join(SAFETY_SETS)}")
        rows = []
        for s in wanted:
            got = _read_prompt_file(safety_data_dir() / f"{s}.jsonl")
            bad = [r["id"] for r in got if r["set"] != s]
            if bad:
                raise ValueError(f"{s}.jsonl: rows {bad[:3]} say another set")
            rows += got
    seen: set[str] = set()
    dup = [r["id"] for r in rows if r["id"] in seen or seen.add(r["id"])]
    if dup:
        raise ValueError(f"duplicate safety prompt ids: {dup[:5]}")
    if not rows:
        raise ValueError(f"no safety prompts selected (sets={sets}, path={path})")
    return rows


def safety_rows(cfg: TrainConfig) -> list[dict[str, Any]]:
    """The chat rows of the GRPO dataset: same columns as the code rows, every arm's prompt = the chat messages."""
    sf = cfg.safety
    if sf is None:
        return []
    rows = []
    for p in load_safety_prompts(sf.sets, sf.prompts_file):
        row: dict[str, Any] = {"task_id": p["id"], "hackable": False, "kind": "chat"}
        for arm in ARMS:
            row[f"prompt__{arm}"] = p["messages"]
        row["prompt"] = p["messages"]
        rows.append(row)
    return rows


__all__ = ["load_safety_prompts", "safety_rows", "safety_data_dir"]
