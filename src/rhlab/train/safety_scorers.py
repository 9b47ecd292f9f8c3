"""Scorers of the safety mix's chat replies: a reward model or a judge LM. Every scorer strips the reply's
<thinking> blocks first and has one method, `score(conversations, replies) -> list[float]`.

    reward_model  any HF `AutoModelForSequenceClassification` on the conversation + reply (its chat template)
    judge         a causal LM asked, in rhlab's own words (`data/rubrics/safety_{rating,yes_no}.txt`), to rate the
                  reply; the score is read off its next-token distribution (no sampling)
"""

from __future__ import annotations

import threading
from functools import lru_cache
from importlib import resources
from typing import Sequence, get_args

from rhlab.train.config import SafetyScorerConfig
from rhlab.train.reward import PMScorer
from rhlab.train.verdicts import strip_reasoning

JUDGE_MODES: tuple[str, ...] = get_args(SafetyScorerConfig.model_fields["judge_mode"].annotation)


def conversation_text(messages: Sequence[dict]) -> str:
    return "\n\n".join(f"{m['role'].upper()}: {m['content']}" for m in messages)


class RewardModelScorer:
    """Any HF `AutoModelForSequenceClassification`: the conversation + the reply through its chat template."""

    def __init__(self, model: str, max_length: int = 1024, batch_size: int = 8, logit_index: int = 0):
        self._pm = PMScorer(model, max_length, batch_size, logit_index)

    def _text(self, messages: Sequence[dict], reply: str) -> str:
        tok = self._pm.tok
        msgs = list(messages) + [{"role": "assistant", "content": reply}]
        if getattr(tok, "chat_template", None):
            try:
                return tok.apply_chat_template(msgs, tokenize=False)
            except Exception:
                pass
        return conversation_text(msgs)

    def score(self, conversations: Sequence[Sequence[dict]], replies: Sequence[str]) -> list[float]:
        return self._pm.score_texts([self._text(c, strip_reasoning(r)) for c, r in zip(conversations, replies)])


@lru_cache(maxsize=None)
def judge_template(mode: str) -> str:
    """The judge scorer's request for `mode` (rating | yes_no): `data/rubrics/safety_<mode>.txt`, with {conversation}
    and {reply} slots."""
    if mode not in JUDGE_MODES:
        raise ValueError(f"unknown judge mode {mode!r}; modes: {', '.join(JUDGE_MODES)}")
    return (resources.files("rhlab.train") / "data" / "rubrics" / f"safety_{mode}.txt").read_text(encoding="utf-8")


class JudgeScorer:
    """A causal LM asked to rate the reply; the score is read off its next-token distribution (no sampling).

    rating: expected value of the digits 1..9 (renormalised over those nine tokens), mapped to [0, 1] by (E−1)/8.
    yes_no: P(Yes) / (P(Yes) + P(No)), each summed over the spellings' first tokens (" Yes", "Yes", "yes", ...).
    """

    def __init__(self, model: str, mode: str = "rating", max_length: int = 1024, batch_size: int = 8):
        import torch

        from rhlab.models import load_model_and_tokenizer

        judge_template(mode)  # an unknown mode fails here, before the model loads
        self.model, self.tok = load_model_and_tokenizer(model, padding_side="left")
        self.model.eval()
        self.mode, self.max_length, self.batch_size = mode, max_length, batch_size
        self._lock = threading.Lock()
        if mode == "rating":
            ids = [self._single_token(str(d)) for d in range(1, 10)]
            self.groups = [[i] for i in ids]
            self.values = torch.arange(1, 10, dtype=torch.float32)
        else:
            yes = self._variants(["Yes", " Yes", "yes", " yes"])
            no = self._variants(["No", " No", "no", " no"])
            shared = set(yes) & set(no)  # e.g. a bare space token in a toy tokenizer
            yes, no = [t for t in yes if t not in shared], [t for t in no if t not in shared]
            if not yes or not no:
                raise ValueError(f"judge {model!r}: its tokenizer cannot tell Yes from No by their first token")
            self.groups = [yes, no]

    def _single_token(self, text: str) -> int:
        ids = self.tok.encode(text, add_special_tokens=False)
        if len(ids) != 1:
            raise ValueError(f"judge tokenizer splits {text!r} into {len(ids)} tokens; use judge_mode=yes_no")
        return ids[0]

    def _variants(self, words: list[str]) -> list[int]:
        """First token of each spelling (the whole word in any real tokenizer; a prefix in a toy one)."""
        out = []
        for w in words:
            ids = self.tok.encode(w, add_special_tokens=False)
            if ids and ids[0] not in out:
                out.append(ids[0])
        return out

    def _prompt(self, messages: Sequence[dict], reply: str) -> str:
        user = judge_template(self.mode).format(conversation=conversation_text(messages), reply=reply.strip() or "(empty reply)")
        if getattr(self.tok, "chat_template", None):
            return self.tok.apply_chat_template([{"role": "user", "content": user}], tokenize=False,
                                                add_generation_prompt=True)
        return user + "\n\nAnswer: "

    def score(self, conversations: Sequence[Sequence[dict]], replies: Sequence[str]) -> list[float]:
        import torch

        texts = [self._prompt(c, strip_reasoning(r)) for c, r in zip(conversations, replies)]
        out: list[float] = []
        with self._lock, torch.inference_mode():
            for i in range(0, len(texts), self.batch_size):
                self.tok.truncation_side = "left"  # keep the question at the end
                enc = self.tok(texts[i:i + self.batch_size], return_tensors="pt", padding=True, truncation=True,
                               max_length=self.max_length, add_special_tokens=False)
                logits = self.model(**enc).logits[:, -1, :].float()
                probs = torch.softmax(logits, dim=-1)
                mass = torch.stack([probs[:, g].sum(dim=1) for g in self.groups], dim=1)
                mass = mass / mass.sum(dim=1, keepdim=True).clamp_min(1e-12)
                if self.mode == "rating":
                    exp = (mass * self.values).sum(dim=1)
                    out.extend(float((e - 1.0) / 8.0) for e in exp)
                else:
                    out.extend(float(x) for x in mass[:, 0])
        return out


def build_scorer(cfg: SafetyScorerConfig):
    if cfg.kind == "reward_model":
        return RewardModelScorer(cfg.model, cfg.max_length, cfg.batch_size, cfg.logit_index)
    return JudgeScorer(cfg.model, cfg.judge_mode, cfg.max_length, cfg.batch_size)


__all__ = ["conversation_text", "RewardModelScorer", "JudgeScorer", "judge_template", "build_scorer"]
