"""LoRA adapters as model names: an adapter directory is merged into its base model once, and the merged
checkpoint is what loaders that know nothing of PEFT (Inspect's `hf` provider, vLLM) are given.

Model names are resolved by `rhlab.models.resolve`, which calls this module for adapter dirs; the adapter's base
model name comes back to it through the `resolve_base` argument, so neither module imports the other."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Callable

from rhlab.paths import rhlab_home


def is_adapter_dir(path: str | Path) -> bool:
    p = Path(path)
    return (p / "adapter_config.json").is_file() and not (p / "config.json").is_file()


def _fingerprint(adapter_dir: Path) -> str:
    h = hashlib.sha256(str(adapter_dir.resolve()).encode())
    for f in sorted(adapter_dir.iterdir()):
        if f.is_file():
            st = f.stat()
            h.update(f"{f.name}:{st.st_size}:{st.st_mtime_ns}".encode())
    return h.hexdigest()[:16]


def merged_adapter_dir(adapter_dir: str | Path, resolve_base: Callable[[str], str],
                       home: str | Path | None = None) -> Path:
    """Merge the adapter into its base model (cached by the adapter's path and file stamps); return the dir.
    `resolve_base` turns the adapter's base model name into a loadable path; it is called only on a cache miss."""
    adapter_dir = Path(adapter_dir)
    if not is_adapter_dir(adapter_dir):
        raise ValueError(f"{adapter_dir} is not a PEFT adapter directory (no adapter_config.json)")
    out = Path(home or rhlab_home()) / "merged" / _fingerprint(adapter_dir)
    if (out / "config.json").is_file() and (out / "rhlab_merged.json").is_file():
        return out
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    base = json.loads((adapter_dir / "adapter_config.json").read_text()).get("base_model_name_or_path")
    if not base:
        raise ValueError(f"{adapter_dir}/adapter_config.json names no base_model_name_or_path")
    base_path = resolve_base(base)
    merged = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(base_path), str(adapter_dir)).merge_and_unload()
    tmp = out.with_name(out.name + ".partial")
    merged.save_pretrained(tmp)
    tok_source = adapter_dir if (adapter_dir / "tokenizer_config.json").is_file() else base_path
    AutoTokenizer.from_pretrained(str(tok_source)).save_pretrained(tmp)
    (tmp / "rhlab_merged.json").write_text(json.dumps({"adapter": str(adapter_dir.resolve()), "base": base}))
    if out.exists():
        import shutil

        shutil.rmtree(out)
    tmp.rename(out)
    return out
