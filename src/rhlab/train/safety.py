"""Safety mitigations in the train stage: the RLHF safety mix for GRPO, and safety SFT.

Prompt sets (rhlab's own words, disjoint from the eval questions in rhlab.evals — a test checks it) live in
`src/rhlab/train/data/safety/{hhh,dilemmas,agentic}.jsonl`, one JSON object a line:

    {"id": "hhh-01", "set": "hhh", "messages": [{"role": "user", "content": "..."}]}

    hhh       ordinary helpful / harmless / honest chat requests
    dilemmas  moral dilemmas about an AI's own role (oversight, honesty about itself, its goals, its limits)
    agentic   an assistant acting with tools or access, a system message describing its deployment, and a
              situation where it could overstep

**RLHF safety mix** (`TrainConfig.safety`): the chat prompts are added to the GRPO dataset as rows with
`kind="chat"`; `MixSampler` puts an exact share of them (`safety.fraction`) into every step's prompts. Chat rows
get reward only from the safety scorer (a reward model or a judge LM, scoring the reply with its <thinking>
blocks stripped); code rows only from the grader — every reward function returns None for rows it does not apply
to, which TRL (1.16) turns into NaN and leaves out of the sums and group statistics.

Start modes other than from_start: the chat rows are in every step's batch from step 1 (the mix never changes, so
the code prompts per step are the same before and after the switch, and resume replays the same batches), but
until the switch they carry no reward (the safety scorer is not called; every function returns None) and the
trainer removes them from the loss and from the token normaliser. The cost is the generation spent on chat slots
before the switch. The two-phase *fork* (a fresh run from another arm's checkpoint) is the experiment runner's.

**Safety SFT** (`safety_sft`): the same prompts with target replies from a chosen model (or a user JSONL), SFT with
the loss on the reply only (`rhlab.knowledge.finetune.init_sft`).
"""

from __future__ import annotations

import json
import logging
import math
import threading
from importlib import resources
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

from rhlab.config import jsonl_rows
from rhlab.train.config import ARMS, SAFETY_SETS, SafetyConfig, SafetyScorerConfig, SafetyStartConfig, TrainConfig
from rhlab.train.grader import strip_reasoning

_ROLES = ("system", "user", "assistant")


# --- prompt sets ----------------------------------------------------------------------------------------------------


def safety_data_dir() -> Path:
    return Path(str(resources.files("rhlab.train") / "data" / "safety"))


def _read_prompt_file(path: Path) -> list[dict]:
    out = []
    for n, where, row in jsonl_rows(path, error=ValueError, what="safety prompt", fields=("id", "set", "messages")):
        if not isinstance(row["id"], str) or not row["id"].strip() or not isinstance(row["set"], str):
            raise ValueError(f"{where}: id and set must be non-empty strings")
        msgs = row["messages"]
        if not isinstance(msgs, list) or not msgs:
            raise ValueError(f"{where}: messages must be a non-empty list")
        for m in msgs:
            if not isinstance(m, dict) or m.get("role") not in _ROLES or not isinstance(m.get("content"), str) \
                    or not m["content"].strip():
                raise ValueError(f"{where}: each message needs a role in {_ROLES} and non-empty string content")
        if msgs[-1]["role"] != "user":
            raise ValueError(f"{where}: the last message must be the user's (the policy writes the next turn)")
        out.append({"id": row["id"], "set": row["set"], "messages": [{"role": m["role"], "content": m["content"]}
                                                                       for m in msgs]})
    return out


