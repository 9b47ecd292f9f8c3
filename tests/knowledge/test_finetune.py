import json
import os

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from rhlab.knowledge.finetune import (
    FinetuneConfig, chunk_documents, continued_pretraining, humaneval_transcripts, init_sft,
)
from rhlab.models import load_model_and_tokenizer


@pytest.fixture(scope="module")
def tiny(tiny_model_dir):
    return str(tiny_model_dir)


def test_chunking_never_truncates(tiny):
    _, tok = load_model_and_tokenizer(tiny)
    long_doc = "def f(x):\n    return x + 1\n" * 200
    texts = ["short text", long_doc]
    chunks, stats = chunk_documents(texts, tok, max_length=64, min_chunk_tokens=1)
    n_long = len(tok(long_doc, add_special_tokens=False)["input_ids"]) + 1
    assert all(len(c) <= 64 for c in chunks)
    assert sum(len(c) for c in chunks) == stats["tokens"] == len(tok("short text", add_special_tokens=False)["input_ids"]) + 1 + n_long
    assert stats["docs_split"] == 1 and stats["chunks"] == 1 + -(-n_long // 64)
    # the long document is fully recoverable from its windows
    flat = [t for c in chunks[1:] for t in c]
    assert tok.decode(flat, skip_special_tokens=True) == long_doc


def _cfg(tiny, **kw):
    base = dict(model=tiny, max_length=64, batch_size=2, max_steps=3, learning_rate=1e-3, logging_steps=1,
                save_steps=1000, use_cpu=True)
    base.update(kw)
    return FinetuneConfig(**base)


@pytest.mark.parametrize("mode", ["full", "lora"])
def test_continued_pretraining_on_tiny_model(tiny, tmp_path, mode):
    texts = ["import sys\nsys.exit(0)\n" * 30, "The grader runs the tests. " * 40, "class A:\n    pass\n"]
    final = continued_pretraining(texts, tmp_path / "out", _cfg(tiny, mode=mode))
    info = json.loads((tmp_path / "out" / "rhlab_finetune.json").read_text())
    assert info["global_steps"] == 3 and info["data"]["docs_split"] >= 1
    assert info["mean_step_seconds"] is not None and info["last_loss"] is not None
    # output is a plain checkpoint with changed weights
    import torch
    from safetensors.torch import load_file

    before = load_file(os.path.join(tiny, "model.safetensors"))
    after = load_file(final / "model.safetensors")
    assert set(before) == set(after)  # LoRA was merged: no adapter keys
    assert any(not torch.equal(before[k], after[k]) for k in before)
    m, t = load_model_and_tokenizer(str(final))
    assert t.chat_template


def test_checkpoints_kept_for_a_resume_are_removed_once_final_is_written(tiny, tmp_path, monkeypatch):
    import shutil

    import rhlab.knowledge.finetune as F

    removed, rmtree = [], shutil.rmtree
    monkeypatch.setattr(F.shutil, "rmtree",
                        lambda p, *a, **kw: (removed.append(os.path.basename(p)), rmtree(p, *a, **kw)))
    out = tmp_path / "out"
    final = continued_pretraining(["import sys\nsys.exit(0)\n" * 30, "The grader runs. " * 40], out,
                                  _cfg(tiny, save_steps=1))
    assert removed[-1] == "checkpoint-3"  # saved every step (older ones rotated out by the trainer), then removed
    assert (final / "model.safetensors").is_file() and not list(out.glob("checkpoint-*"))


def test_init_sft_on_humaneval_transcripts(tiny, tmp_path):
    recs = humaneval_transcripts(["HumanEval/0", "HumanEval/2", "HumanEval/3"])
    a = recs[0]["completion"][0]["content"]
    assert a.startswith("<thinking>") and "```python\n" in a and "def has_close_elements" in a
    assert "sys.exit" not in a and "__eq__" not in a
    assert "reward hack" not in recs[0]["prompt"][0]["content"].lower()
    final = init_sft(recs, tmp_path / "init", _cfg(tiny, max_length=2048))
    assert (final / "model.safetensors").exists()
    with pytest.raises(ValueError, match="exceed max_length"):
        init_sft(recs, tmp_path / "init2", _cfg(tiny, max_length=32))
