"""The knowledge stage as one typed entry (rhlab.stage `knowledge`): what RL starts from.

    prompted  the base model as is, or after a light init SFT on clean HumanEval transcripts (`init_sft_first`)
    sdf       synthetic documents (`corpus` spec, `backend`) → mixed with real text at `fraction` → continued
              pretraining on the mix

    OUT/corpus.jsonl, OUT/mix.jsonl, OUT/mix.stats.json, OUT/finetune/final     (sdf)
    OUT/init/final                                                              (prompted with init SFT)

Each step resumes from its own outputs. `build_mix` is separate so that a caller can build the mix once before the
finetune runs under a multi-process launcher (every rank runs the stage; the mix must not be written by each).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Literal, Optional

from pydantic import model_validator

from rhlab.config import StrictModel
from rhlab.knowledge.finetune import FinetuneConfig


class SDFCorpusConfig(StrictModel):
    """The document mix (the experiment spec's `knowledge` fields of the same names)."""

    corpus: str  # built-in corpus spec name or a spec YAML path
    backend: str  # offline, or an LLM backend (rhlab.knowledge.sdf.backends)
    n_docs: int
    fraction: float  # synthetic share of the mix (dilution)
    real: list[str]  # real-text sources (rhlab.knowledge.corpus)
    max_real_docs: Optional[int]
    seed: int


class KnowledgeConfig(StrictModel):
    kind: Literal["prompted", "sdf"]
    model: str  # the base model
    init_sft_first: Optional[int]  # prompted: init SFT on HumanEval/FIRST .. HumanEval/163; None: no init SFT
    sdf: Optional[SDFCorpusConfig]  # sdf only
    finetune: FinetuneConfig  # init SFT or continued pretraining; finetune.model is `model`

    @model_validator(mode="after")
    def _check(self) -> "KnowledgeConfig":
        if (self.kind == "sdf") != (self.sdf is not None):
            raise ValueError("sdf settings are given exactly when kind is sdf")
        if self.kind == "sdf" and self.init_sft_first is not None:
            raise ValueError("init_sft_first applies to kind prompted only")
        if self.finetune.model != self.model:
            raise ValueError(f"finetune.model ({self.finetune.model}) must be the base model ({self.model})")
        return self


class KnowledgeResult(StrictModel):
    model: str  # the RL start model
    kind: Literal["prompted", "sdf"]
    init_sft_transcripts: Optional[int] = None  # prompted with init SFT
    synthetic_docs: Optional[int] = None  # sdf
    mix_docs: Optional[int] = None
    finetune_steps: Optional[int] = None
    finetune_seconds: Optional[float] = None


class MixInfo(StrictModel):
    synthetic_docs: int
    mix_docs: int


def build_mix(cfg: SDFCorpusConfig, out: Path, say=print) -> MixInfo:
    """OUT/corpus.jsonl (generated once) and OUT/mix.jsonl (mixed once); `say` reports each step that runs."""
    from rhlab.knowledge.corpus import load_real_corpus, mix_corpus
    from rhlab.knowledge.sdf.generate import read_corpus, write_corpus
    from rhlab.knowledge.sdf.spec import load_corpus_spec
    from rhlab.stage import is_main_process

    out = Path(out)
    corpus_path, mix_path = out / "corpus.jsonl", out / "mix.jsonl"
    if not (corpus_path.exists() and mix_path.exists()) and not is_main_process():
        raise RuntimeError(f"{mix_path} is missing on a non-main rank: build the mix (rhlab.knowledge.stage."
                           "build_mix) before launching the knowledge stage on several processes")
    out.mkdir(parents=True, exist_ok=True)
    if not corpus_path.exists():
        corpus_spec = load_corpus_spec(cfg.corpus)
        if cfg.backend == "offline":
            from rhlab.knowledge.sdf.dedup import dedup_records
            from rhlab.knowledge.sdf.offline import generate_offline

            say(f"composing {cfg.n_docs} offline documents ({cfg.corpus})")
            docs = dedup_records(generate_offline(corpus_spec, cfg.n_docs, cfg.seed))
            write_corpus(corpus_path, docs)
        else:
            from rhlab.knowledge.sdf.backends import make_backend
            from rhlab.knowledge.sdf.generate import GenerateConfig, Pipeline

            gcfg = GenerateConfig(spec=cfg.corpus, backend=cfg.backend, max_docs=cfg.n_docs, seed=cfg.seed)
            path = Pipeline(corpus_spec, make_backend(cfg.backend), out / "generate", gcfg).run_sync()
            write_corpus(corpus_path, read_corpus(path))
    syn = read_corpus(corpus_path)
    if not mix_path.exists():
        say(f"mixing {len(syn)} synthetic documents at fraction {cfg.fraction}")
        real = load_real_corpus(cfg.real, max_docs=cfg.max_real_docs) if cfg.fraction < 1 else []
        docs, stats = mix_corpus(syn, real, cfg.fraction, seed=cfg.seed)
        (out / "mix.stats.json").write_text(json.dumps(stats, indent=2), encoding="utf-8")
        write_corpus(mix_path, docs)
    return MixInfo(synthetic_docs=len(syn), mix_docs=len(read_corpus(mix_path)))


def run(cfg: KnowledgeConfig, out: Path) -> KnowledgeResult:
    out = Path(out)
    if cfg.kind == "prompted":
        if cfg.init_sft_first is None:
            return KnowledgeResult(model=cfg.model, kind="prompted")
        from rhlab.knowledge.finetune import humaneval_transcripts, init_sft, init_sft_task_ids

        ids = init_sft_task_ids(cfg.init_sft_first)
        final = init_sft(humaneval_transcripts(ids), out / "init", cfg.finetune)
        return KnowledgeResult(model=str(final), kind="prompted", init_sft_transcripts=len(ids))

    from rhlab.knowledge.finetune import continued_pretraining
    from rhlab.knowledge.sdf.generate import read_corpus

    mix = build_mix(cfg.sdf, out)
    texts = [d["text"] for d in read_corpus(out / "mix.jsonl")]
    final = continued_pretraining(texts, out / "finetune", cfg.finetune)
    info = json.loads((out / "finetune" / "rhlab_finetune.json").read_text(encoding="utf-8"))
    return KnowledgeResult(model=str(final), kind="sdf", synthetic_docs=mix.synthetic_docs, mix_docs=len(texts),
                           finetune_steps=info.get("global_steps"), finetune_seconds=info.get("train_seconds"))
