"""Synthetic document finetuning: corpus specs, generation (LLM backends or offline), mixing, training."""

from rhlab.knowledge.sdf.spec import BUILTIN_SPECS, CorpusSpec, load_corpus_spec

__all__ = ["BUILTIN_SPECS", "CorpusSpec", "load_corpus_spec"]
