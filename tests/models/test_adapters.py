"""A LoRA adapter directory works wherever a model is named: merged into its base once, then reused."""

import torch
from peft import LoraConfig, get_peft_model
from transformers import AutoModelForCausalLM, AutoTokenizer

from rhlab.models import build_tiny_model, resolve_model
from rhlab.models.adapters import is_adapter_dir


def test_lora_adapter_resolves_to_a_merged_checkpoint(tmp_path):
    base = build_tiny_model(tmp_path / "base")
    model = AutoModelForCausalLM.from_pretrained(base)
    peft_model = get_peft_model(model, LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"], init_lora_weights=False))
    adapter = tmp_path / "adapter"
    peft_model.save_pretrained(adapter)
    assert is_adapter_dir(adapter)

    merged = resolve_model(str(adapter), home=tmp_path / "home")
    assert merged != str(adapter) and not is_adapter_dir(merged)
    assert resolve_model(str(adapter), home=tmp_path / "home") == merged  # cached
    ids = torch.tensor([[1, 5, 9, 12]])
    with torch.no_grad():
        want = peft_model(input_ids=ids).logits
        got = AutoModelForCausalLM.from_pretrained(merged)(input_ids=ids).logits
        plain = AutoModelForCausalLM.from_pretrained(base)(input_ids=ids).logits
    assert torch.allclose(want, got, atol=1e-4)
    assert not torch.allclose(plain, got, atol=1e-4)  # the adapter really changed the weights
    assert AutoTokenizer.from_pretrained(merged) is not None


def test_eval_runner_accepts_an_adapter_dir(tmp_path, monkeypatch):
    from rhlab.evals.suite import inspect_model_args as eval_resolve

    monkeypatch.setenv("RHLAB_HOME", str(tmp_path / "home"))
    base = build_tiny_model(tmp_path / "base")
    peft_model = get_peft_model(AutoModelForCausalLM.from_pretrained(base), LoraConfig(r=2, target_modules=["q_proj"]))
    peft_model.save_pretrained(tmp_path / "adapter")
    name, args = eval_resolve(str(tmp_path / "adapter"))
    assert name == "hf/local" and (tmp_path / "home" / "merged") in __import__("pathlib").Path(args["model_path"]).parents
