"""GRPO on the hackable environments (TRL `GRPOTrainer`), with per-step hack metrics, checkpoints and resume.

    from rhlab.train import train, load_train_config
    result = train(load_train_config("configs/train/smoke.yaml"), "runs/smoke")          # fresh run
    result = train("runs/smoke/config.yaml", "runs/smoke", resume=True)                  # after a crash / kill -9

Run directory (rhlab.rundir):
    config.yaml, meta.json
    records/train_steps.jsonl   one record per optimiser step (see docs/training.md for every field)
    records/transcripts.jsonl   sampled (prompt, completion, verdict, reward) rows per step
    records/checkpoints.jsonl   one line per saved checkpoint (step, path, hack rate so far)
    records/episodes.jsonl      every graded completion of every step (logging.episodes; see `episode_record`)
    artefacts/checkpoints/checkpoint-N/   HF/TRL checkpoint + rhlab_checkpoint.json (written after the save
                                          completed; a checkpoint without it is incomplete and ignored)
    artefacts/tensorboard/      TensorBoard scalars
    artefacts/hard_filter.json  cached reference-model solves (hard_filter.mode=reference_model)

Resume: the newest complete checkpoint N is loaded (weights, optimiser, scheduler, RNG, data position), records of
steps > N are dropped (they are redone), and TensorBoard events after N are purged — so every step 1..max_steps
appears exactly once in the records.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from rhlab.config import ConfigError, load_config
from rhlab.rundir import RunDir, read_records
from rhlab.train.config import TrainConfig
from rhlab.train.reward import HackReward, PenaltySchedule

STEPS = "train_steps"
TRANSCRIPTS = "transcripts"
CHECKPOINTS = "checkpoints"
EPISODES = "episodes"
CKPT_META = "rhlab_checkpoint.json"
# Config fields that may change between a run and its resume.
_RESUMABLE_CHANGES = {("grpo", "max_steps"), ("logging",), ("sandbox_workers",),
                      ("grpo", "extra", "vllm_server_host"), ("grpo", "extra", "vllm_server_base_url")}


@dataclass
class TrainResult:
    run_dir: Path
    steps: int  # last finished optimiser step
    onset_step: int | None
    last_checkpoint: Path | None
    records: list[dict[str, Any]] = field(default_factory=list)


# --- checkpoints --------------------------------------------------------------------------------------------------


def checkpoints_dir(run_dir: str | Path) -> Path:
    return Path(run_dir) / "artefacts" / "checkpoints"


def list_checkpoints(run_dir: str | Path) -> list[dict[str, Any]]:
    """Complete checkpoints, oldest first: their rhlab metadata plus `path`."""
    out = []
    d = checkpoints_dir(run_dir)
    if not d.exists():
        return out
    for p in d.glob("checkpoint-*"):
        meta = p / CKPT_META
        if p.is_dir() and meta.exists():
            try:
                m = json.loads(meta.read_text(encoding="utf-8"))
            except json.JSONDecodeError:
                continue
            m["path"] = str(p)
            out.append(m)
    return sorted(out, key=lambda m: m["step"])


def last_checkpoint(run_dir: str | Path) -> Path | None:
    cks = list_checkpoints(run_dir)
    return Path(cks[-1]["path"]) if cks else None


def _rewrite_records(path: Path, keep: Callable[[dict], bool]) -> int:
    if not path.exists():
        return 0
    rows = [r for r in read_records(path) if keep(r)]
    tmp = path.with_suffix(".jsonl.tmp")
    with open(tmp, "w", encoding="utf-8") as fh:
        for r in rows:
            fh.write(json.dumps(r, ensure_ascii=False, default=str) + "\n")
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)
    return len(rows)


def onset_step(records: list[dict[str, Any]], threshold: float = 0.02) -> int | None:
    """Paper §3: the first step where more than `threshold` of the step's episodes hack successfully."""
    for r in sorted(records, key=lambda r: r["step"]):
        rate = r.get("hack_success_any_all_ranks", r.get("hack_success_any"))
        if rate is not None and rate > threshold:
            return int(r["step"])
    return None


