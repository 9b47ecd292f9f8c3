"""RL training on the hackable environments: TRL GRPO with hack metrics, penalties, checkpoints and resume.

Public interface (the experiment runner calls these):

    from rhlab.train import TrainConfig, load_train_config, train, TrainResult, list_checkpoints, onset_step
    result = train(cfg_or_path, run_dir, resume=False)

`rhlab.train.verl_reward.compute_score` is verl's reward-function entry point; `rhlab.train.verl_reward.export_parquet`
writes the prompts for verl. Heavy libraries (torch, trl) are imported inside functions.
"""

from rhlab.train.config import TrainConfig, load_train_config

__all__ = ["TrainConfig", "load_train_config", "train", "TrainResult", "list_checkpoints", "last_checkpoint",
           "onset_step"]


def __getattr__(name):
    if name in ("train", "TrainResult", "list_checkpoints", "last_checkpoint", "onset_step"):
        from rhlab.train import trainer

        return getattr(trainer, name)
    raise AttributeError(name)