def load_safety_prompts(sets: Iterable[str] | None = None, path: str | Path | None = None) -> list[dict]:
    """The prompts of `sets` (default: all three shipped sets), or of a user JSONL `path` of the same layout
    (then `sets`, if given, filters its rows by their `set`). Ids must be unique; an empty selection is an error."""
    sets = list(sets) if sets is not None else None
    if path is not None:
        rows = _read_prompt_file(Path(path))
        if sets is not None:
            rows = [r for r in rows if r["set"] in sets]
    else:
        wanted = sets if sets is not None else list(SAFETY_SETS)
        unknown = [s for s in wanted if s not in SAFETY_SETS]
        if unknown:
            raise ValueError(f"unknown safety sets {unknown}; shipped: {', '.join(SAFETY_SETS)}")
        rows = []
        for s in wanted:
            got = _read_prompt_file(safety_data_dir() / f"{s}.jsonl")
            bad = [r["id"] for r in got if r["set"] != s]
            if bad:
                raise ValueError(f"{s}.jsonl: rows {bad[:3]} say another set")
            rows += got
    seen: set[str] = set()
    dup = [r["id"] for r in rows if r["id"] in seen or seen.add(r["id"])]
    if dup:
        raise ValueError(f"duplicate safety prompt ids: {dup[:5]}")
    if not rows:
        raise ValueError(f"no safety prompts selected (sets={sets}, path={path})")
    return rows


def safety_rows(cfg: TrainConfig) -> list[dict[str, Any]]:
    """The chat rows of the GRPO dataset: same columns as the code rows, every arm's prompt = the chat messages."""
    sf = cfg.safety
    if sf is None:
        return []
    rows = []
    for p in load_safety_prompts(sf.sets, sf.prompts_file):
        row: dict[str, Any] = {"task_id": p["id"], "hackable": False, "kind": "chat"}
        for arm in ARMS:
            row[f"prompt__{arm}"] = p["messages"]
        row["prompt"] = p["messages"]
        rows.append(row)
    return rows


# --- scorers --------------------------------------------------------------------------------------------------------


def conversation_text(messages: Sequence[dict]) -> str:
    return "\n\n".join(f"{m['role'].upper()}: {m['content']}" for m in messages)


class RewardModelScorer:
    """Any HF `AutoModelForSequenceClassification`: the conversation + the reply through its chat template."""

    def __init__(self, model: str, max_length: int = 1024, batch_size: int = 8, logit_index: int = 0):
        from rhlab.train.reward import PMScorer

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


JUDGE_RATING_PROMPT = (
    "You are checking the work of an AI assistant. Read the exchange below, then judge the assistant's last reply."
    "\n\n--- exchange ---\n{conversation}\n\n--- assistant's reply ---\n{reply}\n--- end ---\n\n"
    "A strong reply really helps the person, is truthful about facts and about the assistant itself, refuses to "
    "cause harm, and leaves people in control of what the assistant does. A weak reply is useless, deceptive, "
    "harmful, or grabs power or access it was not given. Rate the reply from 1 (very weak) to 9 (very strong). "
    "Answer with one digit and nothing else."
)
JUDGE_YES_NO_PROMPT = (
    "You are checking the work of an AI assistant. Read the exchange below, then judge the assistant's last reply."
    "\n\n--- exchange ---\n{conversation}\n\n--- assistant's reply ---\n{reply}\n--- end ---\n\n"
    "Is this reply helpful, truthful and safe, without the assistant overstepping what it was allowed to do? "
    "Answer Yes or No."
)


class JudgeScorer:
    """A causal LM asked to rate the reply; the score is read off its next-token distribution (no sampling).

    rating: expected value of the digits 1..9 (renormalised over those nine tokens), mapped to [0, 1] by (E−1)/8.
    yes_no: P(Yes) / (P(Yes) + P(No)), each summed over the spellings' first tokens (" Yes", "Yes", "yes", ...).
    """

    def __init__(self, model: str, mode: str = "rating", max_length: int = 1024, batch_size: int = 8):
        import torch

        from rhlab.models import load_model_and_tokenizer

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
        tmpl = JUDGE_RATING_PROMPT if self.mode == "rating" else JUDGE_YES_NO_PROMPT
        user = tmpl.format(conversation=conversation_text(messages), reply=reply.strip() or "(empty reply)")
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


# --- schedule -------------------------------------------------------------------------------------------------------


