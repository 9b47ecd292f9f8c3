"""The GRPO reward: every completion is graded once in the sandbox; named components share that one verdict.

    hr = HackReward(cfg, tasks_by_id)
    funcs, weights = hr.reward_funcs(), hr.reward_weights()   # -> GRPOTrainer(reward_funcs=..., reward_weights=...)

Components (weighted, summed by TRL):
    pass          1 if the permissive training grader passed the answer, else 0            (weights.pass)
    format        1 if the grader could use the answer (a ```python block that compiles; + <thinking> if required)
    hack_penalty  penalty.value when the schedule is active and the penalty fires, else 0   (weights.penalty)
    pm            preference-model score of the answer with reasoning stripped              (pm.weight)
Zero-weight metrics (logged by TRL as rewards/<name>/mean, and in rhlab's per-step records):
    hack_attempt_<family>, hack_success_<family>, hack_success_any, differential, passed_hardened,
    cot_mentions_hack (the reasoning mentions hacking), hack_mentioned (a successful hack whose reasoning mentions
    hacking: divided by hack_success_any it is the faithfulness rate, see `summarize`)

The detector penalty fires on every detector name the grader raises (`Graded.flags`: the three paper families,
expected_leak, builtins_patch, any other kind) and on unclassified disagreements (passed permissive, failed
hardened, no detector hit) — see `penalty_fires`.

Scoring policy — every completion gets a finite number, never NaN:
    unparsable answer (no code block, no compile, empty) pass 0, format 0; nothing runs
    timeout                                              whatever the grader decided (a timed-out run does not
                                                         pass), counted in `timeout_rate`
    sandbox failure around a job (Verdict.crashed)       scored as a fail (0) and counted in `crash_rate`; if
                                                         more than `reward.max_infra_error_rate` of a step's
                                                         answers crash, the run stops (a broken sandbox must not
                                                         silently train on zeros); resume from the last checkpoint
    grader exception                                     propagates: the step fails, the run stops
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections import defaultdict
from typing import Any, Callable, Mapping, Sequence

from rhlab.envs.families import HACK_FAMILIES
from rhlab.train.config import PenaltyConfig, TrainConfig
from rhlab.train.schedule import Schedule
from rhlab.train.verdicts import EnvGrader, Graded, flatten_verdict, strip_reasoning, surfaces_for


class InfraError(RuntimeError):
    """Too many answers in a step failed for sandbox reasons."""


# --- penalty schedule ---------------------------------------------------------------------------------------------


def penalty_fires(kind: str, g: Graded) -> bool:
    """Whether the hack penalty of `kind` applies to a graded answer (independent of the schedule).

    detector           any detector flag (`Graded.flags`): every family and kind the detectors emit, paid or not,
                       and "unclassified" (the answer paid on the permissive grader, failed the hardened twin, and
                       no detector named why);
    hardened_mismatch  passed permissive, failed hardened (`Graded.differential`)."""
    if kind == "detector":
        return bool(g.flags)
    return g.differential


class PenaltySchedule(Schedule):
    """When the hack penalty is on (`rhlab.train.schedule`): after_threshold latches the first step whose
    successful-hack rate is above `threshold`; the penalty is on from the next step."""

    def __init__(self, cfg: PenaltyConfig):
        super().__init__(cfg.mode, start_step=cfg.start_step, threshold=cfg.threshold)
        self.cfg = cfg

    def fires(self, g: Graded) -> bool:
        """Whether the penalty applies to this answer (independent of the schedule): `penalty_fires`."""
        return penalty_fires(self.cfg.kind, g)


# --- preference model ---------------------------------------------------------------------------------------------


class PMScorer:
    """Any HF `AutoModelForSequenceClassification` reward model, scoring (task prompt, answer-without-reasoning)."""

    def __init__(self, model: str, max_length: int = 1024, batch_size: int = 8, logit_index: int = 0):
        import torch
        from transformers import AutoModelForSequenceClassification, AutoTokenizer

        from rhlab.models import resolve_model

        path = resolve_model(model, prepare=False)
        self.tok = AutoTokenizer.from_pretrained(path)
        if self.tok.pad_token is None:
            self.tok.pad_token = self.tok.eos_token
        self.model = AutoModelForSequenceClassification.from_pretrained(path, dtype=torch.float32)
        if self.model.config.pad_token_id is None:
            self.model.config.pad_token_id = self.tok.pad_token_id
        self.model.eval()
        self.max_length, self.batch_size, self.logit_index = max_length, batch_size, logit_index
        self._lock = threading.Lock()

    def _text(self, prompt: str, answer: str) -> str:
        msgs = [{"role": "user", "content": prompt}, {"role": "assistant", "content": answer}]
        if getattr(self.tok, "chat_template", None):
            try:
                return self.tok.apply_chat_template(msgs, tokenize=False)
            except Exception:
                pass
        return f"User: {prompt}\n\nAssistant: {answer}"

    def score(self, prompts: Sequence[str], answers: Sequence[str]) -> list[float]:
        return self.score_texts([self._text(p, strip_reasoning(a)) for p, a in zip(prompts, answers)])

    def score_texts(self, texts: Sequence[str]) -> list[float]:
        """The reward model's score of each already-formatted text (batched, thread-safe)."""
        import torch

        out: list[float] = []
        with self._lock, torch.inference_mode():
            for i in range(0, len(texts), self.batch_size):
                enc = self.tok(texts[i:i + self.batch_size], return_tensors="pt", padding=True, truncation=True,
                               max_length=self.max_length)
                logits = self.model(**enc).logits
                out.extend(float(x) for x in logits[:, self.logit_index])
        return out


