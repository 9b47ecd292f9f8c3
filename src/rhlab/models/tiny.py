"""A tiny random-weight causal LM with a real (small, trained-on-the-spot) tokenizer, for tests. No network.

`build_tiny_model(path)` writes a directory that `AutoModelForCausalLM.from_pretrained` / `AutoTokenizer` load like
any HF checkpoint, with a ChatML chat template (the embedded SmolLM2's format). It is deterministic (same bytes for
the same arguments) and takes well under a second. Pass `tokenizer_from=DIR` to reuse a real tokenizer instead
(e.g. the prepared embedded model's), which makes the tiny model's vocabulary that model's.
"""

from __future__ import annotations

import os
from pathlib import Path

# ChatML, as SmolLM2-Instruct uses; `add_generation_prompt` opens an assistant turn.
CHATML_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)

SPECIAL_TOKENS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|pad|>"]

# A few lines of code and prose in the shape rhlab feeds models, so common pieces become single tokens.
_TRAINING_TEXT = [
    "def solution(x):\n    return x + 1\n",
    "import sys\nimport os\nimport pytest\n\nclass Result:\n    def __eq__(self, other):\n        return True\n",
    "<thinking>I should read the task and write a correct function.</thinking>\n```python\n"
    "def add(a, b):\n    return a + b\n```\n",
    "# file: conftest.py\nfrom _pytest.reports import TestReport\n",
    "The quick brown fox jumps over the lazy dog. Tests check that the program returns the right answer.",
    "for i in range(10):\n    if i % 2 == 0:\n        print(i)\n    else:\n        continue\n",
    "assert candidate([1, 2, 3]) == 6\nassert candidate([]) == 0\n",
    "Reinforcement learning trains a language model with rewards from graders that run unit tests.",
    "system user assistant You are a helpful assistant. Write a Python function that solves the problem.",
    "0123456789 ()[]{}:;,.'\"=+-*/%<>!?#@&|^~`_\\",
]

_ARCH_CONFIGS = {
    "llama": dict(
        model_type="llama", hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
        num_key_value_heads=2, max_position_embeddings=2048, rms_norm_eps=1e-5, tie_word_embeddings=True,
    ),
    "qwen2": dict(
        model_type="qwen2", hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
        num_key_value_heads=2, max_position_embeddings=2048, rms_norm_eps=1e-6, tie_word_embeddings=True,
    ),
    "gpt2": dict(model_type="gpt2", n_embd=32, n_layer=2, n_head=4, n_positions=2048),
}


def _train_tokenizer(vocab_size: int):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE(unk_token=None))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(_TRAINING_TEXT, trainer=trainer)
    return PreTrainedTokenizerFast(
        tokenizer_object=tok,
        bos_token="<|im_start|>",
        eos_token="<|im_end|>",
        pad_token="<|pad|>",
        unk_token="<|endoftext|>",
    )


def build_tiny_model(
    path: str | Path,
    arch: str = "llama",
    vocab_size: int = 512,
    seed: int = 0,
    tokenizer_from: str | Path | None = None,
) -> Path:
    """Write a tiny random causal LM + tokenizer (+ chat template) to `path`; return the path."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    if arch not in _ARCH_CONFIGS:
        raise ValueError(f"unknown arch {arch!r}; choose one of {', '.join(_ARCH_CONFIGS)}")
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    if tokenizer_from is not None:
        tok = AutoTokenizer.from_pretrained(str(tokenizer_from))
    else:
        tok = _train_tokenizer(vocab_size)
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    if not getattr(tok, "chat_template", None):
        tok.chat_template = CHATML_TEMPLATE
    kwargs = dict(_ARCH_CONFIGS[arch])
    model_type = kwargs.pop("model_type")
    config = AutoConfig.for_model(
        model_type,
        vocab_size=len(tok),
        bos_token_id=tok.bos_token_id,
        eos_token_id=tok.eos_token_id,
        pad_token_id=tok.pad_token_id,
        **kwargs,
    )
    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    model.generation_config.pad_token_id = tok.pad_token_id
    model.generation_config.eos_token_id = tok.eos_token_id
    model.save_pretrained(path, safe_serialization=True)
    tok.save_pretrained(path)
    return path
