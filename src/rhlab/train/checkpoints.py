"""Checkpoints of a GRPO run, its hack onset, and preparing a run dir for a fresh start or a resume.

    artefacts/checkpoints/checkpoint-N/   HF/TRL checkpoint + rhlab_checkpoint.json (written after the save
                                          completed; a checkpoint without it is incomplete and ignored)

Resume: the newest complete checkpoint N is loaded (weights, optimiser, scheduler, RNG, data position), records of
steps > N are dropped (they are redone), and incomplete or later checkpoints are removed — so every step
1..max_steps appears exactly once in the records.

Only the newest checkpoint is ever resumed from; older ones are eval points and fork sources, which load the weights
only. So once a newer checkpoint is complete, an older one loses its resume-only state (`drop_resume_state`): the
optimiser's moments are twice the weights in fp32 Adam, two thirds of a checkpoint.
"""

from __future__ import annotations

import json
import shutil
from itertools import chain
from pathlib import Path
from typing import Any

from rhlab.config import ConfigError, load_config
from rhlab.rundir import RunDir, read_records, write_json
from rhlab.stage import is_main_process  # one rule for every stage (re-exported here for the trainer)
from rhlab.train.config import TrainConfig
from rhlab.train.onset import OnsetRule, onset_step
from rhlab.train.records import STEPS, truncate_records

CKPT_META = "rhlab_checkpoint.json"
# Config fields that may change between a run and its resume.
_RESUMABLE_CHANGES = {("grpo", "max_steps"), ("logging",), ("sandbox_workers",),
                      ("grpo", "extra", "vllm_server_host"), ("grpo", "extra", "vllm_server_base_url")}


def checkpoints_dir(run_dir: str | Path) -> Path:
    return Path(run_dir) / "artefacts" / "checkpoints"


def list_checkpoints(run_dir: str | Path) -> list[dict[str, Any]]:
    """Complete checkpoints, oldest first: their rhlab metadata plus `path`."""
    out = []
    d = checkpoints_dir(run_dir)
    if not d.exists():
        return out
    for p in d.glob("checkpoint-*"):
        meta = p / CKPT_META
        if p.is_dir() and meta.exists():
            try:
                m = json.loads(meta.read_text(encoding="utf-8"))
            except json.JSONDecodeError:
                continue
            m["path"] = str(p)
            out.append(m)
    return sorted(out, key=lambda m: m["step"])


# What only a resume reads: the optimiser (plain, accelerate, DeepSpeed `global_stepN/`, FSDP `optimizer_N/`),
# scheduler and RNG states. The weights, config, tokenizer and trainer_state.json (the log history) stay.
_RESUME_ONLY = ("optimizer.pt", "optimizer.bin", "scheduler.pt", "rng_state*.pth", "global_step*", "optimizer_*")
# A checkpoint keeps its resume state unless it also holds the weights in a loadable form (DeepSpeed ZeRO-3 without
# gathered weights keeps them only beside its optimiser shards).
_WEIGHTS = ("model.safetensors", "model.safetensors.index.json", "pytorch_model.bin", "pytorch_model.bin.index.json",
            "adapter_model.safetensors", "adapter_model.bin")


def drop_resume_state(ckpt: str | Path) -> int:
    """Delete what only a resume from `ckpt` would read and mark its metadata `resumable: false`; the bytes freed.
    A no-op (0) for an incomplete checkpoint or one whose weights are not saved in a loadable form."""
    ckpt = Path(ckpt)
    meta_path = ckpt / CKPT_META
    if not meta_path.is_file() or not any((ckpt / w).is_file() for w in _WEIGHTS):
        return 0
    meta = json.loads(meta_path.read_text(encoding="utf-8"))
    if meta.get("resumable", True):  # marked first: a kill mid-delete leaves a checkpoint no resume will trust
        write_json(meta_path, {**meta, "resumable": False})
    freed = 0
    for p in chain.from_iterable(ckpt.glob(pat) for pat in _RESUME_ONLY):
        if p.is_dir():
            freed += sum(f.stat().st_size for f in p.rglob("*") if f.is_file())
            shutil.rmtree(p)
        elif p.is_file():
            freed += p.stat().st_size
            p.unlink()
    return freed