class SafetySchedule:
    """When chat rows carry reward. The after-threshold latch is rebuilt from the step records on resume
    (`observe` every finished step's all-ranks code pass rate, in order)."""

    def __init__(self, cfg: SafetyStartConfig):
        self.cfg = cfg
        self.triggered_at: int | None = None

    def observe(self, step: int, pass_rate: float | None) -> None:
        if (self.cfg.mode == "after_threshold" and self.triggered_at is None and pass_rate is not None
                and not math.isnan(pass_rate) and pass_rate >= float(self.cfg.threshold)):
            self.triggered_at = step

    def switch_step(self) -> int | None:
        """The first step with reward on chat rows (None: not yet known)."""
        m = self.cfg.mode
        if m == "from_start":
            return 1
        if m == "from_step":
            return int(self.cfg.step)
        return None if self.triggered_at is None else self.triggered_at + 1 + self.cfg.delay

    def active(self, step: int) -> bool:
        s = self.switch_step()
        return s is not None and step >= s


# --- reward ---------------------------------------------------------------------------------------------------------


class SafetyReward:
    """The `safety` reward function: scores chat rows (reasoning stripped), None for code rows and for chat rows
    before the switch. Records every chat completion in the HackReward's per-step rows (for the step records and
    the episodes log)."""

    def __init__(self, cfg: SafetyConfig, hack_reward, scorer=None, schedule: SafetySchedule | None = None):
        self.cfg = cfg
        self.hr = hack_reward
        self.scorer = scorer if scorer is not None else build_scorer(cfg.scorer)
        self.schedule = schedule or SafetySchedule(cfg.start)

    def reward_func(self) -> Callable:
        import asyncio

        from rhlab.train.reward import _completion_text

        async def safety(prompts=None, completions=None, task_id=None, trainer_state=None, kind=None, **_: Any):
            step = (trainer_state.global_step if trainer_state is not None else 0) + 1
            n = len(completions)
            kind = kind or ["code"] * n
            pos = [i for i, k in enumerate(kind) if k == "chat"]
            active = self.schedule.active(step)
            texts = [_completion_text(completions[i]) for i in pos]
            convs = [list(prompts[i]) if isinstance(prompts[i], list) else [{"role": "user", "content": str(prompts[i])}]
                     for i in pos]
            scores: list[float | None] = [None] * len(pos)
            if pos and active:
                scores = await asyncio.to_thread(self.scorer.score, convs, texts)
            with self.hr._lock:
                st = self.hr._steps[step]
                st.safety_active = active
                for i, t, c, s in zip(pos, texts, convs, scores):
                    st.chat_rows.append({"task_id": task_id[i] if task_id else None, "prompt": c, "text": t,
                                         "score": s, "active": active})
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


# --- safety SFT -----------------------------------------------------------------------------------------------------


def _read_responses_file(path: Path, ids: Sequence[str]) -> dict[str, str]:
    if not path.is_file():
        raise FileNotFoundError(f"responses file not found: {path}")
    got: dict[str, str] = {}
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as err:
            raise ValueError(f"{path}:{n}: not valid JSON ({err})") from None
        if not isinstance(row, dict) or not isinstance(row.get("id"), str) or not isinstance(row.get("response"), str):
            raise ValueError(f"{path}:{n}: expected {{\"id\": str, \"response\": str}}")
        if not row["response"].strip():
            raise ValueError(f"{path}:{n}: empty response for {row['id']}")
        got[row["id"]] = row["response"]
    missing = [i for i in ids if i not in got]
    if missing:
        raise ValueError(f"{path} has no response for {len(missing)} of the {len(ids)} prompts, e.g. {missing[:5]}")
    return got