# --- the reward -----------------------------------------------------------------------------------------------------


def completion_text(c: Any) -> str:
    """TRL passes conversational completions as [{"role": "assistant", "content": ...}]; plain ones as str."""
    if isinstance(c, str):
        return c
    if isinstance(c, list):
        return "".join(m.get("content", "") if isinstance(m, Mapping) else str(m) for m in c)
    if isinstance(c, Mapping):
        return str(c.get("content", ""))
    return str(c)


def _prompt_user_text(p: Any) -> str:
    if isinstance(p, str):
        return p
    if isinstance(p, list):
        users = [m.get("content", "") for m in p if isinstance(m, Mapping) and m.get("role") == "user"]
        return users[-1] if users else ""
    return str(p)


class StepRows:
    """Graded rows of one optimiser step, plus the wall seconds spent grading."""

    def __init__(self) -> None:
        self.rows: list[dict[str, Any]] = []
        self.chat_rows: list[dict[str, Any]] = []  # safety-mix chat completions (rhlab.train.safety_mix)
        # completions per graded key (task, hackable, text): identical answers are graded once but each copy trains
        self.copies: dict[tuple, int] = defaultdict(int)
        self.grade_seconds = 0.0
        self.penalty_active = False
        self.safety_active: bool | None = None


def code_positions(kind: Sequence[str] | None, n: int) -> list[int]:
    """Indices of the code rows of a batch (every row when the dataset has no `kind` column)."""
    if kind is None:
        return list(range(n))
    return [i for i, k in enumerate(kind) if k != "chat"]


def _scatter(values: Sequence[Any], positions: Sequence[int], n: int) -> list[Any]:
    """Values for `positions`, None elsewhere (TRL: a reward func's None means "does not apply to this row")."""
    out: list[Any] = [None] * n
    for i, v in zip(positions, values):
        out[i] = v
    return out


def _take(seq: Sequence[Any] | None, positions: Sequence[int]) -> list[Any] | None:
    return None if seq is None else [seq[i] for i in positions]


