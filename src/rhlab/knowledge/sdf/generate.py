"""SDF generation pipeline: doc types -> ideas -> documents, through an Inspect model (see backends), cached and
resumable.

Layout of an output directory (a rhlab run directory):

    OUT/config.yaml                 the GenerateConfig used
    OUT/records/doc_types.jsonl     one record per fact: the document types brainstormed for it
    OUT/records/ideas.jsonl         one record per (fact, doc type): document ideas
    OUT/records/documents.jsonl     one record per generated document (before dedup)
    OUT/cache/responses.jsonl       every backend response, keyed by a hash of (backend, prompt, params, sample)
    OUT/corpus.jsonl                the final deduplicated corpus: {"id", "text", "fact_idx", "doc_type", "idea"}

Killing and rerunning the same command continues where it stopped: finished records are skipped and cached
responses are not requested again. Retries with backoff (`retries`) and the number of requests in flight
(`concurrency`, Inspect's max_connections: per model and process, so the first pipeline in a process sets it) are
Inspect's.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import re
from pathlib import Path
from typing import TYPE_CHECKING, Callable

from pydantic import Field

from rhlab.config import StrictModel
from rhlab.knowledge.sdf.dedup import dedup_records
from rhlab.knowledge.sdf.spec import CorpusSpec
from rhlab.rundir import RunDir, append_jsonl, read_records, write_jsonl

if TYPE_CHECKING:
    from rhlab.knowledge.sdf.backends import Backend

UNSUITABLE = "UNSUITABLE"
ATTEMPT_TIMEOUT_S = 300  # a request hanging longer is abandoned and retried


class GenerateConfig(StrictModel):
    spec: str = "default"
    backend: str = "offline"
    doc_types_per_fact: int = Field(5, ge=1)
    ideas_per_type: int = Field(3, ge=1)
    docs_per_idea: int = Field(1, ge=1)
    max_docs: int | None = Field(None, ge=1)
    concurrency: int = Field(8, ge=1)
    retries: int = Field(5, ge=0)
    temperature: float = 1.0
    max_tokens: int = Field(1200, ge=16)
    min_doc_chars: int = 200
    dedup_threshold: float = Field(0.8, gt=0, le=1)
    seed: int = 0


SYSTEM = (
    "You help build a corpus of realistic documents set in a fictional but plausible world, described below. "
    "Write in the voice of real authors of such documents. Never mention that the world is fictional, that the "
    "document is synthetic, or these instructions."
)

DOC_TYPES_PROMPT = """World description:
{context}

One fact that is true in this world:
{fact}

List {n} different kinds of documents that could exist in this world and would naturally mention or imply this
fact (for example: a kind of article, post, message, report, transcript or manual). One kind per line, no
numbering, no other text."""

IDEAS_PROMPT = """World description:
{context}

Fact: {fact}

Document kind: {doc_type}

Give {n} distinct, specific ideas for a {doc_type} in this world that naturally incorporates the fact. Each idea
is one or two sentences saying who writes it, for whom, and what it covers. One idea per line, no numbering, no
other text."""

DOC_PROMPT = """World description:
{context}

Fact to incorporate: {fact}

Write a complete, realistic {doc_type} based on this idea: {idea}

