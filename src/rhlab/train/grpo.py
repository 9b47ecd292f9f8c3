"""The GRPO adapter: our `TrainConfig` mapped onto TRL's `GRPOConfig` (`grpo_args`), the `GRPOTrainer` subclass
rhlab trains with (`RHGRPOTrainer`), and the LoRA config (`peft_config`).

Metrics reach TensorBoard (and W&B, ... through `grpo.extra.report_to`) by TRL's own loggers (`report_to`); the
TensorBoard one writes to RUN_DIR/artefacts/tensorboard (`use_tensorboard_dir`).
"""

from __future__ import annotations

import logging
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


class RHGRPOTrainer(GRPOTrainer):
    """GRPOTrainer plus the explicit zero-variance-group option (and its per-group share where TRL logs a batch
    figure) and the safety mix (sampler + chat masking)."""

    def __init__(self, *args: Any, zero_variance_groups: str = "keep", safety_fraction: float | None = None,
                 chat_masked: Callable[[int], bool] | None = None, **kwargs: Any):
        self.zero_variance_groups = zero_variance_groups
        self.safety_fraction = safety_fraction  # set: every step mixes this share of chat prompts (MixSampler)
        self.chat_masked = chat_masked  # step -> chat rows are out of the loss this step
        super().__init__(*args, **kwargs)

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


__all__ = ["grpo_args", "RHGRPOTrainer", "peft_config", "tensorboard_dir", "use_tensorboard_dir"]
