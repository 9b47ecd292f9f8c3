"""Model names: the embedded default, a local directory, or any Hugging Face model id."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rhlab.models.adapters import is_adapter_dir, merged_adapter_dir
from rhlab.models.embedded import embedded_spec, prepare_embedded


def resolve_model(name: str, home: str | Path | None = None, prepare: bool = True, log=None) -> str:
    """Turn a model name into something `from_pretrained` accepts.

    - `"embedded"`, `"smollm2-135m-instruct"` (and other embedded names/aliases) → the prepared directory
      (prepared on demand when `prepare`, else it must already exist);
    - an existing local path → that path (absolute); a LoRA adapter dir → its merged checkpoint (see adapters);
    - anything else → returned unchanged, treated as a Hugging Face model id.
    """
    if not name or not str(name).strip():
        raise ValueError("empty model name")
    name = str(name)
    p = Path(name).expanduser()
    if p.exists():
        if is_adapter_dir(p):
            return str(merged_adapter_dir(p, lambda base: resolve_model(base, home=home), home))
        return str(p.resolve())
    spec = embedded_spec(name)
    if spec is not None:
        if prepare:
            return str(prepare_embedded(spec.name, home=home, log=log))
        from rhlab.models.embedded import embedded_dir

        d = embedded_dir(spec.name, home)
        if not d.exists():
            raise FileNotFoundError(f"embedded model {spec.name!r} not prepared yet; run `rhlab model prepare`")
        return str(d)
    if name.startswith((".", "/", "~")) or name.count("/") > 1:
        raise FileNotFoundError(f"model path {name!r} does not exist")
    return name


def load_model_and_tokenizer(
    name: str,
    dtype: str = "float32",
    device: str | None = None,
    home: str | Path | None = None,
    padding_side: str = "left",
    **model_kwargs: Any,
):
    """Resolve `name` and load (model, tokenizer). The tokenizer gets a pad token (eos when it lacks one)."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    path = resolve_model(name, home=home)
    tok = AutoTokenizer.from_pretrained(path)
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    tok.padding_side = padding_side
    torch_dtype = getattr(torch, dtype) if isinstance(dtype, str) else dtype
    model = AutoModelForCausalLM.from_pretrained(path, dtype=torch_dtype, **model_kwargs)
    if device:
        model.to(device)
    if model.generation_config.pad_token_id is None:
        model.generation_config.pad_token_id = tok.pad_token_id
    return model, tok