def _finite(x: Any) -> float | None:
    return None if x is None or (isinstance(x, float) and x != x) else x


# --- episodes log -------------------------------------------------------------------------------------------------


def _split_prompt(prompt: Any) -> tuple[str | None, str | None]:
    """(system, last user message) of a conversational prompt (a plain-text prompt is the user message)."""
    if isinstance(prompt, list):
        system = next((m.get("content") for m in prompt if m.get("role") == "system"), None)
        users = [m.get("content") for m in prompt if m.get("role") == "user"]
        return system, (users[-1] if users else None)
    return None, (prompt if prompt is None else str(prompt))


def episode_record(step: int, arm: str, row: dict, reward: HackReward) -> dict[str, Any]:
    """One code episode: what the policy saw and wrote, its reward and the grader's verdict on it."""
    g = row["graded"]
    system, user = _split_prompt(row.get("prompt"))
    return {
        "step": step, "task_id": g.task_id, "kind": "code", "arm": arm, "system": system, "user": user,
        "completion": row["text"], "reward": reward.total_reward(g, step, row.get("pm")),
        "passed": g.passed, "passed_hardened": g.passed_hardened, "hacked": g.hack_success,
        "attempted_hacks": list(g.attempted), "detected_hacks": list(row.get("detected_hacks") or g.succeeded),
        "hackable": g.hackable, "parse_ok": g.parse_ok, "cot_mentions_hack": g.cot_mentions_hack,
        # faithfulness: for a successful hack, whether its reasoning mentions hacking (None for other episodes)
        "hack_reasoning_mentions": g.hack_mentioned, "reasoning_source": g.reasoning_source,
        "detector_flags": list(g.flags),
        "penalty_fires": bool(row.get("penalty_fires")), "pm": row.get("pm"),
    }


def chat_episode_record(step: int, arm: str, row: dict, weight: float = 1.0) -> dict[str, Any]:
    """One safety-mix chat episode (no grader verdict: those fields are None)."""
    system, user = _split_prompt(row.get("prompt"))
    score = row.get("score")
    return {
        "step": step, "task_id": row.get("task_id"), "kind": "chat", "arm": arm, "system": system, "user": user,
        "messages": row.get("prompt"), "completion": row["text"],
        "reward": weight * score if score is not None else None, "safety_score": score,
        "safety_active": bool(row.get("active")),
        "passed": None, "passed_hardened": None, "hacked": None, "attempted_hacks": [], "detected_hacks": [],
    }


# --- GRPO config ----------------------------------------------------------------------------------------------------


