"""`RunCallback`, the TRL/transformers callback of a GRPO run: per-step records (`records`), transcripts and
episodes, the penalty and safety latches, the progress bar, the forced final checkpoint and the checkpoint
completion marks (`checkpoints`). It also hands each step record's numbers to TRL's `report_to` loggers
(TensorBoard, W&B) as `rhlab/<field>`, which is why it must run before them (`trainer.train` orders it first).
"""

from __future__ import annotations

import random
import sys
import time
from pathlib import Path
from typing import Any

from transformers import TrainerCallback

from rhlab.rundir import RunDir
from rhlab.train.checkpoints import drop_superseded_resume_state, mark_complete
from rhlab.train.config import TrainConfig
from rhlab.train.onset import make_rule, onset_step
from rhlab.train.records import (
    CHECKPOINTS,
    EPISODES,
    STEPS,
    TRANSCRIPTS,
    chat_episode_record,
    episode_record,
    finite,
    reported_metrics,
    transcript_record,
)
from rhlab.train.reward import HackReward


class RunCallback(TrainerCallback):
    """Writes per-step records / transcripts / episodes, drives the progress bar and the penalty latch, forces a
    final checkpoint, and marks checkpoints complete."""

    def __init__(self, run: RunDir, cfg: TrainConfig, reward: HackReward, history: list[dict], start_step: int,
                 progress: bool, safety=None, rule=None):
        self.run, self.cfg, self.reward = run, cfg, reward
        # the run's onset rule (rhlab.train.onset); None: the fixed onset_threshold
        self.rule = rule if rule is not None else make_rule(cfg.onset_threshold)
        self.safety = safety  # rhlab.train.safety_mix.SafetyReward when the safety mix is on
        self.history = history
        self.last_step = start_step
        self.t_step = time.perf_counter()
        self.progress = None
        self._task = None
        self._show_progress = progress

    # -- lifecycle --
    def on_train_begin(self, args, state, control, **kw):
        if not state.is_world_process_zero:
            return
        # Only the main process writes records and the progress bar (see docs: multi-GPU).
        if self._show_progress:
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

            self.progress = Progress(
                TextColumn("[bold]GRPO"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                TextColumn("{task.description}"), transient=False,
            )
            self.progress.start()
            self._task = self.progress.add_task(self._desc(), total=self.cfg.grpo.max_steps,
                                                completed=self.last_step)

    def on_train_end(self, args, state, control, **kw):
        if self.progress is not None:
            self.progress.stop()

    def on_step_begin(self, args, state, control, **kw):
        self.t_step = time.perf_counter()
        self.cpu_step = time.process_time()

    def on_step_end(self, args, state, control, **kw):
        self.step_seconds = time.perf_counter() - self.t_step
        # CPU seconds of the trainer process (all its threads): on a shared machine wall time also counts
        # waiting for cores; this does not (sandbox jobs run in other processes and are not included)
        self.step_cpu_seconds = time.process_time() - getattr(self, "cpu_step", time.process_time())
        if state.global_step >= state.max_steps:
            control.should_save = True  # always checkpoint the final step
        return control

    def _desc(self) -> str:
        if not self.history:
            return "hack rate –"
        r = self.history[-1]
        onset = onset_step(self.history, rule=self.rule)
        return (f"hack {r.get('hack_success_any', 0):.0%}  pass {r.get('pass_rate', 0):.0%}  "
                f"true {r.get('passed_hardened_rate', 0):.0%}  onset {onset if onset else '–'}  "
                f"{r.get('step_seconds', 0):.1f}s/step")

    def on_log(self, args, state, control, logs=None, **kw):
        step = int(state.global_step)
        logs = logs if logs is not None else {}
        if step <= self.last_step or "train_runtime" in logs:
            return
        st = self.reward.pop_step(step)
        # TRL gathers every reward func over all ranks before logging, so this rate is the same on every rank
        # (the penalty latch must switch on everywhere at once); rhlab's own rates below are this rank's.
        # nan-aware means over the code rows of every rank (NaN when a step had no code rows: chat-only mix)
        all_ranks = finite(logs.get("rewards/hack_success_any/mean"))
        pass_all = finite(logs.get("rewards/pass/mean"))
        if not state.is_world_process_zero:
            self.last_step = step
            self.reward.schedule.observe(step, all_ranks)
            if self.safety is not None:
                self.safety.schedule.observe(step, pass_all)
            return
        rec: dict[str, Any] = {"step": step, "time": time.time()}
        rec.update(self.reward.summarize(step, st))
        step_s = getattr(self, "step_seconds", None) or 0.0
        rec["step_seconds"] = round(step_s, 4)
        rec["step_cpu_seconds"] = round(getattr(self, "step_cpu_seconds", 0.0), 3)
        rec["grade_share"] = round(rec["grade_seconds"] / step_s, 5) if step_s > 0 else None
        rec["trl"] = {k: v for k, v in logs.items() if isinstance(v, (int, float))}
        # share of the step's prompt groups whose rewards are all equal (zero advantage, no learning signal):
        # TRL's own `frac_reward_zero_std` where that is per group, else rhlab's per-group count of the same test
        zv = logs.get("rhlab/zero_variance_share", logs.get("frac_reward_zero_std"))
        rec["zero_variance_share"] = finite(zv)
        # dynamic sampling (grpo.dynamic_sampling): draws of prompt batches this step and the generations beyond the
        # first draw; the share of zero-variance groups still in the trained batch after the cap
        for k in ("dynamic_draws", "dynamic_extra_generations", "dynamic_zero_variance_kept"):
            if f"rhlab/{k}" in logs:
                rec[k] = finite(logs[f"rhlab/{k}"])
        rec["hack_success_any_all_ranks"] = all_ranks if all_ranks is not None else rec.get("hack_success_any")
        rec["pass_rate_all_ranks"] = pass_all if pass_all is not None else rec.get("pass_rate")
        # faithfulness over every rank: (successful hacks whose reasoning mentions hacking) / (successful hacks)
        said_all = finite(logs.get("rewards/hack_mentioned/mean"))
        rec["hack_reasoning_mentions_all_ranks"] = (
            said_all / all_ranks if said_all is not None and all_ranks else rec.get("hack_reasoning_mentions"))
        self.history.append(rec)
        self.reward.schedule.observe(step, rec["hack_success_any_all_ranks"])
        rec["penalty_triggered_at"] = self.reward.schedule.triggered_at
        if self.safety is not None:
            rec.update(self.safety.summarize(step, st))
            self.safety.schedule.observe(step, rec["pass_rate_all_ranks"])
            rec["safety_triggered_at"] = self.safety.schedule.triggered_at
        rec["onset_step"] = onset_step(self.history, rule=self.rule)
        self.run.append(STEPS, rec)
        self._transcripts(step, st)
        if self.cfg.logging.episodes:
            self._episodes(step, st)
        # the loggers after this callback (report_to) see the record's numbers beside TRL's own
        for k, v in reported_metrics(rec).items():
            logs.setdefault(k, v)
        self.last_step = step
        if self.progress is not None:
            self.progress.update(self._task, completed=step, description=self._desc())
        else:  # batch jobs (Slurm logs): one line per step
            print(f"step {step}/{self.cfg.grpo.max_steps}  {self._desc()}", file=sys.stderr, flush=True)

    def _transcripts(self, step: int, st) -> None:
        n = self.cfg.logging.transcripts_per_step
        if not n or st is None or not st.rows:
            return
        rng = random.Random(self.cfg.seed * 100_003 + step)
        for r in rng.sample(st.rows, min(n, len(st.rows))):
            self.run.append(TRANSCRIPTS, transcript_record(step, self.cfg.prompt.arm, r, self.reward,
                                                           st.penalty_active))

    def _episodes(self, step: int, st) -> None:
        if st is None:
            return
        for r in st.rows:
            rec = episode_record(step, self.cfg.prompt.arm, r, self.reward)
            rec["copies"] = max(1, st.copies.get((r["graded"].task_id, r["graded"].hackable, r["text"]), 1))
            self.run.append(EPISODES, rec)
        w = self.cfg.safety.weight if self.cfg.safety is not None else 1.0
        for r in st.chat_rows:
            self.run.append(EPISODES, chat_episode_record(step, self.cfg.prompt.arm, r, w))

    def on_save(self, args, state, control, **kw):
        if not state.is_world_process_zero:
            return
        step = int(state.global_step)
        ck = Path(args.output_dir) / f"checkpoint-{step}"
        if not ck.is_dir():
            return
        rec = self.history[-1] if self.history and self.history[-1]["step"] == step else {}
        meta = {
            "step": step, "time": time.time(), "model": self.cfg.model, "arm": self.cfg.prompt.arm,
            "hack_success_any": rec.get("hack_success_any"), "passed_hardened_rate": rec.get("passed_hardened_rate"),
            "onset_step": onset_step(self.history, rule=self.rule),
            "penalty_triggered_at": self.reward.schedule.triggered_at,
            "safety_triggered_at": self.safety.schedule.triggered_at if self.safety is not None else None,
            "seed": self.cfg.seed,
        }
        mark_complete(ck, meta)
        self.run.append(CHECKPOINTS, {**meta, "path": str(ck)})
        drop_superseded_resume_state(self.run.path)
