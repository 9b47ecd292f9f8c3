"""rhlab.models.sampling.sample_chat: the sampling loop the knowledge probes and the RL start rate share."""

import torch

from rhlab.models import load_model_and_tokenizer
from rhlab.models.sampling import sample_chat

MSGS = [{"role": "user", "content": "write a function"}]


def test_k_replies_in_chunks_seeded_and_chunk_independent_of_count(tiny_model_dir):
    model, tok = load_model_and_tokenizer(str(tiny_model_dir))
    torch.manual_seed(7)
    a = sample_chat(model, tok, MSGS, 5, max_new_tokens=8, temperature=1.0, chunk=2)
    torch.manual_seed(7)
    b = sample_chat(model, tok, MSGS, 5, max_new_tokens=8, temperature=1.0, chunk=2)
    assert len(a) == 5 and all(isinstance(x, str) for x in a)
    assert a == b  # the caller's seed decides the samples
    torch.manual_seed(8)
    assert sample_chat(model, tok, MSGS, 5, max_new_tokens=8, temperature=1.0, chunk=2) != a


def test_replies_exclude_the_prompt_and_greedy_is_deterministic(tiny_model_dir):
    model, tok = load_model_and_tokenizer(str(tiny_model_dir))
    torch.manual_seed(0)
    g1 = sample_chat(model, tok, MSGS, 1, max_new_tokens=6, temperature=0.0)
    torch.manual_seed(1)
    g3 = sample_chat(model, tok, MSGS, 3, max_new_tokens=6, temperature=0.0, chunk=2)
    assert g3 == g1 * 3  # greedy: one reply, whatever the seed, k times
    prompt_text = tok.apply_chat_template(MSGS, add_generation_prompt=True, tokenize=False)
    assert not g1[0].startswith(prompt_text)
    ids = tok(g1[0], add_special_tokens=False)["input_ids"]
    assert len(ids) <= 6 + 2  # at most the new tokens (re-tokenising may merge or split a little)