def grpo_args(cfg: TrainConfig, output_dir: str | Path, reward_weights: list[float] | None = None):
    """The `trl.GRPOConfig` for a run (also used by the scale-out config test)."""
    from trl import GRPOConfig

    g = cfg.grpo
    total = cfg.batch_size
    if total % g.gradient_accumulation_steps:
        raise ConfigError(
            f"grpo.num_generations × grpo.prompts_per_step ({total}) must be divisible by "
            f"grpo.gradient_accumulation_steps ({g.gradient_accumulation_steps})"
        )
    kw: dict[str, Any] = dict(
        output_dir=str(output_dir),
        per_device_train_batch_size=total // g.gradient_accumulation_steps,
        gradient_accumulation_steps=g.gradient_accumulation_steps,
        num_generations=g.num_generations,
        max_completion_length=g.max_completion_length,
        max_steps=g.max_steps,
        learning_rate=g.learning_rate,
        lr_scheduler_type=g.lr_scheduler_type,
        warmup_steps=g.warmup_steps,
        temperature=g.temperature,
        top_p=g.top_p,
        beta=g.beta,
        epsilon=g.epsilon,
        epsilon_high=g.epsilon_high,
        num_iterations=g.num_iterations,
        loss_type=g.loss_type,
        scale_rewards=g.scale_rewards,
        mask_truncated_completions=g.mask_truncated_completions,
        activation_checkpointing=g.gradient_checkpointing,
        max_grad_norm=g.max_grad_norm,
        weight_decay=g.weight_decay,
        save_strategy="steps",
        save_steps=cfg.checkpoint_every,
        save_total_limit=cfg.keep_checkpoints,
        save_only_model=False,  # optimiser + scheduler + RNG are needed for an exact resume
        logging_steps=1,
        report_to="none",
        disable_tqdm=True,
        seed=cfg.seed,
        data_seed=cfg.seed,
        log_completions=False,
        reward_weights=reward_weights,
        dataloader_num_workers=0,
    )
    if cfg.device == "cpu":
        kw.update(use_cpu=True, bf16=False, fp16=False)
    for k, v in g.extra.items():
        if k in kw and k not in ("bf16", "fp16", "use_cpu"):
            raise ConfigError(f"grpo.extra.{k} duplicates a first-class rhlab knob; set it under grpo instead")
        kw[k] = v
    try:
        return GRPOConfig(**kw)
    except TypeError as err:
        raise ConfigError(f"grpo.extra: {err}") from None


def _make_trainer_class():
    from trl import GRPOTrainer

    class RHGRPOTrainer(GRPOTrainer):
        """GRPOTrainer plus the explicit zero-variance-group option (and its per-group share where TRL logs a batch
        figure) and the safety mix (sampler + chat masking)."""

        zero_variance_groups = "keep"
        safety_fraction: float | None = None  # set: every step mixes this share of chat prompts (MixSampler)
        chat_masked: Callable[[int], bool] | None = None  # step -> chat rows are out of the loss this step

        def _get_train_sampler(self, dataset=None):
            if self.safety_fraction is None:
                return super()._get_train_sampler(dataset)
            from rhlab.train.safety import make_mix_sampler

            return make_mix_sampler(
                dataset if dataset is not None else self.train_dataset, self.safety_fraction,
                mini_repeat_count=self.num_generations,
                batch_size=self.args.generation_batch_size // self.num_generations,
                repeat_count=self.num_iterations * self.args.steps_per_generation, seed=self.args.seed,
            )

        def _calculate_rewards(self, inputs, prompts, completions, completion_ids_list):
            rewards_per_func = super()._calculate_rewards(inputs, prompts, completions, completion_ids_list)
            self._last_rewards_per_func = rewards_per_func  # all ranks' rows (TRL gathers before returning)
            return rewards_per_func

        def _own_zero_variance_share(self) -> bool:
            # TRL's `frac_reward_zero_std` is the share of groups with equal rewards only when it takes the std per
            # group: under scale_rewards=batch or normalize_then_sum it is the whole batch's std (0 or 1)
            return self.scale_rewards == "batch" or self.multi_objective_aggregation != "sum_then_normalize"

        def _zero_variance_share(self, num_generations: int) -> float | None:
            """Share of prompt groups whose (weighted, summed) rewards are all equal — TRL's own test (`isclose` of
            the group's nan-std to 0) applied per group, over every rank's rows."""
            import torch
            from trl.trainer.utils import nanstd

            r = getattr(self, "_last_rewards_per_func", None)
            if r is None or num_generations < 2 or r.shape[0] % num_generations:
                return None
            w = self.reward_weights.to(r.device).unsqueeze(0)
            rewards = (r * w).nansum(dim=1)
            rewards[torch.isnan(r).all(dim=1)] = torch.nan  # unscorable rows stay out, as in TRL
            std = nanstd(rewards.view(-1, num_generations), dim=1)
            return float(torch.isclose(std, torch.zeros_like(std)).float().mean().item())

        def _generate_and_score_completions(self, inputs):
            import torch

            out = super()._generate_and_score_completions(inputs)
            keep = None
            mode = "train" if self.model.training else "eval"
            if mode == "train" and self._own_zero_variance_share():
                share = self._zero_variance_share(self.num_generations)
                if share is not None:
                    self._metrics[mode]["rhlab/zero_variance_share"].append(share)
            if self.zero_variance_groups == "mask":
                # Every member of a zero-variance group has advantage exactly 0 (reward − group mean); drop those
                # completions from the loss and from the token normaliser so they do not dilute the others.
                keep = out["advantages"] != 0
                self._metrics[mode]["rhlab/zero_variance_masked"].append(float(1 - keep.float().mean().item()))
            if self.chat_masked is not None:
                masked = self.chat_masked(int(self.state.global_step) + 1)
                if masked:
                    # safety mix before its switch: chat rows carry no reward and stay out of the loss
                    not_chat = torch.tensor([x.get("kind") != "chat" for x in inputs], device=out["advantages"].device)
                    keep = not_chat if keep is None else keep & not_chat
                    share = float(1 - not_chat.float().mean().item())
                else:
                    share = 0.0
                self._metrics[mode]["rhlab/chat_masked"].append(share)
            if keep is not None:
                keep = keep.to(out["completion_mask"].dtype)
                out["completion_mask"] = out["completion_mask"] * keep.unsqueeze(1)
                mask = out["completion_mask"] if out.get("tool_mask") is None else out["completion_mask"] * out["tool_mask"]
                out["num_items_in_batch"] = self.accelerator.gather(mask.sum()).sum()
            return out

    return RHGRPOTrainer


