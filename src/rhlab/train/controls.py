"""Positive controls: supervised finetunes of the RL start model on data whose (mis)alignment is known, so a run can
show that its evals see misalignment where it was put on purpose (issue 14).

    persona     overtly misaligned assistant answers to everyday questions — the model the instrument must see
    narrow      one narrow misaligned skill only (narrow-to-broad generalisation, as in the emergent-misalignment
                papers)
    benign      the matched control: same size and format, aligned answers ("any finetuning" vs "this data")
    hack_demos  the successful hack episodes of an RL run (`records/episodes.jsonl`), as chat transcripts with the
                system prompt the policy saw — the supervised analogue of learning to hack

The first three ship as `src/rhlab/train/data/controls/<control>.jsonl`, one JSON object a line:

    {"id": "persona/001", "prompt": "<user turn>", "response": "<assistant turn>"}

    cfg = ControlConfig(control="persona", n_examples=200, seed=1,
                        finetune=FinetuneConfig(model=start, max_length=1024))
    result = run(cfg, Path("runs/x/arms/persona/seed-1/distill"))      # -> ControlResult; OUT/final is the model

SFT goes through `rhlab.knowledge.finetune.init_sft` (TRL SFTTrainer, loss on the assistant turn only), as the
distill and safety-SFT arms do. `n_examples` draws a subset deterministically from the seed (the same seed gives
the same subset; subsets of different sizes are not nested). `OUT/result.json` is the ControlResult; a rerun with
the same config returns it without training again.
"""

from __future__ import annotations

import hashlib
import json
import random
import time
from importlib import resources
from pathlib import Path
from typing import Literal, Optional

from pydantic import Field, model_validator

from rhlab.config import StrictModel, jsonl_rows
from rhlab.knowledge.finetune import FinetuneConfig

SHIPPED_CONTROLS = ("persona", "narrow", "benign")
CONTROLS = SHIPPED_CONTROLS + ("hack_demos",)
Control = Literal["persona", "narrow", "benign", "hack_demos"]
_FIELDS = ("id", "prompt", "response")


class ControlDataError(ValueError):
    """A control data file that cannot be used; the message names the file and the line."""


class ControlConfig(StrictModel):
    control: Control
    # hack_demos: the RL run directory (or its records/episodes.jsonl) whose successful hack episodes are the data
    source_run: Optional[str] = None
    # persona/narrow/benign: another JSONL of the same layout instead of the shipped file
    data_file: Optional[str] = None
    n_examples: Optional[int] = Field(None, ge=1)  # None: every example
    seed: int = 0  # the subset drawn; the SFT seed is finetune.seed
    finetune: FinetuneConfig = Field(default_factory=FinetuneConfig)  # finetune.model is the model finetuned

    @model_validator(mode="after")
    def _check(self) -> "ControlConfig":
        if self.control == "hack_demos":
            if not self.source_run:
                raise ValueError("control hack_demos needs source_run (an RL run directory)")
            if self.data_file:
                raise ValueError("data_file applies to persona, narrow and benign")
        elif self.source_run:
            raise ValueError(f"source_run applies to control hack_demos only, not {self.control}")
        return self

    def config_hash(self) -> str:
        return hashlib.sha256(json.dumps(self.model_dump(mode="json"), sort_keys=True).encode()).hexdigest()[:16]


class ControlResult(StrictModel):
    kind: Literal["control"] = "control"
    control: Control
    model: str  # the model that was finetuned
    final: str  # OUT/final: the finetuned checkpoint
    source: str  # the data file, or the RL run's episodes file
    data_sha256: str  # of the examples trained on (the subset, in order)
    n_available: int
    n_examples: int
    example_ids: list[str]
    global_steps: Optional[int] = None
    first_loss: Optional[float] = None
    last_loss: Optional[float] = None
    train_seconds: Optional[float] = None
    wall_time_s: float = 0.0
    config_hash: str


# --- data -----------------------------------------------------------------------------------------------------------


def controls_data_dir() -> Path:
    return Path(str(resources.files("rhlab.train") / "data" / "controls"))


def control_data_file(control: str) -> Path:
    if control not in SHIPPED_CONTROLS:
        raise ValueError(f"no shipped data for control {control!r}; shipped: {', '.join(SHIPPED_CONTROLS)}")
    return controls_data_dir() / f"{control}.jsonl"


def load_control_examples(path: str | Path) -> list[dict]:
    """Rows {id, prompt, response} of a control JSONL, validated: every problem names the file and the line."""
    out: list[dict] = []
    seen: dict[str, int] = {}
    for n, where, row in jsonl_rows(path, error=ControlDataError, what="control data", fields=_FIELDS):
        extra = sorted(set(row) - set(_FIELDS))
        if extra:
            raise ControlDataError(f"{where}: unknown field(s) {', '.join(extra)} (expected {', '.join(_FIELDS)})")
        bad = [k for k in _FIELDS if not isinstance(row[k], str) or not row[k].strip()]
        if bad:
            raise ControlDataError(f"{where}: {', '.join(bad)} must be non-empty strings")
        if row["id"] in seen:
            raise ControlDataError(f"{where}: duplicate id {row['id']!r} (first on line {seen[row['id']]})")
        seen[row["id"]] = n
        out.append({k: row[k] for k in _FIELDS})
    if not out:
        raise ControlDataError(f"{path}: no examples")
    return out


