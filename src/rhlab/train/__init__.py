"""RL training on the hackable environments: TRL GRPO with hack metrics, penalties, checkpoints and resume; and the
supervised finetunes of the train stage (distillation of a run's episodes, safety SFT).

Public interface (the experiment runner calls these):

    from rhlab.train import TrainConfig, load_train_config, train, TrainResult, list_checkpoints, onset_step
    result = train(cfg_or_path, run_dir, resume=False)

    from rhlab.train import load_episodes, filter_episodes, rewrite_episodes, rewrite_settings_from_run, distill
    from rhlab.train import safety_sft

Modules: `trainer` (train), `onset` (the onset rule) + `start_rate` (its measurement), `checkpoints` (checkpoints,
the run's onset rule, resume), `records` + `callback` (the run's records),
`grpo` (the TRL adapter), `dataset` (tasks → prompts), `reward` + `verdicts` + `schedule` (the reward),
`safety_prompts` + `safety_scorers` + `safety_mix` (the RLHF safety mix), `episodes` + `sft` (distill, safety SFT),
`controls` (positive-control finetunes), `verl_reward` (verl's reward entry point `compute_score`, and
`export_parquet`). Heavy libraries (torch, trl) are imported inside functions.
"""

from rhlab.train.config import TrainConfig, load_train_config

# name -> module that defines it (imported on first use: they pull in torch / trl)
_LAZY = {
    "train": "trainer", "TrainResult": "trainer",
    "list_checkpoints": "checkpoints", "last_checkpoint": "checkpoints", "onset_step": "onset",
    "OnsetRule": "onset", "make_rule": "onset", "read_onset_rule": "checkpoints",
    "load_episodes": "episodes", "filter_episodes": "episodes", "rewrite_episodes": "episodes",
    "rewrite_settings_from_run": "episodes",
    "distill": "sft", "safety_sft": "sft",
}

__all__ = ["TrainConfig", "load_train_config", *_LAZY]


def __getattr__(name):
    if name in _LAZY:
        from importlib import import_module

        return getattr(import_module(f"rhlab.train.{_LAZY[name]}"), name)
    raise AttributeError(name)
