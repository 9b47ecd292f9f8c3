"""TRL's TensorBoard logger (report_to) writes into the run dir, and a resume purges the redone steps' old events."""

from types import SimpleNamespace

import pytest


def _scalars(log_dir, tag):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(log_dir))
    acc.Reload()
    return [(e.step, e.value) for e in acc.Scalars(tag)]


def _trainer_with_tb_logger():
    from transformers.integrations import TensorBoardCallback
    from transformers.trainer_callback import DefaultFlowCallback

    return SimpleNamespace(callback_handler=SimpleNamespace(callbacks=[DefaultFlowCallback(), TensorBoardCallback()]))


@pytest.mark.parametrize("purge", [True, False])
def test_resume_purges_the_redone_steps(tmp_path, purge):
    from torch.utils.tensorboard import SummaryWriter

    from rhlab.train.grpo import tensorboard_dir, use_tensorboard_dir

    log_dir = tensorboard_dir(tmp_path)
    first = SummaryWriter(log_dir=str(log_dir))  # the killed run: steps 1..5, checkpoint at 2
    for step in range(1, 6):
        first.add_scalar("train/loss", 1.0, step)
    first.close()
    trainer = _trainer_with_tb_logger()
    if purge:
        use_tensorboard_dir(trainer, tmp_path, first_step=3)
    else:  # what a writer without the restart mark gives
        trainer.callback_handler.callbacks[1].tb_writer = SummaryWriter(log_dir=str(log_dir))
    tb = trainer.callback_handler.callbacks[1].tb_writer
    for step in range(3, 6):  # the resume redoes 3..5
        tb.add_scalar("train/loss", 2.0, step)
    tb.close()
    got = _scalars(log_dir, "train/loss")
    if purge:
        assert got == [(1, 1.0), (2, 1.0), (3, 2.0), (4, 2.0), (5, 2.0)]
    else:
        assert len(got) == 8  # duplicates: the case the restart mark exists for


def test_logger_keeps_a_writer_it_already_has(tmp_path):
    from rhlab.train.grpo import use_tensorboard_dir

    trainer = _trainer_with_tb_logger()
    mine = object()
    trainer.callback_handler.callbacks[1].tb_writer = mine
    use_tensorboard_dir(trainer, tmp_path, first_step=1)
    assert trainer.callback_handler.callbacks[1].tb_writer is mine


def test_report_to_follows_logging_and_grpo_extra(tmp_path):
    from rhlab.train.config import TrainConfig
    from rhlab.train.grpo import grpo_args

    assert grpo_args(TrainConfig(), tmp_path).report_to == ["tensorboard"]
    off = TrainConfig.model_validate({"logging": {"tensorboard": False}})
    assert grpo_args(off, tmp_path).report_to in ([], "none", ["none"])
    both = TrainConfig.model_validate({"grpo": {"extra": {"report_to": ["tensorboard", "wandb"]}}})
    assert grpo_args(both, tmp_path).report_to == ["tensorboard", "wandb"]
