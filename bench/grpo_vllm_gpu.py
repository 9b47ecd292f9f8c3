#!/usr/bin/env python
"""GPU bench: a few TRL GRPO steps with vLLM rollouts (colocate) vs HF `generate` rollouts, on a random-weight model
of a real 0.5B architecture (Qwen2.5-0.5B's config, built locally: no hub access needed). Reports rollout tokens/s
for each and their ratio, plus whole-step times.

    python bench/grpo_vllm_gpu.py --out $OUT/grpo_vllm.json          # on a GPU machine with vllm installed
    python bench/grpo_vllm_gpu.py --check                             # any machine: validates the setup only
    python bench/grpo_vllm_gpu.py --hf-only --out $OUT/grpo_hf.json   # GPU without vllm: the HF half, no ratio

Self-checking: it exits non-zero if any step fails, if a rollout produced no tokens, or if the ratio is not finite.
Random weights never emit EOS reliably, so every rollout is forced to `--max-new-tokens` (min_tokens / min_new_tokens)
and both paths generate exactly the same number of tokens. The reward is a trivial length-free constant-plus-noise
function: the bench times the engine, not the grader (the grader's share is measured by rhlab's own records).

The tokenizer is a word-level tokenizer with Qwen2.5's full vocabulary size (151,936 entries named `t<i>` plus the
ChatML special tokens at Qwen's ids), so the embedding / LM-head cost is the real architecture's.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from pathlib import Path

QWEN25_05B = dict(
    architectures=["Qwen2ForCausalLM"], model_type="qwen2", hidden_size=896, intermediate_size=4864,
    num_hidden_layers=24, num_attention_heads=14, num_key_value_heads=2, max_position_embeddings=32768,
    rope_theta=1000000.0, rms_norm_eps=1e-6, tie_word_embeddings=True, vocab_size=151936, hidden_act="silu",
    bos_token_id=151643, eos_token_id=151645, pad_token_id=151643, sliding_window=None, use_sliding_window=False,
)
SPECIALS = {"<|endoftext|>": 151643, "<|im_start|>": 151644, "<|im_end|>": 151645}
CHATML = (
    "{% for message in messages %}{{ '<|im_start|>' + message['role'] + ' ' + message['content'] + ' <|im_end|> ' }}"
    "{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant ' }}{% endif %}"
)


def build_model_dir(path: Path, layers: int | None = None, dtype: str = "bfloat16") -> Path:
    import torch
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import AutoModelForCausalLM, PreTrainedTokenizerFast, Qwen2Config

    path.mkdir(parents=True, exist_ok=True)
    cfg = dict(QWEN25_05B)
    if layers:
        cfg["num_hidden_layers"] = layers
    cfg.pop("architectures")
    cfg.pop("model_type")
    config = Qwen2Config(**cfg)
    # Byte-level BPE with no merges: the 256 byte symbols are ids 0..255 (so any text encodes, one token per
    # byte), the rest of Qwen2.5's 151,936 ids are filler tokens `t<i>` that decode to text; specials at Qwen's ids.
    # (transformers 5 rebuilds a qwen2 model's tokenizer as exactly this kind of BPE, so both load paths agree.)
    alphabet = sorted(pre_tokenizers.ByteLevel.alphabet())
    vocab = {ch: i for i, ch in enumerate(alphabet)}
    for i in range(len(alphabet), config.vocab_size):
        if i not in SPECIALS.values():
            vocab[f"t{i}"] = i
    vocab.update(SPECIALS)
    tok = Tokenizer(models.BPE(vocab=vocab, merges=[]))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    from tokenizers import decoders

    tok.decoder = decoders.ByteLevel()
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, eos_token="<|im_end|>", pad_token="<|endoftext|>",
                                   bos_token=None, unk_token=None,
                                   additional_special_tokens=["<|im_start|>"])
    fast.chat_template = CHATML
    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_config(config, dtype=getattr(torch, dtype))
    model.generation_config.pad_token_id = SPECIALS["<|endoftext|>"]
    model.generation_config.eos_token_id = SPECIALS["<|im_end|>"]
    model.save_pretrained(path, safe_serialization=True)
    fast.save_pretrained(path)
    return path


def make_dataset(n_prompts: int, prompt_tokens: int, seed: int = 0):
    import random

    import datasets

    rng = random.Random(seed)
    rows = []
    for _ in range(n_prompts):
        words = "".join(rng.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(prompt_tokens))  # 1 token each
        rows.append({"prompt": [{"role": "user", "content": words}]})
    return datasets.Dataset.from_list(rows)


def reward_const(completions, **_):
    import random

    return [1.0 + 0.01 * random.random() for _ in completions]


def grpo_config(args, out_dir: Path, use_vllm: bool, on_gpu: bool):
    from trl import GRPOConfig

    kw = dict(
        output_dir=str(out_dir), per_device_train_batch_size=args.prompts * args.num_generations,
        num_generations=args.num_generations, max_completion_length=args.max_new_tokens, max_steps=args.steps,
        learning_rate=1e-6, beta=0.0, epsilon_high=0.3, loss_type="dapo", scale_rewards="none",
        logging_steps=1, report_to="none", save_strategy="no", disable_tqdm=True, seed=0,
        generation_kwargs={"min_tokens": args.max_new_tokens} if use_vllm else {"min_new_tokens": args.max_new_tokens},
    )
    # transformers renamed gradient_checkpointing to activation_checkpointing in 5.2x; GPU images may be older
    import dataclasses

    names = {f.name for f in dataclasses.fields(GRPOConfig)}
    kw["activation_checkpointing" if "activation_checkpointing" in names else "gradient_checkpointing"] = True
    if on_gpu:
        kw.update(bf16=True)
    else:
        kw.update(use_cpu=True, bf16=False)
    if use_vllm:
        kw.update(use_vllm=True, vllm_mode="colocate", vllm_gpu_memory_utilization=args.vllm_mem,
                  vllm_enable_sleep_mode=False, vllm_max_model_length=args.prompt_tokens + args.max_new_tokens + 64)
    return GRPOConfig(**kw)


def run_grpo(args, model_dir: Path, use_vllm: bool, work: Path) -> dict:
    """A few GRPO steps; rollout time = wall time inside GRPOTrainer._generate."""
    from transformers import AutoTokenizer
    from trl import GRPOTrainer

    timings: list[tuple[float, int]] = []

    class Timed(GRPOTrainer):
        def _generate(self, prompts):
            import torch

            if torch.cuda.is_available():
                torch.cuda.synchronize()
            t0 = time.perf_counter()
            out = super()._generate(prompts)
            if torch.cuda.is_available():
                torch.cuda.synchronize()
            completion_ids = out[1]
            timings.append((time.perf_counter() - t0, sum(len(c) for c in completion_ids)))
            return out

    tok = AutoTokenizer.from_pretrained(str(model_dir))
    tok.padding_side = "left"
    trainer = Timed(model=str(model_dir), processing_class=tok, reward_funcs=[reward_const],
                    args=grpo_config(args, work / ("vllm" if use_vllm else "hf"), use_vllm, True),
                    train_dataset=make_dataset(max(args.prompts * args.steps, args.prompts), args.prompt_tokens))
    t0 = time.perf_counter()
    trainer.train()
    total = time.perf_counter() - t0
    # the first rollout includes warm-up (CUDA graphs, allocator); report steady state when there are >= 2
    steady = timings[1:] if len(timings) >= 2 else timings
    gen_s = sum(t for t, _ in steady)
    toks = sum(n for _, n in steady)
    del trainer
    import gc

    import torch

    gc.collect()
    torch.cuda.empty_cache()
    return {"engine": "vllm-colocate" if use_vllm else "hf-generate", "steps": len(timings),
            "rollout_seconds": [round(t, 3) for t, _ in timings], "rollout_tokens": [n for _, n in timings],
            "steady_tokens_per_s": toks / gen_s if gen_s > 0 else float("nan"), "train_seconds": round(total, 2)}


def check(args) -> int:
    """CPU-safe validation: arguments, the architecture config (2 layers), tokenizer, both GRPOConfigs."""
    import tempfile

    with tempfile.TemporaryDirectory() as d:
        d = Path(d)
        mdir = build_model_dir(d / "m", layers=1, dtype="float32")
        from transformers import AutoConfig, AutoTokenizer

        cfg = AutoConfig.from_pretrained(str(mdir))
        tok = AutoTokenizer.from_pretrained(str(mdir))
        assert cfg.vocab_size == 151936 and cfg.hidden_size == 896 and cfg.num_key_value_heads == 2
        assert len(tok) == cfg.vocab_size, (len(tok), cfg.vocab_size)
        ids = tok("hello")["input_ids"]
        assert len(ids) == 5 and max(ids) < 256 and tok.decode(ids) == "hello", ids
        assert tok.decode([1000, 2000]) == "t1000t2000"
        chat = tok.apply_chat_template([{"role": "user", "content": "abc"}], add_generation_prompt=True)
        chat = chat["input_ids"] if hasattr(chat, "keys") else chat
        assert chat[0] == SPECIALS["<|im_start|>"] and SPECIALS["<|im_end|>"] in chat, chat
        for use_vllm in (False, True):
            c = grpo_config(args, d / "o", use_vllm, on_gpu=False)
            assert c.use_vllm == use_vllm and c.num_generations == args.num_generations
        ds = make_dataset(2, args.prompt_tokens)
        assert len(ds) == 2
    try:
        import vllm  # noqa: F401

        have = True
    except ImportError:
        have = False
    print(f"check ok (vllm installed: {have}; the full bench needs a CUDA GPU and vllm)")
    return 0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--steps", type=int, default=3)
    ap.add_argument("--prompts", type=int, default=4, help="distinct prompts per step")
    ap.add_argument("--num-generations", type=int, default=8)
    ap.add_argument("--prompt-tokens", type=int, default=256)
    ap.add_argument("--max-new-tokens", type=int, default=256)
    ap.add_argument("--vllm-mem", type=float, default=0.3, help="vllm_gpu_memory_utilization (colocate)")
    ap.add_argument("--out", type=Path, default=None, help="write the JSON result here")
    ap.add_argument("--check", action="store_true", help="validate the setup on any machine and exit")
    ap.add_argument("--hf-only", action="store_true",
                    help="time only the HF-generate path (a GPU where vllm cannot be installed); no ratio")
    args = ap.parse_args()
    if args.steps < 2:
        ap.error("--steps must be >= 2 (the first rollout is warm-up)")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    if args.check:
        return check(args)
    import torch

    if not torch.cuda.is_available():
        print("error: no CUDA GPU; run with --check on CPU machines", file=sys.stderr)
        return 2
    import tempfile

    import transformers
    import trl

    vllm = None if args.hf_only else __import__("vllm")
    with tempfile.TemporaryDirectory() as d:
        work = Path(d)
        mdir = build_model_dir(work / "qwen2.5-0.5b-random")
        results = [run_grpo(args, mdir, use_vllm=False, work=work)]
        if vllm is not None:
            results.append(run_grpo(args, mdir, use_vllm=True, work=work))
    ratio = (results[1]["steady_tokens_per_s"] / results[0]["steady_tokens_per_s"]) if vllm is not None else None
    expect = args.prompts * args.num_generations * args.max_new_tokens
    problems = []
    for r in results:
        if r["steps"] != args.steps:
            problems.append(f"{r['engine']}: {r['steps']} rollouts for {args.steps} steps")
        if any(n != expect for n in r["rollout_tokens"]):
            problems.append(f"{r['engine']}: rollout token counts {r['rollout_tokens']} != {expect} each")
    if ratio is not None and (not math.isfinite(ratio) or ratio <= 0):
        problems.append(f"ratio not finite/positive: {ratio}")
    report = {
        "arch": "Qwen2.5-0.5B (random weights)", "gpu": torch.cuda.get_device_name(0),
        "versions": {"torch": torch.__version__, "transformers": transformers.__version__, "trl": trl.__version__,
                     "vllm": vllm.__version__ if vllm is not None else None},
        "settings": vars(args) | {"out": str(args.out) if args.out else None},
        "results": results, "vllm_over_hf_rollout_tokens_per_s": ratio, "problems": problems,
    }
    text = json.dumps(report, indent=1, default=str)
    print(text)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
