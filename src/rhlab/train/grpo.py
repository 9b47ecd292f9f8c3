"""The GRPO adapter: our `TrainConfig` mapped onto TRL's `GRPOConfig` (`grpo_args`), the `GRPOTrainer` subclass
rhlab trains with (`RHGRPOTrainer`), and the LoRA config (`peft_config`).

Metrics reach TensorBoard (and W&B, ... through `grpo.extra.report_to`) by TRL's own loggers (`report_to`); the
TensorBoard one writes to RUN_DIR/artefacts/tensorboard (`use_tensorboard_dir`).
"""

from __future__ import annotations

import logging
import random
from pathlib import Path
from typing import Any, Callable

from trl import GRPOConfig, GRPOTrainer

from rhlab.config import ConfigError
from rhlab.train.config import TrainConfig
from rhlab.train.safety_mix import make_mix_sampler


def tensorboard_dir(run_dir: str | Path) -> Path:
    return Path(run_dir) / "artefacts" / "tensorboard"


def grpo_args(cfg: TrainConfig, output_dir: str | Path, reward_weights: list[float] | None = None) -> GRPOConfig:
    """The `trl.GRPOConfig` for a run (also used by the scale-out config test)."""
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
        # TRL's loggers carry the metrics (the step records' numbers join them as rhlab/*, see callback.py);
        # grpo.extra.report_to adds others, e.g. [tensorboard, wandb]
        report_to=["tensorboard"] if cfg.logging.tensorboard else "none",
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
        if k in kw and k not in ("bf16", "fp16", "use_cpu", "report_to"):
            raise ConfigError(f"grpo.extra.{k} duplicates a first-class rhlab knob; set it under grpo instead")
        kw[k] = v
    try:
        return GRPOConfig(**kw)
    except TypeError as err:
        raise ConfigError(f"grpo.extra: {err}") from None


def use_tensorboard_dir(trainer, run_dir: str | Path, first_step: int) -> None:
    """Point TRL's TensorBoard logger (report_to) at RUN_DIR/artefacts/tensorboard through its `tb_writer`, a writer
    that marks `first_step` as a (re)start: TensorBoard then drops any older events of the steps a resume redoes."""
    from torch.utils.tensorboard import SummaryWriter
    from transformers.integrations import TensorBoardCallback

    for cb in trainer.callback_handler.callbacks:
        if isinstance(cb, TensorBoardCallback) and cb.tb_writer is None:
            cb.tb_writer = SummaryWriter(log_dir=str(tensorboard_dir(run_dir)), purge_step=first_step)
    lg = logging.getLogger("transformers.integrations.integration_utils")
    if not any(isinstance(f, _NoneMetricFilter) for f in lg.filters):
        lg.addFilter(_NoneMetricFilter())


class _NoneMetricFilter(logging.Filter):
    """TRL logs None for a metric with no rows this step (e.g. chat rows masked before the safety switch); the
    TensorBoard logger skips it, rightly, but warns on every step."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not record.getMessage().startswith('Trainer is attempting to log a value of "None"')


def peft_config(cfg: TrainConfig):
    """PEFT's LoraConfig for `grpo.lora` (None: full finetune)."""
    if cfg.grpo.lora is None:
        return None
    from peft import LoraConfig

    lo = cfg.grpo.lora
    return LoraConfig(r=lo.r, lora_alpha=lo.alpha, lora_dropout=lo.dropout, target_modules=lo.target_modules,
                      task_type="CAUSAL_LM")


def select_groups(zero: list[list[bool]], n_groups: int) -> list[tuple[int, int]]:
    """Dynamic sampling's choice: (draw, group) pairs for a batch of `n_groups` from draws whose groups are flagged
    zero-variance (`zero[d][g]`): the groups with variance in draw order first, then, if the draws ran out, the
    zero-variance ones in draw order (the batch keeps its size)."""
    varied = [(d, g) for d, z in enumerate(zero) for g, flat in enumerate(z) if not flat]
    flat = [(d, g) for d, z in enumerate(zero) for g, is_flat in enumerate(z) if is_flat]
    return varied[:n_groups] + flat[: max(0, n_groups - len(varied))]