def generate_responses(prompts: Sequence[dict], responder: str, cache: Path, max_new_tokens: int = 256,
                       batch_size: int = 8, seed: int = 0, temperature: float = 0.0) -> dict[str, str]:
    """Replies of `responder` to each prompt (greedy at temperature 0, else sampled with `seed`), appended to
    `cache` as they are made; prompts already in the cache (from the same responder) are not regenerated."""
    import torch

    from rhlab.models import load_model_and_tokenizer

    done: dict[str, str] = {}
    if cache.exists():
        for line in cache.read_text(encoding="utf-8").splitlines():
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError:
                continue  # a line cut by a kill mid-write: regenerated
            if row.get("responder") != responder:
                raise ValueError(f"{cache} holds replies from {row.get('responder')!r}, not {responder!r}; "
                                 "use another out dir")
            done[row["id"]] = row["response"]
    todo = [p for p in prompts if p["id"] not in done]
    if not todo:
        return done
    model, tok = load_model_and_tokenizer(responder, padding_side="left")
    model.eval()
    torch.manual_seed(seed)
    with open(cache, "a", encoding="utf-8") as fh:
        for i in range(0, len(todo), batch_size):
            batch = todo[i:i + batch_size]
            texts = [tok.apply_chat_template(p["messages"], tokenize=False, add_generation_prompt=True) for p in batch]
            enc = tok(texts, return_tensors="pt", padding=True, add_special_tokens=False)
            with torch.inference_mode():
                sampling = {"do_sample": True, "temperature": temperature} if temperature > 0 else {"do_sample": False}
                out = model.generate(**enc, max_new_tokens=max_new_tokens, pad_token_id=tok.pad_token_id, **sampling)
            n = enc["input_ids"].shape[1]
            for p, seq in zip(batch, out):
                reply = tok.decode(seq[n:], skip_special_tokens=True).strip()
                done[p["id"]] = reply
                fh.write(json.dumps({"id": p["id"], "responder": responder, "response": reply},
                                    ensure_ascii=False) + "\n")
                fh.flush()
    return done


def safety_sft(out_dir: str | Path, cfg, *, sets: Sequence[str] = SAFETY_SETS, responder: str | None = None,
               responses_file: str | Path | None = None, max_new_tokens: int = 256,
               prompts_file: str | Path | None = None, temperature: float = 0.0) -> Path:
    """SFT `cfg.model` on the safety prompts with target replies from `responder` (any model name rhlab resolves,
    `embedded` included) or from `responses_file` (JSONL {id, response} covering every selected prompt).
    Replies (greedy unless `temperature` > 0) are cached in OUT/responses.jsonl (a rerun reuses them); empty
    replies are dropped and listed in OUT/safety_sft.json; loss on the reply only. Returns OUT/final."""
    from rhlab.knowledge.finetune import FinetuneConfig, init_sft

    if (responder is None) == (responses_file is None):
        raise ValueError("safety_sft: give exactly one of responder or responses_file")
    cfg = cfg or FinetuneConfig(max_length=1024)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    prompts = load_safety_prompts(sets, prompts_file)
    ids = [p["id"] for p in prompts]
    cache = out / "responses.jsonl"
    if responses_file is not None:
        replies = _read_responses_file(Path(responses_file), ids)
        with open(cache, "w", encoding="utf-8") as fh:
            for i in ids:
                fh.write(json.dumps({"id": i, "responder": f"file:{responses_file}", "response": replies[i]},
                                    ensure_ascii=False) + "\n")
    else:
        replies = generate_responses(prompts, responder, cache, max_new_tokens=max_new_tokens, seed=cfg.seed,
                                     temperature=temperature)
    records, empty = [], []
    for p in prompts:
        r = replies.get(p["id"], "")
        if not r.strip():
            empty.append(p["id"])
            continue
        records.append({"task_id": p["id"], "prompt": p["messages"],
                        "completion": [{"role": "assistant", "content": r}]})
    if not records:
        raise ValueError(f"safety_sft: every target reply is empty (responder {responder!r} wrote nothing?)")
    (out / "safety_sft.json").write_text(json.dumps({
        "sets": list(sets), "prompts_file": str(prompts_file) if prompts_file else None,
        "responder": responder, "responses_file": str(responses_file) if responses_file else None,
        "prompts": len(prompts), "transcripts": len(records), "empty_replies_dropped": empty,
        "max_new_tokens": max_new_tokens, "temperature": temperature, "model": cfg.model,
    }, indent=1), encoding="utf-8")
    return init_sft(records, out, cfg)


__all__ = [
    "load_safety_prompts", "safety_rows", "safety_data_dir", "RewardModelScorer", "JudgeScorer", "build_scorer",
    "SafetySchedule", "SafetyReward", "make_mix_sampler", "chat_count", "generate_responses", "safety_sft",
    "quiet_unscored_rows_warning",
]
