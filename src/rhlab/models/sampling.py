"""Sampled replies to one chat prompt with transformers `generate`: the one loop the knowledge probes and the RL start
rate share.

One prompt per `generate` call, its samples as `num_return_sequences` (at most `chunk` at once): no padding, which on
the 2-core machine made a mixed batch of 16 five times slower than 16 samples of one prompt (371 s vs 75 s, loaded).
The caller seeds torch; the calls follow one another the same way for the same arguments, so a seeded caller gets
the same samples.
"""

from __future__ import annotations

from typing import Any, Sequence


def sample_chat(model, tokenizer, messages: Sequence[dict[str, str]], k: int, *, max_new_tokens: int,
                temperature: float, top_p: float = 1.0, chunk: int = 16, **generate_kwargs: Any) -> list[str]:
    """k replies to `messages` (the tokenizer's chat template, generation prompt added), decoded without special
    tokens. temperature 0 is greedy decoding: one generate call, its reply k times (generate refuses several
    return sequences without sampling)."""
    import torch

    enc = tokenizer.apply_chat_template(list(messages), add_generation_prompt=True, return_tensors="pt",
                                        return_dict=True)
    enc = {key: v.to(model.device) for key, v in enc.items()}
    start = enc["input_ids"].shape[1]
    sampled = temperature > 0
    out: list[str] = []
    while len(out) < (k if sampled else min(k, 1)):
        m = min(chunk, k - len(out)) if sampled else 1
        with torch.inference_mode():
            gen = model.generate(**enc, do_sample=sampled, temperature=temperature if sampled else None, top_p=top_p,
                                 max_new_tokens=max_new_tokens, num_return_sequences=m,
                                 pad_token_id=tokenizer.pad_token_id, **generate_kwargs)
        out += [tokenizer.decode(seq[start:], skip_special_tokens=True) for seq in gen]
    return out if sampled else out * k