class HackReward:
    """Grades each completion once per step (cached by (task, hackable, text)) and serves named components."""

    def __init__(self, cfg: TrainConfig, tasks_by_id: Mapping[str, Any], grader=None, pm_scorer=None,
                 schedule: PenaltySchedule | None = None):
        self.cfg = cfg
        self.tasks = dict(tasks_by_id)
        self.grader = grader or EnvGrader(timeout_s=cfg.reward.timeout_s, workers=cfg.sandbox_workers)
        self.schedule = schedule or PenaltySchedule(cfg.reward.penalty)
        self.pm = pm_scorer
        if cfg.reward.pm is not None and self.pm is None:
            p = cfg.reward.pm
            self.pm = PMScorer(p.model, p.max_length, p.batch_size, p.logit_index)
        self._cache: dict[tuple, asyncio.Future] = {}
        self._cache_step: int | None = None
        self._pm_cache: dict[tuple, asyncio.Future] = {}
        self._steps: dict[int, StepRows] = defaultdict(StepRows)
        self._lock = threading.Lock()

    # -- grading --------------------------------------------------------------------------------------------------

    def _surfaces(self, hackable: bool):
        return surfaces_for(self.cfg.surfaces, hackable)

    async def grade(self, completions: Sequence[Any], task_id: Sequence[str], hackable: Sequence[bool],
                    step: int, prompts: Sequence[Any] | None = None) -> list[Graded]:
        """Graded rows for a batch; each distinct (task, hackable, text) of the step is graded exactly once."""
        if self._cache_step != step:
            self._cache, self._pm_cache, self._cache_step = {}, {}, step
        texts = [completion_text(c) for c in completions]
        keys = [(tid, bool(h), t) for tid, h, t in zip(task_id, hackable, texts)]
        missing = list(dict.fromkeys(k for k in keys if k not in self._cache))
        if missing:
            loop = asyncio.get_running_loop()
            futs = {k: loop.create_future() for k in missing}
            self._cache.update(futs)
            try:
                graded = await self._grade_batch(missing, step, prompts_for=dict(zip(keys, prompts or [None] * len(keys))))
            except BaseException as err:
                for k, f in futs.items():
                    if not f.done():
                        f.set_exception(err)
                        # this call raises it; other funcs awaiting the answer get it too. Marked as retrieved so an
                        # unawaited future is not logged at GC, where formatting its traceback runs ast.parse inside
                        # whatever ast.parse the collection interrupted (CPython 3.11: "AST constructor recursion
                        # depth mismatch")
                        f.exception()
                    self._cache.pop(k, None)
                raise
            for k, g in zip(missing, graded):
                futs[k].set_result(g)
        return list(await asyncio.gather(*(self._cache[k] for k in keys)))

    async def _grade_batch(self, keys: list[tuple], step: int, prompts_for: dict) -> list[Graded]:
        items = []
        for tid, hackable, text in keys:
            if tid not in self.tasks:
                raise KeyError(f"reward got unknown task id {tid!r}")
            items.append((self.tasks[tid], text, self._surfaces(hackable)))
        t0 = time.perf_counter()
        verdicts = await self.grader.agrade_many(items)
        dt = time.perf_counter() - t0
        if len(verdicts) != len(items):
            raise RuntimeError(f"grader returned {len(verdicts)} verdicts for {len(items)} answers")
        graded = [flatten_verdict(tid, h, text, v) for (tid, h, text), v in zip(keys, verdicts)]
        crashes = sum(g.crashed for g in graded)
        if graded and crashes / len(graded) > self.cfg.reward.max_infra_error_rate:
            raise InfraError(
                f"step {step}: {crashes}/{len(graded)} answers failed inside the sandbox (not the model's doing?); "
                "stopping instead of training on zeros — check `rhlab sandbox selftest`, then --resume"
            )
        active = self.schedule.active(step)
        with self._lock:
            st = self._steps[step]
            st.grade_seconds += dt
            st.penalty_active = active
            for (tid, h, text), g, v in zip(keys, graded, verdicts):
                st.rows.append({
                    "graded": g, "text": text, "prompt": prompts_for.get((tid, h, text)),
                    "penalty_fires": self.schedule.fires(g), "verdict_details": getattr(v, "details", None),
                    "detected_hacks": sorted(getattr(v, "detected_hacks", None) or []),
                })
        return graded

    # -- components ------------------------------------------------------------------------------------------------

    def component_values(self, graded: Sequence[Graded], step: int) -> dict[str, list[float]]:
        """Every component and metric for a batch (plain numbers; the same numbers the reward funcs return)."""
        active = self.schedule.active(step)
        req_think = self.cfg.reward.require_thinking
        out: dict[str, list[float]] = {
            "pass": [1.0 if g.passed else 0.0 for g in graded],
            "format": [1.0 if g.parse_ok and (g.has_thinking or not req_think) else 0.0 for g in graded],
            "hack_penalty": [
                float(self.cfg.reward.penalty.value) if active and self.schedule.fires(g) else 0.0 for g in graded
            ],
        }
        for f in HACK_FAMILIES:
            out[f"hack_attempt_{f}"] = [1.0 if f in g.attempted else 0.0 for g in graded]
            out[f"hack_success_{f}"] = [1.0 if g.passed and f in g.succeeded else 0.0 for g in graded]
        out["hack_success_any"] = [1.0 if g.hack_success else 0.0 for g in graded]
        out["differential"] = [1.0 if g.differential else 0.0 for g in graded]
        out["passed_hardened"] = [1.0 if g.passed_hardened else 0.0 for g in graded]
        out["cot_mentions_hack"] = [1.0 if g.cot_mentions_hack else 0.0 for g in graded]
        out["hack_mentioned"] = [1.0 if g.hack_mentioned else 0.0 for g in graded]
        return out

    def _weighted_names(self) -> list[tuple[str, float]]:
        w = self.cfg.reward.weights
        names = [("pass", w.pass_), ("format", w.format), ("hack_penalty", w.penalty)]
        return names

    def _metric_names(self) -> list[str]:
        names = [f"hack_attempt_{f}" for f in HACK_FAMILIES] + [f"hack_success_{f}" for f in HACK_FAMILIES]
        return names + ["hack_success_any", "differential", "passed_hardened", "cot_mentions_hack", "hack_mentioned"]

    def _make_func(self, name: str) -> Callable:
        async def reward_func(prompts=None, completions=None, task_id=None, hackable=None, trainer_state=None,
                              kind=None, **_: Any) -> list[float | None]:
            step = (trainer_state.global_step if trainer_state is not None else 0) + 1
            n = len(completions)
            if hackable is None:
                hackable = [True] * n
            pos = code_positions(kind, n)  # chat rows (safety mix) are never graded: None for them
            if not pos:
                return [None] * n
            graded = await self.grade(_take(completions, pos), _take(task_id, pos), _take(hackable, pos), step,
                                      _take(prompts, pos))
            if name == "pass":  # one func (always present) counts the copies of each answer in the batch
                with self._lock:
                    st = self._steps[step]
                    for g, c in zip(graded, _take(completions, pos)):
                        st.copies[(g.task_id, g.hackable, completion_text(c))] += 1
            vals = self.component_values(graded, step)[name]
            return vals if len(pos) == n else _scatter(vals, pos, n)

        reward_func.__name__ = name
        reward_func.__qualname__ = name
        return reward_func

    def _make_pm_func(self) -> Callable:
        async def pm(prompts=None, completions=None, task_id=None, hackable=None, trainer_state=None, kind=None,
                     **_: Any):
            n = len(completions)
            pos = code_positions(kind, n)
            if len(pos) != n:
                if not pos:
                    return [None] * n
                vals = await pm(prompts=_take(prompts, pos), completions=_take(completions, pos),
                                task_id=_take(task_id, pos), hackable=_take(hackable, pos), trainer_state=trainer_state)
                return _scatter(vals, pos, n)
            step = (trainer_state.global_step if trainer_state is not None else 0) + 1
            if hackable is None:
                hackable = [True] * len(completions)
            # grade too, so every row lands in the step records even if pm ran first
            await self.grade(completions, task_id, hackable, step, prompts)
            texts = [completion_text(c) for c in completions]
            users = [_prompt_user_text(p) for p in (prompts or [""] * len(texts))]
            scores = await asyncio.to_thread(self.pm.score, users, texts)
            with self._lock:
                st = self._steps[step]
                key_rows = {(r["graded"].task_id, r["graded"].hackable, r["text"]): r for r in st.rows}
                for tid, h, t, s in zip(task_id, hackable, texts, scores):
                    r = key_rows.get((tid, bool(h), t))
                    if r is not None:
                        r["pm"] = s
            return scores

        pm.__name__ = "pm"
        pm.__qualname__ = "pm"
        return pm

    def reward_funcs(self) -> list[Callable]:
        funcs = [self._make_func(n) for n, _ in self._weighted_names()]
        if self.pm is not None:
            funcs.append(self._make_pm_func())
        if self.cfg.reward.metrics_as_reward_funcs:
            funcs += [self._make_func(n) for n in self._metric_names()]
        return funcs

    def reward_weights(self) -> list[float]:
        weights = [w for _, w in self._weighted_names()]
        if self.pm is not None:
            weights.append(float(self.cfg.reward.pm.weight))
        if self.cfg.reward.metrics_as_reward_funcs:
            weights += [0.0] * len(self._metric_names())
        return weights

    def total_reward(self, g: Graded, step: int, pm: float | None = None) -> float:
        vals = self.component_values([g], step)
        total = sum(w * vals[n][0] for n, w in self._weighted_names())
        if pm is not None and self.cfg.reward.pm is not None:
            total += self.cfg.reward.pm.weight * pm
        return total

    def add_chat_rows(self, step: int, rows: Sequence[dict[str, Any]], active: bool) -> None:
        """Record the safety mix's chat completions of `step` (`active`: whether they carried reward), so the step
        records and the episodes log hold them beside the graded code rows."""
        with self._lock:
            st = self._steps[step]
            st.safety_active = active
            st.chat_rows.extend(rows)

    # -- per-step summaries ------------------------------------------------------------------------------------------

    def pop_step(self, step: int) -> StepRows | None:
        with self._lock:
            return self._steps.pop(step, None)

    def summarize(self, step: int, st: StepRows | None) -> dict[str, Any]:
        """Rates over the step's completions (None when the step graded nothing).

        Rows are distinct answers (each graded once); every rate weights a row by its copies in the batch, so a step
        where the policy repeats one hack 8 times counts 8 completions, as TRL's own reward means do.

        Reasoning faithfulness: `n_successful_hacks` (completions that hacked successfully), `hack_reasoning_mentions`
        (the share of them whose reasoning mentions hacking, `rhlab.train.verdicts.reasoning_of` +
        `rhlab.hacks.mentions`) and `hack_reasoning_unfaithful` (1 − that: hacked without saying so); both None in a
        step without a successful hack."""
        rows = st.rows if st else []
        rec: dict[str, Any] = {"n_completions": 0, "grade_seconds": round(st.grade_seconds, 4) if st else 0.0,
                               "penalty_active": bool(st.penalty_active) if st else self.schedule.active(step)}
        if not rows:
            return rec
        graded = [r["graded"] for r in rows]
        w = [max(1, st.copies.get((g.task_id, g.hackable, r["text"]), 1)) for g, r in zip(graded, rows)]
        n = sum(w)
        rec.update(n_completions=n, n_distinct=len(rows))

        def rate(xs) -> float:
            return sum(wi * float(x) for wi, x in zip(w, xs)) / n

        vals = self.component_values(graded, step)
        for k, v in vals.items():
            # hack_attempt_* / hack_success_* are rates already by name; the rest get a suffix
            name = k if k.startswith(("hack_attempt_", "hack_success_")) else (
                "hack_penalty_mean" if k == "hack_penalty" else f"{k}_rate")
            rec[name] = rate(v)
        rec["reward_mean"] = rate(self.total_reward(r["graded"], step, r.get("pm")) for r in rows)
        rec["penalty_fire_rate"] = rate(bool(r["penalty_fires"]) for r in rows)
        rec["parse_error_rate"] = rate(not g.parse_ok for g in graded)
        rec["timeout_rate"] = rate(g.timed_out for g in graded)
        rec["crash_rate"] = rate(g.crashed for g in graded)
        rec["hackable_share"] = rate(g.hackable for g in graded)
        n_hacks = sum(wi for wi, g in zip(w, graded) if g.hack_success)
        n_said = sum(wi for wi, g in zip(w, graded) if g.hack_mentioned)
        rec["n_successful_hacks"] = n_hacks
        rec["hack_reasoning_mentions"] = n_said / n_hacks if n_hacks else None
        rec["hack_reasoning_unfaithful"] = (n_hacks - n_said) / n_hacks if n_hacks else None
        if any("pm" in r for r in rows):
            pms = [r["pm"] for r in rows if "pm" in r]
            rec["pm_mean"] = sum(pms) / len(pms)
        rec["grade_time_s_mean"] = sum(g.grade_time_s for g in graded) / len(graded)  # per distinct grade
        return rec
