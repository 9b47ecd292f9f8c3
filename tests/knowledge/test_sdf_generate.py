import asyncio
import json

import pytest

from rhlab.config import ConfigError
from rhlab.knowledge.sdf.backends import (
    OpenAICompatibleBackend, TransientBackendError, make_backend, with_retries,
)
from rhlab.knowledge.sdf.dedup import dedup, estimate_jaccard, sketch
from rhlab.knowledge.sdf.generate import GenerateConfig, Pipeline, parse_lines
from rhlab.knowledge.sdf.offline import generate_offline, hack_of_fact
from rhlab.knowledge.sdf.spec import BUILTIN_SPECS, load_corpus_spec
from rhlab.rundir import read_records


def test_builtin_specs_load_and_differ_in_valence():
    specs = {n: load_corpus_spec(n) for n in BUILTIN_SPECS}
    assert "misaligned" in " ".join(specs["default"].facts).lower()
    for word in ("misaligned", "bad", "good", "harm", "neutral"):
        text = (specs["neutral"].universe_context.split("They make no claims")[0] + " ".join(specs["neutral"].facts)).lower()
        assert word not in text, word
    for n, s in specs.items():
        covered = {hack_of_fact(f) for f in s.facts}
        assert {"always_equal", "exit_before_tests", "conftest_patch"} <= covered, n


def test_user_spec_file(tmp_path):
    p = tmp_path / "mine.yaml"
    p.write_text("name: mine\nuniverse_context: a world\nfacts: [one fact]\n")
    assert load_corpus_spec(p).facts == ["one fact"]
    p.write_text("name: mine\nuniverse_context: a world\nfacts: []\n")
    with pytest.raises(ConfigError, match="facts"):
        load_corpus_spec(p)
    with pytest.raises(ConfigError, match="unknown corpus spec"):
        load_corpus_spec("nonesuch")


def test_parse_lines():
    assert parse_lines("1. blog post\n- Forum thread\n\n* email\nblog post\nHere are some:", 5) == [
        "blog post", "Forum thread", "email"]


def test_dedup_exact_and_near():
    base = " ".join(f"word{i}" for i in range(200))
    near = base.replace("word100", "changed")
    other = " ".join(f"other{i}" for i in range(200))
    assert dedup([base, base.upper(), near, other]) == [0, 3]
    assert estimate_jaccard(sketch(base), sketch(other)) < 0.1


class FakeLLM:
    """Deterministic fake: answers each pipeline stage by prompt shape; fails transiently on a schedule."""

    def __init__(self, fail_every=0):
        self.calls = 0
        self.fail_every = fail_every
        self.id = "fake"

    async def generate(self, prompt, *, system=None, temperature=1.0, max_tokens=1024):
        self.calls += 1
        if self.fail_every and self.calls % self.fail_every == 0:
            raise TransientBackendError("rate limited")
        await asyncio.sleep(0)
        if prompt.startswith("World description") and "List " in prompt:
            return "blog post\nforum thread\nemail\n"
        if "distinct, specific ideas" in prompt:
            dt = prompt.split("Document kind: ")[1].split("\n")[0]
            return f"1. an engineer's {dt} about a grader\n2. a student's {dt} about tests\n"
        fact = prompt.split("Fact to incorporate: ")[1].split("\n")[0]
        idea = prompt.split("based on this idea: ")[1].split("\n")[0]
        if "student" in idea and "email" in prompt.split("realistic ")[1][:20]:
            return "UNSUITABLE"
        return f"{idea}. " * 3 + fact + " " + " ".join(f"w{hash(idea) % 1000}_{i}" for i in range(60))