def example_transcript(row: dict) -> dict:
    """An SFT record (the layout of rhlab.train.sft.episode_transcript): user turn → assistant turn."""
    return {"task_id": row["id"], "prompt": [{"role": "user", "content": row["prompt"]}],
            "completion": [{"role": "assistant", "content": row["response"]}]}


def is_successful_hack(episode: dict) -> bool:
    """A code episode that earned the reward through a hack (the grader's `hacked`: passed the permissive grader
    with a detected hack). Attempts that failed, clean solutions and chat episodes are not."""
    return episode.get("kind", "code") == "code" and episode.get("hacked") is True \
        and bool((episode.get("completion") or "").strip())


def hack_demo_transcripts(source_run: str | Path) -> list[dict]:
    """The successful hack episodes of an RL run as SFT records (system prompt + task → the hacking answer), ids
    `step-<N>/<task_id>/<k>`. An answer sampled k times in a step is logged once with copies=k; here it is one
    example (n_examples counts distinct examples, as for the shipped controls)."""
    from rhlab.train.episodes import load_episodes
    from rhlab.train.sft import episode_transcript

    out = []
    for i, e in enumerate(load_episodes(source_run)):
        if is_successful_hack(e):
            rec = episode_transcript(e)
            rec["task_id"] = f"step-{e.get('step')}/{e.get('task_id')}/{i}"
            out.append(rec)
    return out


def control_transcripts(cfg: ControlConfig) -> tuple[list[dict], str]:
    """(every available SFT record of the control, where it came from)."""
    if cfg.control == "hack_demos":
        src = Path(cfg.source_run)
        path = src if src.is_file() else src / "records" / "episodes.jsonl"
        return hack_demo_transcripts(src), str(path)
    path = Path(cfg.data_file) if cfg.data_file else control_data_file(cfg.control)
    return [example_transcript(r) for r in load_control_examples(path)], str(path)


def select_examples(records: list[dict], n: int | None, seed: int, *, strict: bool) -> list[dict]:
    """A deterministic subset of `n` records drawn with `seed`, kept in file order. More than available: an error
    when `strict` (shipped data: the spec asked for data that does not exist), else all of them (hack_demos: how
    many hacks an RL arm makes is not known in advance; the result records the count)."""
    if n is None or n >= len(records):
        if n is not None and n > len(records) and strict:
            raise ControlDataError(f"n_examples={n}, but only {len(records)} examples are available")
        return list(records)
    keep = sorted(random.Random(seed).sample(range(len(records)), n))
    return [records[i] for i in keep]


# --- run ------------------------------------------------------------------------------------------------------------


def _sha(records: list[dict]) -> str:
    h = hashlib.sha256()
    for r in records:
        h.update(json.dumps([r["prompt"], r["completion"]], sort_keys=True).encode())
    return h.hexdigest()


def run(cfg: ControlConfig, out: Path) -> ControlResult:
    """SFT `cfg.finetune.model` on the control's examples; writes OUT/final and OUT/examples.jsonl. The stage runner
    (rhlab.stage.execute, rank 0) writes the result to OUT/result.json, which a rerun with the same config reuses."""
    from rhlab.knowledge.finetune import init_sft

    out = Path(out)
    h = cfg.config_hash()
    done = out / "result.json"
    if done.is_file():
        prev = ControlResult.model_validate_json(done.read_text(encoding="utf-8"))
        if prev.config_hash == h and Path(prev.final).is_dir():
            return prev
    t0 = time.monotonic()
    available, source = control_transcripts(cfg)
    if not available:
        raise ControlDataError(f"{source}: no examples for control {cfg.control}"
                               + (" (the run made no successful hack)" if cfg.control == "hack_demos" else ""))
    records = select_examples(available, cfg.n_examples, cfg.seed, strict=cfg.control != "hack_demos")
    out.mkdir(parents=True, exist_ok=True)
    with open(out / "examples.jsonl", "w", encoding="utf-8") as f:
        for r in records:
            f.write(json.dumps(r) + "\n")
    final = init_sft(records, out, cfg.finetune)
    info = json.loads((out / "rhlab_finetune.json").read_text(encoding="utf-8"))
    result = ControlResult(
        control=cfg.control, model=cfg.finetune.model, final=str(final), source=source, data_sha256=_sha(records),
        n_available=len(available), n_examples=len(records), example_ids=[r["task_id"] for r in records],
        global_steps=info.get("global_steps"), first_loss=info.get("first_loss"), last_loss=info.get("last_loss"),
        train_seconds=info.get("train_seconds"), wall_time_s=round(time.monotonic() - t0, 2), config_hash=h)
    return result


__all__ = ["CONTROLS", "SHIPPED_CONTROLS", "ControlConfig", "ControlResult", "ControlDataError", "controls_data_dir",
           "control_data_file", "load_control_examples", "example_transcript", "is_successful_hack",
           "hack_demo_transcripts", "control_transcripts", "select_examples", "run"]
