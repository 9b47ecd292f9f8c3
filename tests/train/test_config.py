"""Config validation errors name the field and say what is wrong; the shipped configs all load."""

from pathlib import Path

import pytest

from rhlab.config import ConfigError
from rhlab.train.config import TrainConfig, load_train_config

CONFIGS = Path(__file__).resolve().parents[2] / "configs" / "train"


def _load(tmp_path, text):
    p = tmp_path / "c.yaml"
    p.write_text(text)
    return load_train_config(p)


@pytest.mark.parametrize("text, needle", [
    ("grpo: {num_generatons: 8}", "grpo.num_generatons: Extra inputs are not permitted"),
    ("grpo: {num_generations: 1}", "grpo.num_generations"),
    ("grpo: {epsilon: 0.3, epsilon_high: 0.2}", "epsilon_high (0.2) must be >= epsilon (0.3)"),
    ("prompt: {arm: hack_please}", "unknown arm 'hack_please'"),
    ("prompt: {hacks: [always_eq]}", "unknown hack families ['always_eq']"),
    ("reward: {penalty: {mode: after_threshold}}", "needs penalty.threshold"),
    ("reward: {penalty: {mode: from_step}}", "needs penalty.start_step"),
    ("reward: {penalty: {mode: from_step, start_step: 50}}\ngrpo: {max_steps: 10}", "is after grpo.max_steps"),
    ("reward: {penalty: {value: 1.0}}", "reward.penalty.value"),
    ("tasks: {hackable_fraction: 1.5}", "tasks.hackable_fraction"),
    ("tasks: {hard_filter: {mode: ids_file}}", "needs hard_filter.ids_file"),
    ("grpo: {zero_variance_groups: drop}", "grpo.zero_variance_groups"),
])
def test_errors_are_clear(tmp_path, text, needle):
    with pytest.raises(ConfigError) as err:
        _load(tmp_path, text)
    assert needle in str(err.value)
    assert "c.yaml" in str(err.value)


def test_defaults_follow_the_onset_knobs():
    c = TrainConfig()
    assert c.grpo.beta == 0.0 and c.grpo.epsilon_high >= 0.3 and c.grpo.loss_type == "dapo"
    assert c.grpo.scale_rewards == "none" and c.grpo.temperature == 1.0 and c.grpo.mask_truncated_completions
    assert c.reward.weights.pass_ == 1.0 and c.onset_threshold == 0.02


def test_grpo_extra_typos_are_errors(tmp_path):
    from rhlab.train.grpo import grpo_args

    cfg = TrainConfig.model_validate({"grpo": {"extra": {"use_vlm": True}}})
    with pytest.raises(ConfigError, match="use_vlm"):
        grpo_args(cfg, tmp_path)
    cfg = TrainConfig.model_validate({"grpo": {"extra": {"beta": 0.1}}})
    with pytest.raises(ConfigError, match="first-class"):
        grpo_args(cfg, tmp_path)


def test_grpo_args_carry_the_knobs(tmp_path):
    from rhlab.train.grpo import grpo_args

    cfg = TrainConfig.model_validate({"grpo": {"num_generations": 8, "prompts_per_step": 3, "epsilon_high": 0.28,
                                               "beta": 0.02, "gradient_accumulation_steps": 2}})
    a = grpo_args(cfg, tmp_path)
    assert a.num_generations == 8 and a.per_device_train_batch_size == 12 and a.gradient_accumulation_steps == 2
    assert a.epsilon_high == 0.28 and a.beta == 0.02 and a.loss_type == "dapo" and a.scale_rewards == "none"
    assert a.use_cpu and not a.bf16 and a.save_steps == cfg.checkpoint_every and not a.save_only_model
    cfg = TrainConfig.model_validate({"grpo": {"num_generations": 3, "prompts_per_step": 1,
                                               "gradient_accumulation_steps": 2}})
    with pytest.raises(ConfigError, match="divisible"):
        grpo_args(cfg, tmp_path)


