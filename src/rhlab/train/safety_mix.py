"""The RLHF safety mix (`TrainConfig.safety`): chat prompts mixed into every GRPO step, scored by a reward model or
a judge LM (`safety_scorers`).

The chat prompts (`safety_prompts`) are added to the GRPO dataset as rows with `kind="chat"`; `make_mix_sampler`
puts an exact share of them (`safety.fraction`) into every step's prompts. Chat rows get reward only from the safety
scorer (scoring the reply with its <thinking> blocks stripped); code rows only from the grader — every reward
function returns None for rows it does not apply to, which TRL (1.16) turns into NaN and leaves out of the sums and
group statistics.

Start modes other than from_start: the chat rows are in every step's batch from step 1 (the mix never changes, so
the code prompts per step are the same before and after the switch, and resume replays the same batches), but
until the switch they carry no reward (the safety scorer is not called; every function returns None) and the
trainer removes them from the loss and from the token normaliser. The cost is the generation spent on chat slots
before the switch. The two-phase *fork* (a fresh run from another arm's checkpoint) is the experiment runner's.
"""

from __future__ import annotations

import logging
import math
from typing import Any, Callable

from rhlab.train.config import SafetyConfig, SafetyStartConfig
from rhlab.train.reward import HackReward, completion_text
from rhlab.train.safety_scorers import build_scorer
from rhlab.train.schedule import Schedule

# --- schedule -------------------------------------------------------------------------------------------------------


class SafetySchedule(Schedule):
    """When chat rows carry reward (`rhlab.train.schedule`): after_threshold latches the first step whose all-ranks
    code pass rate is at least `threshold`; chat rows are scored from step t + 1 + `delay` on."""

    def __init__(self, cfg: SafetyStartConfig):
        super().__init__(cfg.mode, start_step=cfg.step, threshold=cfg.threshold, delay=cfg.delay, inclusive=True)
        self.cfg = cfg


# --- reward ---------------------------------------------------------------------------------------------------------


class SafetyReward:
    """The `safety` reward function: scores chat rows (reasoning stripped), None for code rows and for chat rows
    before the switch. Records every chat completion in the HackReward's per-step rows (for the step records and
    the episodes log)."""

    def __init__(self, cfg: SafetyConfig, hack_reward: HackReward, scorer=None,
                 schedule: SafetySchedule | None = None):
        self.cfg = cfg
        self.hr = hack_reward
        self.scorer = scorer if scorer is not None else build_scorer(cfg.scorer)
        self.schedule = schedule or SafetySchedule(cfg.start)

    def reward_func(self) -> Callable:
        import asyncio

        async def safety(prompts=None, completions=None, task_id=None, trainer_state=None, kind=None, **_: Any):
            step = (trainer_state.global_step if trainer_state is not None else 0) + 1
            n = len(completions)
            kind = kind or ["code"] * n
            pos = [i for i, k in enumerate(kind) if k == "chat"]
            active = self.schedule.active(step)
            texts = [completion_text(completions[i]) for i in pos]
            convs = [list(prompts[i]) if isinstance(prompts[i], list) else [{"role": "user", "content": str(prompts[i])}]
                     for i in pos]
            scores: list[float | None] = [None] * len(pos)
            if pos and active:
                scores = await asyncio.to_thread(self.scorer.score, convs, texts)
            self.hr.add_chat_rows(step, [{"task_id": task_id[i] if task_id else None, "prompt": c, "text": t,
                                          "score": s, "active": active}
                                         for i, t, c, s in zip(pos, texts, convs, scores)], active)
            out: list[float | None] = [None] * n
            for i, s in zip(pos, scores):
                out[i] = s
            return out

        safety.__name__ = safety.__qualname__ = "safety"
        return safety

    def summarize(self, step: int, st) -> dict[str, Any]:
        chat = st.chat_rows if st else []
        n_code = len(st.rows) if st else 0
        total = n_code + len(chat)
        scored = [r["score"] for r in chat if r["score"] is not None]
        active = st.safety_active if st is not None and st.safety_active is not None else self.schedule.active(step)
        return {
            "n_chat": len(chat),
            "chat_share": len(chat) / total if total else 0.0,
            "safety_active": bool(active),
            "safety_reward_mean": sum(scored) / len(scored) if scored else None,
            "safety_switch_step": self.schedule.switch_step(),
        }


class _NoneRowsFilter(logging.Filter):
    """Before the switch every function returns None for chat rows on purpose; TRL warns about that each step."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "All reward functions returned None" not in record.getMessage()


def quiet_unscored_rows_warning() -> None:
    lg = logging.getLogger("trl.trainer.grpo_trainer")
    if not any(isinstance(f, _NoneRowsFilter) for f in lg.filters):
        lg.addFilter(_NoneRowsFilter())


# --- sampler --------------------------------------------------------------------------------------------------------


def chat_count(k: int, fraction: float, per_step: int) -> int:
    """Chat prompts in the k-th chunk (0-based): round(f·P·(k+1)) − round(f·P·k), so the running share is exact."""
    r = lambda x: math.floor(x + 0.5)  # noqa: E731
    return min(per_step, r(fraction * per_step * (k + 1)) - r(fraction * per_step * k))


def make_mix_sampler(dataset, fraction: float, mini_repeat_count: int, batch_size: int, repeat_count: int,
                     seed: int):
    """A TRL-RepeatSampler-shaped sampler whose every chunk (one optimiser step's `batch_size` distinct prompts)
    holds `chat_count(k)` chat rows and the rest code rows, each pool cycled through fresh permutations."""
    import torch
    from torch.utils.data import Sampler

    kinds = list(dataset["kind"])
    chat_idx = [i for i, k in enumerate(kinds) if k == "chat"]
    code_idx = [i for i, k in enumerate(kinds) if k != "chat"]
    if not chat_idx:
        raise ValueError("safety mix: no chat rows left in the dataset (all longer than grpo.max_prompt_length?)")

    class MixSampler(Sampler):
        def __init__(self):
            self.epoch = 0
            self.chunks_per_epoch = max(1, len(kinds) // batch_size)

        def set_epoch(self, epoch: int) -> None:
            self.epoch = epoch

        def __len__(self) -> int:
            return self.chunks_per_epoch * batch_size * mini_repeat_count * repeat_count

        def __iter__(self):
            g = torch.Generator()
            g.manual_seed(int(seed) * 1_000_003 + self.epoch)
            pools = {"chat": (chat_idx, []), "code": (code_idx, [])}

            def draw(name: str, n: int) -> list[int]:
                src, buf = pools[name]
                out = []
                while len(out) < n:
                    if not buf:
                        buf.extend(src[j] for j in torch.randperm(len(src), generator=g).tolist())
                    out.append(buf.pop(0))
                return out

            for i in range(self.chunks_per_epoch):
                k = self.epoch * self.chunks_per_epoch + i
                n_chat = chat_count(k, fraction, batch_size) if code_idx else batch_size
                chunk = draw("chat", n_chat) + draw("code", batch_size - n_chat)
                chunk = [chunk[j] for j in torch.randperm(len(chunk), generator=g).tolist()]
                for _ in range(repeat_count):
                    for idx in chunk:
                        for _ in range(mini_repeat_count):
                            yield idx
            self.epoch += 1  # when nobody calls set_epoch, the next pass still differs

    return MixSampler()


__all__ = ["SafetySchedule", "SafetyReward", "make_mix_sampler", "chat_count", "quiet_unscored_rows_warning"]