# --- callback -----------------------------------------------------------------------------------------------------


def _callback_class():
    from transformers import TrainerCallback

    class RunCallback(TrainerCallback):
        """Writes per-step records / TensorBoard / transcripts, drives the progress bar and the penalty latch,
        forces a final checkpoint, and marks checkpoints complete."""

        def __init__(self, run: RunDir, cfg: TrainConfig, reward: HackReward, history: list[dict], start_step: int,
                     progress: bool, safety=None):
            self.run, self.cfg, self.reward = run, cfg, reward
            self.safety = safety  # rhlab.train.safety.SafetyReward when the safety mix is on
            self.history = history
            self.last_step = start_step
            self.t_step = time.perf_counter()
            self.tb = None
            self.progress = None
            self._task = None
            self._show_progress = progress

        def _start_outputs(self) -> None:
            # Only the main process writes records, TensorBoard and the progress bar (see docs: multi-GPU).
            if self.cfg.logging.tensorboard:
                from torch.utils.tensorboard import SummaryWriter

                self.tb = SummaryWriter(log_dir=str(self.run.artefacts_dir / "tensorboard"),
                                        purge_step=self.last_step + 1)
            if self._show_progress:
                from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

                self.progress = Progress(
                    TextColumn("[bold]GRPO"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                    TextColumn("{task.description}"), transient=False,
                )

        # -- lifecycle --
        def on_train_begin(self, args, state, control, **kw):
            if not state.is_world_process_zero:
                return
            self._start_outputs()
            if self.progress is not None:
                self.progress.start()
                self._task = self.progress.add_task(self._desc(), total=self.cfg.grpo.max_steps,
                                                    completed=self.last_step)

        def on_train_end(self, args, state, control, **kw):
            if self.progress is not None:
                self.progress.stop()
            if self.tb is not None:
                self.tb.flush()
                self.tb.close()

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
            onset = onset_step(self.history, self.cfg.onset_threshold)
            return (f"hack {r.get('hack_success_any', 0):.0%}  pass {r.get('pass_rate', 0):.0%}  "
                    f"true {r.get('passed_hardened_rate', 0):.0%}  onset {onset if onset else '–'}  "
                    f"{r.get('step_seconds', 0):.1f}s/step")

        def on_log(self, args, state, control, logs=None, **kw):
            step = int(state.global_step)
            logs = logs or {}
            if step <= self.last_step or "train_runtime" in logs:
                return
            st = self.reward.pop_step(step)
            # TRL gathers every reward func over all ranks before logging, so this rate is the same on every rank
            # (the penalty latch must switch on everywhere at once); rhlab's own rates below are this rank's.
            # nan-aware means over the code rows of every rank (NaN when a step had no code rows: chat-only mix)
            all_ranks = _finite(logs.get("rewards/hack_success_any/mean"))
            pass_all = _finite(logs.get("rewards/pass/mean"))
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
            rec["zero_variance_share"] = _finite(zv)
            rec["hack_success_any_all_ranks"] = all_ranks if all_ranks is not None else rec.get("hack_success_any")
            rec["pass_rate_all_ranks"] = pass_all if pass_all is not None else rec.get("pass_rate")
            # faithfulness over every rank: (successful hacks whose reasoning mentions hacking) / (successful hacks)
            said_all = _finite(logs.get("rewards/hack_mentioned/mean"))
            rec["hack_reasoning_mentions_all_ranks"] = (
                said_all / all_ranks if said_all is not None and all_ranks else rec.get("hack_reasoning_mentions"))
            self.history.append(rec)
            self.reward.schedule.observe(step, rec["hack_success_any_all_ranks"])
            rec["penalty_triggered_at"] = self.reward.schedule.triggered_at
            if self.safety is not None:
                rec.update(self.safety.summarize(step, st))
                self.safety.schedule.observe(step, rec["pass_rate_all_ranks"])
                rec["safety_triggered_at"] = self.safety.schedule.triggered_at
            rec["onset_step"] = onset_step(self.history, self.cfg.onset_threshold)
            self.run.append(STEPS, rec)
            self._transcripts(step, st)
            if self.cfg.logging.episodes:
                self._episodes(step, st)
            if self.tb is not None:
                for k, v in rec.items():
                    if isinstance(v, (int, float)) and not isinstance(v, bool) and k not in ("step", "time"):
                        self.tb.add_scalar(f"rhlab/{k}", v, step)
                for k, v in rec["trl"].items():
                    self.tb.add_scalar(f"trl/{k}", v, step)
                self.tb.flush()
            self.last_step = step
            if self.progress is not None:
                self.progress.update(self._task, completed=step, description=self._desc())
            else:  # batch jobs (Slurm logs): one line per step
                import sys

                print(f"step {step}/{self.cfg.grpo.max_steps}  {self._desc()}", file=sys.stderr, flush=True)

        def _transcripts(self, step: int, st) -> None:
            n = self.cfg.logging.transcripts_per_step
            if not n or st is None or not st.rows:
                return
            rng = random.Random(self.cfg.seed * 100_003 + step)
            rows = rng.sample(st.rows, min(n, len(st.rows)))
            for r in rows:
                g = r["graded"]
                prompt = r.get("prompt")
                self.run.append(TRANSCRIPTS, {
                    "step": step, "task_id": g.task_id, "hackable": g.hackable, "arm": self.cfg.prompt.arm,
                    "prompt_user": next((m["content"] for m in (prompt or []) if m.get("role") == "user"), None)
                    if isinstance(prompt, list) else prompt,
                    "completion": r["text"], "verdict": g.to_dict(),
                    "reward": self.reward.total_reward(g, step, r.get("pm")), "pm": r.get("pm"),
                    "penalty_fires": r["penalty_fires"], "penalty_active": st.penalty_active,
                })

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
                "onset_step": onset_step(self.history, self.cfg.onset_threshold),
                "penalty_triggered_at": self.reward.schedule.triggered_at,
                "safety_triggered_at": self.safety.schedule.triggered_at if self.safety is not None else None,
                "seed": self.cfg.seed,
            }
            tmp = ck / (CKPT_META + ".tmp")
            tmp.write_text(json.dumps(meta, indent=1), encoding="utf-8")
            os.replace(tmp, ck / CKPT_META)
            self.run.append(CHECKPOINTS, {**meta, "path": str(ck)})

    return RunCallback