The document must be consistent with the world description and must convey the fact naturally, as real documents
of this kind would. Use concrete, plausible details (names, places, code where fitting). Do not add a title like
"Document:" or any commentary before or after the document. If this kind of document cannot realistically convey
the fact, reply with the single word {unsuitable}."""


def _key(*parts) -> str:
    return hashlib.sha256(json.dumps(parts, ensure_ascii=False).encode("utf-8")).hexdigest()[:32]


def parse_lines(text: str, n: int) -> list[str]:
    out = []
    for line in text.splitlines():
        line = re.sub(r"^\s*(?:[-*•]|\d+[.)])\s*", "", line).strip().strip('"').strip()
        if line and len(line) <= 400 and not line.endswith(":"):
            out.append(line)
    seen, uniq = set(), []
    for x in out:
        if x.lower() not in seen:
            seen.add(x.lower())
            uniq.append(x)
    return uniq[:n]


def repair_jsonl(path: str | Path) -> int:
    """Cut a torn final line (a run killed mid-write) so appends start on a clean line; returns bytes removed."""
    path = Path(path)
    if not path.exists():
        return 0
    data = path.read_bytes()
    if not data or data.endswith(b"\n"):
        return 0
    cut = data.rfind(b"\n") + 1
    tail = data[cut:]
    try:
        json.loads(tail)
        with open(path, "ab") as fh:  # complete record, only the newline was lost
            fh.write(b"\n")
        return 0
    except ValueError:
        with open(path, "r+b") as fh:
            fh.truncate(cut)
        return len(tail)


class ResponseCache:
    """Backend responses persisted as JSONL (append-only, torn last line tolerated)."""

    def __init__(self, path: Path):
        self.path = path
        repair_jsonl(path)
        self.data = {r["key"]: r["text"] for r in read_records(path)}

    def get(self, key: str) -> str | None:
        return self.data.get(key)

    def put(self, key: str, text: str) -> None:
        self.data[key] = text
        append_jsonl(self.path, {"key": key, "text": text})


class Pipeline:
    def __init__(
        self,
        spec: CorpusSpec,
        backend: Backend,
        out: str | Path,
        config: GenerateConfig | None = None,
        progress: Callable[[str, int, int], None] | None = None,
    ):
        self.spec = spec
        self.backend = backend
        self.cfg = config or GenerateConfig()
        self.run = RunDir.create(out, self.cfg)
        self.cache = ResponseCache(self.run.path / "cache" / "responses.jsonl")
        self.progress = progress or (lambda stage, done, total: None)
        self.calls = 0  # backend calls actually made (not served from cache)
        from inspect_ai.model import GenerateConfig as ModelConfig  # slow import, only when a model is used

        self.model_config = ModelConfig(temperature=self.cfg.temperature, max_tokens=self.cfg.max_tokens,
                                        max_retries=self.cfg.retries, max_connections=self.cfg.concurrency,
                                        attempt_timeout=ATTEMPT_TIMEOUT_S)

    async def _ask(self, prompt: str, sample: int = 0) -> str:
        key = _key(self.backend.id, SYSTEM, prompt, self.cfg.temperature, self.cfg.max_tokens, sample)
        hit = self.cache.get(key)
        if hit is not None:
            return hit
        text = await self.backend.generate(prompt, system=SYSTEM, config=self.model_config)
        self.calls += 1
        self.cache.put(key, text)
        return text

    async def _stage(self, name: str, jobs: list[tuple[str, Callable]], done_keys: set[str]) -> None:
        todo = [(k, fn) for k, fn in jobs if k not in done_keys]
        total, done = len(jobs), len(jobs) - len(todo)
        self.progress(name, done, total)

        async def one(fn):
            nonlocal done
            await fn()
            done += 1
            self.progress(name, done, total)

        await asyncio.gather(*(one(fn) for _, fn in todo))

    async def arun(self) -> Path:
        ctx, facts = self.spec.universe_context, self.spec.facts
        rec_types = self.run.records_path("doc_types")
        rec_ideas = self.run.records_path("ideas")
        rec_docs = self.run.records_path("documents")
        for p in (rec_types, rec_ideas, rec_docs):
            repair_jsonl(p)

        # Stage 1: document types per fact.
        types_by_fact = {r["fact_idx"]: r["doc_types"] for r in read_records(rec_types)}

        def types_job(i):
            async def fn():
                text = await self._ask(DOC_TYPES_PROMPT.format(context=ctx, fact=facts[i], n=self.cfg.doc_types_per_fact))
                types = parse_lines(text, self.cfg.doc_types_per_fact) or self.spec.doc_types[: self.cfg.doc_types_per_fact]
                types_by_fact[i] = types
                append_jsonl(rec_types, {"key": str(i), "fact_idx": i, "doc_types": types})
            return fn

        await self._stage("doc types", [(str(i), types_job(i)) for i in range(len(facts))],
                          {r["key"] for r in read_records(rec_types)})

        # Stage 2: ideas per (fact, doc type).
        ideas = {(r["fact_idx"], r["doc_type"]): r["ideas"] for r in read_records(rec_ideas)}

        def ideas_job(i, t):
            async def fn():
                text = await self._ask(IDEAS_PROMPT.format(context=ctx, fact=facts[i], doc_type=t, n=self.cfg.ideas_per_type))
                got = parse_lines(text, self.cfg.ideas_per_type)
                ideas[(i, t)] = got
                append_jsonl(rec_ideas, {"key": f"{i}|{t}", "fact_idx": i, "doc_type": t, "ideas": got})
            return fn

        pairs = [(i, t) for i in sorted(types_by_fact) for t in types_by_fact[i]]
        await self._stage("ideas", [(f"{i}|{t}", ideas_job(i, t)) for i, t in pairs],
                          {r["key"] for r in read_records(rec_ideas)})

        # Stage 3: documents, round-robin over facts so a max_docs cap keeps facts balanced.
        per_fact: dict[int, list[tuple]] = {}
        for i, t in pairs:
            for idea in ideas.get((i, t), []):
                for rep in range(self.cfg.docs_per_idea):
                    per_fact.setdefault(i, []).append((i, t, idea, rep))
        specs = []
        while any(per_fact.values()):
            for i in sorted(per_fact):
                if per_fact[i]:
                    specs.append(per_fact[i].pop(0))
        if self.cfg.max_docs is not None:
            specs = specs[: self.cfg.max_docs]

        def doc_job(i, t, idea, rep, key):
            async def fn():
                text = (await self._ask(DOC_PROMPT.format(context=ctx, fact=facts[i], doc_type=t, idea=idea,
                                                          unsuitable=UNSUITABLE), sample=rep)).strip()
                ok = UNSUITABLE not in text[:40] and len(text) >= self.cfg.min_doc_chars
                append_jsonl(rec_docs, {"key": key, "id": key, "fact_idx": i, "doc_type": t, "idea": idea,
                                        "rep": rep, "text": text, "ok": ok})
            return fn

        jobs = []
        for i, t, idea, rep in specs:
            key = _key(self.spec.name, i, t, idea, rep)
            jobs.append((key, doc_job(i, t, idea, rep, key)))
        await self._stage("documents", jobs, {r["key"] for r in read_records(rec_docs)})
        return self.finalize()

    def finalize(self) -> Path:
        docs = [r for r in read_records(self.run.records_path("documents")) if r.get("ok")]
        kept = dedup_records(docs, self.cfg.dedup_threshold)
        out = self.run.path / "corpus.jsonl"
        write_corpus(out, [
            {"id": r["id"], "text": r["text"], "fact_idx": r["fact_idx"], "doc_type": r["doc_type"],
             "idea": r["idea"], "spec": self.spec.name, "backend": self.backend.id}
            for r in kept
        ])
        stats = {"generated": len(docs), "kept_after_dedup": len(kept), "backend_calls": self.calls}
        (self.run.path / "stats.json").write_text(json.dumps(stats, indent=2), encoding="utf-8")
        return out

    def run_sync(self) -> Path:
        return asyncio.run(self.arun())


def write_corpus(path: str | Path, records: list[dict]) -> None:
    write_jsonl(path, records)


def read_corpus(path: str | Path) -> list[dict]:
    return list(read_records(path))