def drop_superseded_resume_state(run_dir: str | Path) -> int:
    """`drop_resume_state` on every complete checkpoint but the newest (again on ones already marked: a kill
    mid-delete leaves files behind); the bytes freed."""
    return sum(drop_resume_state(c["path"]) for c in list_checkpoints(run_dir)[:-1])


def last_checkpoint(run_dir: str | Path) -> Path | None:
    cks = list_checkpoints(run_dir)
    return Path(cks[-1]["path"]) if cks else None


def mark_complete(ckpt: Path, meta: dict[str, Any]) -> None:
    """Write the checkpoint's rhlab metadata, atomically: its presence is what makes the checkpoint complete."""
    write_json(ckpt / CKPT_META, meta)


ONSET_RULE = "onset_rule.json"  # the run's onset rule (rhlab.train.onset.OnsetRule), written before step 1


def read_onset_rule(run_dir: str | Path) -> OnsetRule | None:
    """The onset rule a run dir recorded (None for runs from before it, or an unreadable file: the rate rule)."""
    p = Path(run_dir) / ONSET_RULE
    try:
        return OnsetRule(**json.loads(p.read_text(encoding="utf-8"))) if p.is_file() else None
    except (ValueError, TypeError):
        return None


# --- run dir: fresh start or resume ---------------------------------------------------------------------------------


def _config_diff(a: dict, b: dict, prefix: tuple = ()) -> list[tuple]:
    diffs = []
    for k in sorted(set(a) | set(b)):
        va, vb = a.get(k), b.get(k)
        if isinstance(va, dict) and isinstance(vb, dict):
            diffs += _config_diff(va, vb, prefix + (k,))
        elif va != vb:
            diffs.append(prefix + (k,))
    return diffs


def prepare_run_dir(cfg: TrainConfig, run_dir: Path, resume: bool) -> tuple[RunDir, Path | None]:
    """(the run dir, the checkpoint to resume from or None). A resume keeps the records up to the last complete
    checkpoint and removes later or incomplete checkpoints; a fresh start refuses a dir that already holds steps."""
    stored = run_dir / "config.yaml"
    if not is_main_process():  # other ranks only read; rank 0 owns the run dir
        return RunDir(run_dir), (last_checkpoint(run_dir) if resume else None)
    if resume:
        if not stored.exists():
            raise ConfigError(f"--resume: {run_dir} has no config.yaml (not a training run dir)")
        old = load_config(TrainConfig, stored)
        diffs = [d for d in _config_diff(old.model_dump(mode="json"), cfg.model_dump(mode="json"))
                 if not any(d[: len(p)] == p for p in _RESUMABLE_CHANGES)]
        if diffs:
            raise ConfigError(
                f"--resume: config differs from the run's config.yaml in {', '.join('.'.join(d) for d in diffs)}; "
                "only grpo.max_steps, logging, sandbox_workers and the vLLM server address may change on resume"
            )
        cks = list_checkpoints(run_dir)
        newest = cks[-1] if cks else None
        ckpt = Path(newest["path"]) if newest else None
        if newest and not newest.get("resumable", True):
            raise ConfigError(
                f"--resume: the newest complete checkpoint, {ckpt}, has no optimiser state (it was dropped when a "
                "newer checkpoint completed, and that one is gone); start a new run dir from its weights instead "
                f"(model: {ckpt})")
        run = RunDir.create(run_dir, cfg)
        keep_to = int(newest["step"]) if newest else 0
        truncate_records(run, keep_to)
        # incomplete checkpoints (killed mid-save) and ones after keep_to are removed so TRL cannot pick them up
        for p in checkpoints_dir(run_dir).glob("checkpoint-*"):
            try:
                n = int(p.name.split("-")[-1])
            except ValueError:
                continue
            if n > keep_to or not (p / CKPT_META).exists():
                shutil.rmtree(p, ignore_errors=True)
        return run, ckpt
    existing = RunDir(run_dir).records_path(STEPS)
    if existing.exists() and any(True for _ in read_records(existing)):
        raise ConfigError(f"{run_dir} already holds training steps; pass --resume to continue it, or use a new dir")
    return RunDir.create(run_dir, cfg), None


__all__ = ["CKPT_META", "ONSET_RULE", "read_onset_rule", "checkpoints_dir", "list_checkpoints", "last_checkpoint",
           "mark_complete", "drop_resume_state", "drop_superseded_resume_state", "onset_step",
           "is_main_process", "prepare_run_dir"]