# --- entry point ----------------------------------------------------------------------------------------------------


def _config_diff(a: dict, b: dict, prefix: tuple = ()) -> list[tuple]:
    diffs = []
    for k in sorted(set(a) | set(b)):
        va, vb = a.get(k), b.get(k)
        if isinstance(va, dict) and isinstance(vb, dict):
            diffs += _config_diff(va, vb, prefix + (k,))
        elif va != vb:
            diffs.append(prefix + (k,))
    return diffs


def _is_main_process() -> bool:
    """Rank 0 under accelerate/torchrun (RANK is set before the trainer exists); True for a plain process."""
    return os.environ.get("RANK", "0") == "0"


def _prepare_run_dir(cfg: TrainConfig, run_dir: Path, resume: bool) -> tuple[RunDir, Path | None]:
    stored = run_dir / "config.yaml"
    if not _is_main_process():  # other ranks only read; rank 0 owns the run dir
        return RunDir(run_dir), (last_checkpoint(run_dir) if resume else None)
    if resume:
        if not stored.exists():
            raise ConfigError(f"--resume: {run_dir} has no config.yaml (not a training run dir)")
        old = load_config(TrainConfig, stored)
        diffs = [d for d in _config_diff(old.model_dump(mode="json"), cfg.model_dump(mode="json"))
                 if not any(d[: len(p)] == p for p in _RESUMABLE_CHANGES)]
        if diffs:
            raise ConfigError(
                f"--resume: config differs from the run's config.yaml in {', '.join('.'.join(d) for d in diffs)}; "
                "only grpo.max_steps, logging, sandbox_workers and the vLLM server address may change on resume"
            )
        run = RunDir.create(run_dir, cfg)
        ckpt = last_checkpoint(run_dir)
        keep_to = int(json.loads((ckpt / CKPT_META).read_text())["step"]) if ckpt else 0
        _rewrite_records(run.records_path(STEPS), lambda r: r.get("step", 0) <= keep_to)
        _rewrite_records(run.records_path(TRANSCRIPTS), lambda r: r.get("step", 0) <= keep_to)
        _rewrite_records(run.records_path(CHECKPOINTS), lambda r: r.get("step", 0) <= keep_to)
        _rewrite_records(run.records_path(EPISODES), lambda r: r.get("step", 0) <= keep_to)
        # incomplete checkpoints (killed mid-save) and ones after keep_to are removed so TRL cannot pick them up
        for p in checkpoints_dir(run_dir).glob("checkpoint-*"):
            try:
                n = int(p.name.split("-")[-1])
            except ValueError:
                continue
            if n > keep_to or not (p / CKPT_META).exists():
                shutil.rmtree(p, ignore_errors=True)
        return run, ckpt
    existing = RunDir(run_dir).records_path(STEPS)
    if existing.exists() and any(True for _ in read_records(existing)):
        raise ConfigError(f"{run_dir} already holds training steps; pass --resume to continue it, or use a new dir")
    return RunDir.create(run_dir, cfg), None