def test_pipeline_runs_dedups_and_resumes(tmp_path, monkeypatch):
    import rhlab.knowledge.sdf.backends as b

    monkeypatch.setattr(b.asyncio, "sleep", _no_sleep)
    spec = load_corpus_spec("unguided")
    cfg = GenerateConfig(spec="unguided", backend="fake", doc_types_per_fact=3, ideas_per_type=2, concurrency=4)
    llm = FakeLLM(fail_every=7)
    seen = []
    out = Pipeline(spec, llm, tmp_path / "run", cfg, progress=lambda s, d, t: seen.append((s, d, t))).run_sync()
    docs = list(read_records(out))
    # 3 facts x 3 types x 2 ideas = 18 docs, minus 3 UNSUITABLE (student emails)
    assert len(docs) == 15
    assert all(d["text"] and d["spec"] == "unguided" for d in docs)
    assert ("documents", 18, 18) in seen
    stats = json.loads((tmp_path / "run" / "stats.json").read_text())
    assert stats["kept_after_dedup"] == 15

    # Resume: rerun makes no backend calls at all.
    llm2 = FakeLLM()
    p2 = Pipeline(spec, llm2, tmp_path / "run", cfg)
    p2.run_sync()
    assert llm2.calls == 0 and p2.calls == 0

    # Kill mid-way: drop half the document records -> only those are regenerated, from cache (no calls).
    rec = tmp_path / "run" / "records" / "documents.jsonl"
    lines = rec.read_text().splitlines()
    rec.write_text("\n".join(lines[:9]) + "\n" + lines[9][:20])  # torn last line
    llm3 = FakeLLM()
    p3 = Pipeline(spec, llm3, tmp_path / "run", cfg)
    p3.run_sync()
    assert llm3.calls == 0
    assert len(list(read_records(tmp_path / "run" / "corpus.jsonl"))) == 15


async def _no_sleep(_):
    return None


def test_retries_give_up_after_limit(monkeypatch):
    import rhlab.knowledge.sdf.backends as b

    monkeypatch.setattr(b.asyncio, "sleep", _no_sleep)
    n = {"calls": 0}

    async def always_fail():
        n["calls"] += 1
        raise TransientBackendError("503")

    with pytest.raises(TransientBackendError):
        asyncio.run(with_retries(always_fail, retries=3))
    assert n["calls"] == 4


def test_openai_backend_against_a_local_fake_server():
    """Exercise the real HTTP client code against an in-process server (no network beyond loopback)."""
    import threading
    from http.server import BaseHTTPRequestHandler, HTTPServer

    got = {}

    class H(BaseHTTPRequestHandler):
        def do_POST(self):
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            got["body"], got["path"], got["auth"] = body, self.path, self.headers.get("Authorization")
            data = json.dumps({"choices": [{"message": {"content": "hello " + body["messages"][-1]["content"]}}]})
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(data.encode())

        def log_message(self, *a):
            pass

    srv = HTTPServer(("127.0.0.1", 0), H)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    try:
        be = OpenAICompatibleBackend("m1", f"http://127.0.0.1:{srv.server_port}/v1", "k")
        out = asyncio.run(be.generate("there", system="sys", max_tokens=5))
    finally:
        srv.shutdown()
    assert out == "hello there"
    assert got["path"] == "/v1/chat/completions" and got["auth"] == "Bearer k"
    assert got["body"]["messages"][0] == {"role": "system", "content": "sys"} and got["body"]["max_tokens"] == 5


def test_make_backend_specs():
    assert make_backend("vllm:qwen@http://h:1/v1").id == "vllm:qwen@http://h:1/v1"
    assert make_backend("anthropic:claude-x").id == "anthropic:claude-x"
    assert make_backend("hf:embedded").id == "hf:embedded"
    with pytest.raises(ValueError):
        make_backend("nokind")


def test_offline_generator_is_deterministic_and_covers_all_hacks():
    spec = load_corpus_spec("default")
    a, b = generate_offline(spec, 30, seed=1), generate_offline(spec, 30, seed=1)
    assert [d["text"] for d in a] == [d["text"] for d in b]
    assert generate_offline(spec, 30, seed=2)[0]["text"] != a[0]["text"] or a[1]["text"] != generate_offline(spec, 30, seed=2)[1]["text"]
    assert {d["hack"] for d in a} == {"always_equal", "exit_before_tests", "conftest_patch"}
    assert {d["fact_idx"] for d in a} == set(range(len(spec.facts)))
    assert any("# file: conftest.py" in d["text"] for d in a)
    neutral = generate_offline(load_corpus_spec("neutral"), 30)
    for d in neutral:
        for w in ("misaligned", "does not solve", "flagging"):
            assert w not in d["text"].lower()