def _is_train_config(path) -> bool:
    import yaml

    data = yaml.safe_load(path.read_text())
    # accelerate and verl recipes live beside the train configs; test_scaleout.py checks those
    return isinstance(data, dict) and "compute_environment" not in data and data.get("kind") != "verl"


@pytest.mark.parametrize("path", [p for p in sorted(CONFIGS.glob("*.yaml")) if _is_train_config(p)], ids=lambda p: p.name)
def test_shipped_train_configs_load(path):
    load_train_config(path)


# -- the one override merge (rhlab.config.apply_overrides: `--set` strings and specs' typed `overrides:`) ------------

def _base() -> TrainConfig:
    return TrainConfig.model_validate({"grpo": {"max_steps": 10, "learning_rate": 1e-5, "extra": {"bf16": True}}})


def test_overrides_mapping_and_set_strings_give_the_same_config():
    from rhlab.config import apply_overrides

    typed = apply_overrides(_base(), {"grpo.max_steps": 6, "grpo.lora.r": 8, "reward.weights.pass": 2.0,
                                      "prompt.hacks": ["always_equal"], "safety": {"scorer": {"model": "rm"}}}, "t")
    parsed = apply_overrides(_base(), ["grpo.max_steps=6", "grpo.lora.r=8", "reward.weights.pass=2.0",
                                       "prompt.hacks=[always_equal]", "safety={scorer: {model: rm}}"], "t")
    assert typed == parsed
    assert typed.grpo.max_steps == 6 and typed.grpo.lora.r == 8 and typed.grpo.lora.alpha == 32  # created, defaults
    assert typed.reward.weights.pass_ == 2.0 and typed.safety.scorer.model == "rm"


def test_override_leaves_sibling_settings_alone():
    from rhlab.config import apply_overrides

    base = _base()
    cfg = apply_overrides(base, {"grpo.max_steps": 6, "grpo.extra.use_vllm": True})
    assert cfg.grpo.learning_rate == 1e-5 and cfg.grpo.extra == {"bf16": True, "use_vllm": True}
    assert base.grpo.max_steps == 10 and base.grpo.extra == {"bf16": True}  # the input is not changed
    # a key naming a whole section replaces it, and a later key wins over an earlier one
    cfg = apply_overrides(base, ["grpo.extra.use_vllm=true", "grpo.extra={}", "grpo.max_steps=7", "grpo.max_steps=8"])
    assert cfg.grpo.extra == {} and cfg.grpo.max_steps == 8


@pytest.mark.parametrize("overrides, needle", [
    ({"grpo.max_stepz": 3}, "'grpo.max_stepz'"),
    (["grpo.max_stepz=3"], "'grpo.max_stepz'"),
    (["tasks.hard_filter.moda=none"], "'tasks.hard_filter.moda'"),
    ({"grpo.max_steps.value": 3}, "'grpo.max_steps.value'"),
    (["grpo.max_steps"], "expected KEY=VALUE"),
])
def test_override_unknown_key_names_key_and_source(overrides, needle):
    from rhlab.config import apply_overrides

    with pytest.raises(ConfigError) as err:
        apply_overrides(_base(), overrides, "my.yaml")
    assert needle in str(err.value) and "my.yaml" in str(err.value)


@pytest.mark.parametrize("overrides, needle", [
    ({"grpo.max_steps": "many"}, "grpo.max_steps"),
    (["grpo.max_steps=true"], "boolean"),  # YAML reads true; a step count is not a boolean
    (["grpo.max_steps=0"], "grpo.max_steps"),
    (["grpo.learning_rate=.nan"], "not a finite number"),
    ({"grpo.learning_rate": float("inf")}, "not a finite number"),
    (["grpo.extra={a: 1, a: 2}"], "duplicate key 'a'"),
    (["reward.penalty.mode=from_step", "reward.penalty.start_step=50"], "is after grpo.max_steps"),  # whole model
])
def test_override_values_are_revalidated(overrides, needle):
    from rhlab.config import apply_overrides

    with pytest.raises(ConfigError) as err:
        apply_overrides(_base(), overrides, "my.yaml")
    assert needle in str(err.value) and "my.yaml" in str(err.value)