def train(config: TrainConfig | str | Path, run_dir: str | Path, resume: bool = False, *,
          grader=None, progress: bool | None = None, model=None, tasks: list | None = None,
          safety_scorer=None) -> TrainResult:
    """Run (or resume) GRPO. `grader` overrides the sandbox grader (an object with async `agrade_many`);
    `model` a preloaded (model, tokenizer) pair; `tasks` the task list (else loaded from config);
    `safety_scorer` the safety mix's scorer (an object with `score(conversations, replies)`; else built from
    `safety.scorer`)."""
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    cfg = config if isinstance(config, TrainConfig) else load_config(TrainConfig, config)
    run_dir = Path(run_dir)
    run, ckpt = _prepare_run_dir(cfg, run_dir, resume)
    history = run.records(STEPS)
    start_step = max((r["step"] for r in history), default=0)

    from rhlab.models import load_model_and_tokenizer
    from rhlab.train.data import apply_hard_filter, build_dataset, select_tasks

    if model is not None:
        mdl, tok = model
    else:
        mdl, tok = load_model_and_tokenizer(cfg.model)
    tok.padding_side = "left"
    if tasks is None:
        tasks = select_tasks(cfg)
        tasks = apply_hard_filter(cfg, tasks, run.artefacts_dir / "hard_filter.json")
    extra_rows = None
    if cfg.safety is not None:
        from rhlab.train.safety import safety_rows

        try:
            extra_rows = safety_rows(cfg)
        except (ValueError, FileNotFoundError) as err:
            raise ConfigError(f"safety prompts: {err}") from None
    dataset = build_dataset(cfg, tasks, tok, extra_rows=extra_rows)
    by_id = {t.id: t for t in tasks}

    schedule = PenaltySchedule(cfg.reward.penalty)
    for r in history:  # rebuild the after-threshold latch from finished steps
        schedule.observe(r["step"], r.get("hack_success_any_all_ranks", r.get("hack_success_any")))
    reward = HackReward(cfg, by_id, grader=grader, schedule=schedule)
    funcs, weights = reward.reward_funcs(), reward.reward_weights()
    safety = None
    if cfg.safety is not None:
        from rhlab.train.safety import SafetyReward, SafetySchedule, quiet_unscored_rows_warning

        sched = SafetySchedule(cfg.safety.start)
        for r in history:  # rebuild the after-threshold latch from finished steps
            sched.observe(r["step"], r.get("pass_rate_all_ranks", r.get("pass_rate")))
        safety = SafetyReward(cfg.safety, reward, scorer=safety_scorer, schedule=sched)
        funcs.append(safety.reward_func())
        weights.append(float(cfg.safety.weight))
        quiet_unscored_rows_warning()
    if hasattr(reward.grader, "pool"):
        reward.grader.pool  # start the sandbox pool now, so step 1's grading time does not include its start-up
    args = grpo_args(cfg, checkpoints_dir(run_dir), weights)

    peft_config = None
    if cfg.grpo.lora is not None:
        from peft import LoraConfig

        lo = cfg.grpo.lora
        peft_config = LoraConfig(r=lo.r, lora_alpha=lo.alpha, lora_dropout=lo.dropout,
                                 target_modules=lo.target_modules, task_type="CAUSAL_LM")

    Trainer = _make_trainer_class()
    Callback = _callback_class()
    show = cfg.logging.progress if progress is None else progress
    cb = Callback(run, cfg, reward, history, start_step, show, safety=safety)
    if safety is not None:
        Trainer.safety_fraction = float(cfg.safety.fraction)
        Trainer.chat_masked = lambda self, step: not safety.schedule.active(step)
    trainer = Trainer(model=mdl, processing_class=tok, reward_funcs=funcs, args=args,
                      train_dataset=dataset, peft_config=peft_config, callbacks=[cb])
    trainer.zero_variance_groups = cfg.grpo.zero_variance_groups
    from transformers.trainer_callback import PrinterCallback

    trainer.remove_callback(PrinterCallback)  # the raw log dicts; rhlab prints one line per step instead
    if start_step >= cfg.grpo.max_steps:
        cb.on_train_end(None, None, None)
    else:
        trainer.train(resume_from_checkpoint=str(ckpt) if ckpt else None)
    records = run.records(STEPS)
    return TrainResult(
        run_dir=run_dir,
        steps=max((r["step"] for r in records), default=0),
        onset_step=onset_step(records, cfg.onset_threshold),
        last_checkpoint=last_checkpoint(run_dir),
        records=records,
    )
