"""Shared model utilities: the embedded default model, name resolution, tiny test models.

Imports no rhlab stage; any stage may use it. Heavy libraries (torch, transformers) are imported inside functions.
"""

from rhlab.models.embedded import (
    DEFAULT_EMBEDDED,
    EMBEDDED_MODELS,
    EmbeddedModelError,
    embedded_dir,
    embedded_spec,
    find_gguf,
    prepare_embedded,
    verify_manifest,
)
from rhlab.models.resolve import load_model_and_tokenizer, resolve_model
from rhlab.models.tiny import CHATML_TEMPLATE, build_tiny_model

__all__ = [
    "CHATML_TEMPLATE",
    "DEFAULT_EMBEDDED",
    "EMBEDDED_MODELS",
    "EmbeddedModelError",
    "build_tiny_model",
    "embedded_dir",
    "embedded_spec",
    "find_gguf",
    "load_model_and_tokenizer",
    "prepare_embedded",
    "resolve_model",
    "verify_manifest",
]