class RHGRPOTrainer(GRPOTrainer):
    """GRPOTrainer plus the explicit zero-variance-group option (and its per-group share where TRL logs a batch
    figure), dynamic sampling (DAPO-style refills of zero-variance groups) and the safety mix (sampler + chat
    masking)."""

    def __init__(self, *args: Any, zero_variance_groups: str = "keep", safety_fraction: float | None = None,
                 chat_masked: Callable[[int], bool] | None = None, dynamic_max_draws: int | None = None,
                 **kwargs: Any):
        self.zero_variance_groups = zero_variance_groups
        self.safety_fraction = safety_fraction  # set: every step mixes this share of chat prompts (MixSampler)
        self.chat_masked = chat_masked  # step -> chat rows are out of the loss this step
        self.dynamic_max_draws = dynamic_max_draws  # set: dynamic sampling, at most this many draws per generation
        super().__init__(*args, **kwargs)
        if dynamic_max_draws is not None and self.accelerator.num_processes > 1:
            # a group's rows may sit on several ranks; choosing groups would mean moving rows between ranks
            raise ConfigError("grpo.dynamic_sampling runs on one process only (use verl's filter_groups at scale)")

    def _get_train_sampler(self, dataset=None):
        if self.safety_fraction is None:
            return super()._get_train_sampler(dataset)
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

    def _zero_variance_groups(self, num_generations: int):
        """Per prompt group of the last scored batch, whether its (weighted, summed) rewards are all equal — TRL's
        own test (`isclose` of the group's nan-std to 0) applied per group, over every rank's rows."""
        import torch
        from trl.trainer.utils import nanstd

        r = getattr(self, "_last_rewards_per_func", None)
        if r is None or num_generations < 2 or r.shape[0] % num_generations:
            return None
        w = self.reward_weights.to(r.device).unsqueeze(0)
        rewards = (r * w).nansum(dim=1)
        rewards[torch.isnan(r).all(dim=1)] = torch.nan  # unscorable rows stay out, as in TRL
        std = nanstd(rewards.view(-1, num_generations), dim=1)
        return torch.isclose(std, torch.zeros_like(std))

    def _zero_variance_share(self, num_generations: int) -> float | None:
        flat = self._zero_variance_groups(num_generations)
        return None if flat is None else float(flat.float().mean().item())

    def _extra_prompts(self, n_groups: int, used: set, draw: int) -> list[dict]:
        """`n_groups` dataset rows, each repeated num_generations times (TRL's group layout), preferring prompts not
        drawn yet this step; seeded by (seed, step, draw), so a resumed run draws the same ones."""
        ds = self.train_dataset
        if not hasattr(self, "_dataset_task_ids"):
            self._dataset_task_ids = ds["task_id"] if "task_id" in ds.column_names else list(range(len(ds)))
        ids = self._dataset_task_ids
        rng = random.Random(f"dynamic:{self.args.seed}:{self.state.global_step}:{draw}")
        fresh = [i for i in range(len(ds)) if ids[i] not in used]
        pool = fresh if len(fresh) >= n_groups else list(range(len(ds)))
        pick = rng.sample(pool, n_groups) if len(pool) >= n_groups else [rng.choice(pool) for _ in range(n_groups)]
        used.update(ids[i] for i in pick)
        return [ds[i] for i in pick for _ in range(self.num_generations)]

    def _merge_draws(self, outs: list[dict], rows: list[int]) -> dict:
        """The rows `rows` (indices into the draws laid end to end) of several scored draws as one TRL batch: token
        tensors re-padded to a common width (prompts on the left, completions on the right)."""
        import torch

        n = outs[0]["advantages"].shape[0]
        pad_id = self._tokenizer.pad_token_id
        merged: dict[str, Any] = {}
        for key, v in outs[0].items():
            if key == "num_items_in_batch":
                continue
            if not torch.is_tensor(v) or v.dim() == 0 or v.shape[0] != n:
                raise ConfigError(f"grpo.dynamic_sampling cannot merge TRL's {key!r} (multimodal or tool "
                                  "rollouts are not supported)")
            ts = [o[key] for o in outs]
            if v.dim() >= 2:
                width = max(t.shape[1] for t in ts)
                left = key in ("prompt_ids", "prompt_mask")
                value = pad_id if key in ("prompt_ids", "completion_ids") else 0
                for i, t in enumerate(ts):
                    if t.shape[1] < width:
                        fill = torch.full((t.shape[0], width - t.shape[1], *t.shape[2:]), value, dtype=t.dtype,
                                          device=t.device)
                        ts[i] = torch.cat([fill, t] if left else [t, fill], dim=1)
            merged[key] = torch.cat(ts)[torch.tensor(rows, device=v.device)]
        mask = merged["completion_mask"] if merged.get("tool_mask") is None else (
            merged["completion_mask"] * merged["tool_mask"])
        merged["num_items_in_batch"] = self.accelerator.gather(mask.sum()).sum()
        return merged

    def _dynamic_sample(self, inputs):
        """DAPO-style dynamic sampling: score `inputs`; while fewer of the scored groups than the batch holds have
        reward variance, score another batch of prompts, up to `dynamic_max_draws` draws; keep the varied groups
        first (`select_groups`). Every draw's completions are graded and logged (step records, episodes)."""
        g = self.num_generations
        n_groups = len(inputs) // g
        outs, batches, zero = [], [], []
        used = {x.get("task_id") for x in inputs}
        batch = inputs
        for draw in range(self.dynamic_max_draws):
            if draw:
                batch = self._extra_prompts(n_groups, used, draw)
            outs.append(super()._generate_and_score_completions(batch))
            batches.append(batch)
            zero.append([bool(x) for x in self._zero_variance_groups(g).tolist()])
            if sum(not x for z in zero for x in z) >= n_groups:
                break
        chosen = select_groups(zero, n_groups)
        rows = [d * len(inputs) + k * g + j for d, k in chosen for j in range(g)]
        m = self._metrics["train"]
        m["rhlab/zero_variance_share"].append(sum(zero[0]) / n_groups)  # the first draw: what a plain step has
        m["rhlab/dynamic_draws"].append(float(len(outs)))
        m["rhlab/dynamic_extra_generations"].append(float((len(outs) - 1) * len(inputs)))
        m["rhlab/dynamic_zero_variance_kept"].append(sum(zero[d][k] for d, k in chosen) / n_groups)
        if len(outs) == 1:
            return outs[0], inputs
        every = [x for b in batches for x in b]
        return self._merge_draws(outs, rows), [every[i] for i in rows]

    def _generate_and_score_completions(self, inputs):
        import torch

        keep = None
        mode = "train" if self.model.training else "eval"
        if mode == "train" and self.dynamic_max_draws is not None:
            out, inputs = self._dynamic_sample(inputs)
        else:
            out = super()._generate_and_score_completions(inputs)
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


__all__ = ["grpo_args", "RHGRPOTrainer", "peft_config", "select_groups", "tensorboard_dir", "use_tensorboard_dir"]
