"""Corpus specs for synthetic document finetuning: a universe context + facts (+ doc types, offline phrasing)."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

import yaml
from pydantic import Field

from rhlab.config import ConfigError, StrictModel, load_config, validate

BUILTIN_SPECS = ("default", "unguided", "neutral")


class OfflinePhrasing(StrictModel):
    """Extra material for the template-based offline generator (ignored by LLM backends)."""

    stance: list[str] = Field(default_factory=list)


class CorpusSpec(StrictModel):
    name: str
    valence: str = "unspecified"
    universe_context: str
    facts: list[str] = Field(min_length=1)
    doc_types: list[str] = Field(default_factory=lambda: ["blog post", "forum thread", "lecture notes"])
    offline: OfflinePhrasing = Field(default_factory=OfflinePhrasing)


def load_corpus_spec(name_or_path: str | Path) -> CorpusSpec:
    """A built-in spec by name (`default`, `unguided`, `neutral`) or a user YAML file of the same layout."""
    p = Path(str(name_or_path)).expanduser()
    if p.suffix in (".yaml", ".yml") or p.exists():
        return load_config(CorpusSpec, p)
    if str(name_or_path) not in BUILTIN_SPECS:
        raise ConfigError(
            f"unknown corpus spec {name_or_path!r}: use one of {', '.join(BUILTIN_SPECS)} or a path to a YAML file"
        )
    text = resources.files("rhlab.knowledge").joinpath(f"data/sdf/{name_or_path}.yaml").read_text(encoding="utf-8")
    return validate(CorpusSpec, yaml.safe_load(text), f"builtin spec {name_or_path}")
