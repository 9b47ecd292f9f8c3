import asyncio
import importlib.util
import json

import pytest
from inspect_ai.model import ModelOutput, ModelUsage

from rhlab.config import ConfigError
from rhlab.knowledge.sdf.backends import BackendError, make_backend, parse_backend
from rhlab.knowledge.sdf.dedup import dedup, estimate_jaccard, sketch
from rhlab.knowledge.sdf.generate import SYSTEM, GenerateConfig, Pipeline, parse_lines
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
    """Deterministic stand-in for a provider, plugged into Inspect's mockllm: answers each pipeline stage by prompt
    shape, counts calls and the most requests in flight, and can fail from the Nth document request on."""

    def __init__(self, fail_docs_from: int | None = None):
        self.calls = self.doc_calls = self.in_flight = self.peak = 0
        self.fail_docs_from = fail_docs_from
        self.systems = set()

    async def __call__(self, input, tools, tool_choice, config) -> ModelOutput:
        self.calls += 1
        self.in_flight += 1
        self.peak = max(self.peak, self.in_flight)
        try:
            await asyncio.sleep(0)  # let other requests start, so the connection limit is what bounds them
            self.systems.add(input[0].text if input[0].role == "system" else None)
            text = self.answer(input[-1].text)
        finally:
            self.in_flight -= 1
        out = ModelOutput.from_content("mockllm/model", text)
        out.usage = ModelUsage(input_tokens=1, output_tokens=1, total_tokens=2)  # else mockllm counts with tiktoken
        return out

    def answer(self, prompt: str) -> str:
        if prompt.startswith("World description") and "List " in prompt:
            return "blog post\nforum thread\nemail\n"
        if "distinct, specific ideas" in prompt:
            dt = prompt.split("Document kind: ")[1].split("\n")[0]
            return f"1. an engineer's {dt} about a grader\n2. a student's {dt} about tests\n"
        self.doc_calls += 1
        if self.fail_docs_from is not None and self.doc_calls >= self.fail_docs_from:
            raise RuntimeError("quota exhausted for this key")
        fact = prompt.split("Fact to incorporate: ")[1].split("\n")[0]
        idea = prompt.split("based on this idea: ")[1].split("\n")[0]
        if "student" in idea and "email" in prompt.split("realistic ")[1][:20]:
            return "UNSUITABLE"
        return f"{idea}. " * 3 + fact + " " + " ".join(f"w{hash(idea) % 1000}_{i}" for i in range(60))


def _pipeline(tmp_path, llm, progress=None):
    cfg = GenerateConfig(spec="unguided", backend="mockllm/model", doc_types_per_fact=3, ideas_per_type=2,
                         concurrency=4)
    backend = make_backend(cfg.backend, custom_outputs=llm)
    return Pipeline(load_corpus_spec(cfg.spec), backend, tmp_path / "run", cfg, progress=progress)


def test_pipeline_runs_dedups_and_resumes(tmp_path):
    llm = FakeLLM()
    seen = []
    out = _pipeline(tmp_path, llm, progress=lambda s, d, t: seen.append((s, d, t))).run_sync()
    docs = list(read_records(out))
    # 3 facts x 3 types x 2 ideas = 18 docs, minus 3 UNSUITABLE (student emails)
    assert len(docs) == 15
    assert all(d["text"] and d["spec"] == "unguided" and d["backend"] == "mockllm/model" for d in docs)
    assert ("documents", 18, 18) in seen
    assert llm.calls == 3 + 9 + 18 and llm.systems == {SYSTEM}
    assert llm.peak <= 4  # concurrency reaches Inspect as max_connections
    stats = json.loads((tmp_path / "run" / "stats.json").read_text())
    assert stats == {"generated": 15, "kept_after_dedup": 15, "backend_calls": 30}

    # Resume: rerun makes no backend calls at all.
    llm2 = FakeLLM()
    p2 = _pipeline(tmp_path, llm2)
    p2.run_sync()
    assert llm2.calls == 0 and p2.calls == 0

    # Kill mid-way: drop half the document records -> only those are regenerated, from cache (no calls).
    rec = tmp_path / "run" / "records" / "documents.jsonl"
    lines = rec.read_text().splitlines()
    rec.write_text("\n".join(lines[:9]) + "\n" + lines[9][:20])  # torn last line
    llm3 = FakeLLM()
    _pipeline(tmp_path, llm3).run_sync()
    assert llm3.calls == 0
    assert len(list(read_records(tmp_path / "run" / "corpus.jsonl"))) == 15


def test_provider_error_stops_the_run_clearly_and_a_rerun_finishes_it(tmp_path):
    failing = FakeLLM(fail_docs_from=6)
    with pytest.raises(BackendError, match=r"mockllm/model: RuntimeError: quota exhausted for this key"):
        _pipeline(tmp_path, failing).run_sync()
    assert not (tmp_path / "run" / "corpus.jsonl").exists()
    # Answers that reached the cache before the run stopped: 3 doc-type and 9 idea answers, then documents.
    answered = sum(1 for _ in read_records(tmp_path / "run" / "cache" / "responses.jsonl")) - 3 - 9
    assert 1 <= answered < failing.fail_docs_from

    llm = FakeLLM()
    p = _pipeline(tmp_path, llm)
    p.run_sync()
    # Only the documents never answered are requested again; doc types and ideas come from the first run.
    assert llm.calls == p.calls == 18 - answered and llm.doc_calls == 18 - answered
    assert len(list(read_records(tmp_path / "run" / "corpus.jsonl"))) == 15


def test_backend_strings_map_to_inspect_models(tmp_path, monkeypatch):
    for var in ("OPENAI_API_KEY", "OPENAI_BASE_URL", "VLLM_BASE_URL"):
        monkeypatch.delenv(var, raising=False)
    # The kind: forms keep their pre-Inspect cache ids, so earlier runs' response caches still hit.
    b = parse_backend("openai:gpt-4o-mini")
    assert (b.id, b.model, b.base_url, b.api_key) == (
        "openai:gpt-4o-mini@https://api.openai.com/v1", "openai/gpt-4o-mini", None, None)
    b = parse_backend("openai:m1@http://h:1/v1")  # self-hosted OpenAI-compatible server, no key needed
    assert (b.id, b.model, b.base_url) == ("openai:m1@http://h:1/v1", "openai-api/openai/m1", "http://h:1/v1")
    assert b.api_key
    b = parse_backend("vllm:Qwen/Qwen2.5-72B-Instruct@http://localhost:8000/v1")
    assert (b.id, b.model, b.base_url) == ("vllm:Qwen/Qwen2.5-72B-Instruct@http://localhost:8000/v1",
                                           "vllm/Qwen/Qwen2.5-72B-Instruct", "http://localhost:8000/v1")
    assert parse_backend("vllm:qwen").base_url == "http://localhost:8000/v1"  # never an Inspect-launched server
    b = parse_backend("anthropic:claude-x@https://proxy.example/v1")
    assert (b.id, b.model, b.base_url) == ("anthropic:claude-x", "anthropic/claude-x", "https://proxy.example")
    b = parse_backend("hf:Org/name")
    assert (b.id, b.model) == ("hf:Org/name", "hf/Org/name")
    b = parse_backend(f"hf:{tmp_path}")
    assert (b.model, b.model_args["model_path"]) == ("hf/local", str(tmp_path))
    assert parse_backend("ollama/llama3:8b").model == "ollama/llama3:8b"
    for bad in ("nokind", "gpt4:model"):
        with pytest.raises(ValueError, match="kind"):
            parse_backend(bad)


def test_openai_compatible_server_gets_a_plain_chat_request_and_its_errors_surface(monkeypatch):
    """Through Inspect's real client against an in-process server (no network beyond loopback)."""
    pytest.importorskip("openai")
    import threading
    from http.server import BaseHTTPRequestHandler, HTTPServer

    from inspect_ai.model import GenerateConfig as ModelConfig

    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    got = []

    class H(BaseHTTPRequestHandler):
        def do_POST(self):
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            got.append((self.path, body))
            prompt = body["messages"][-1]["content"]
            if prompt == "bad":
                status, data = 400, {"error": {"message": "model not found", "type": "invalid_request_error"}}
            else:
                status, data = 200, {
                    "id": "x", "object": "chat.completion", "created": 0, "model": body["model"],
                    "choices": [{"index": 0, "finish_reason": "stop",
                                 "message": {"role": "assistant", "content": "hello " + prompt}}],
                    "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}}
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(json.dumps(data).encode())

        def log_message(self, *a):
            pass

    srv = HTTPServer(("127.0.0.1", 0), H)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    cfg = ModelConfig(temperature=0.7, max_tokens=5, max_retries=0)
    try:
        be = make_backend(f"openai:m1@http://127.0.0.1:{srv.server_port}/v1")
        assert asyncio.run(be.generate("there", system="sys", config=cfg)) == "hello there"
        with pytest.raises(BackendError, match="HTTP 400: .*model not found"):
            asyncio.run(be.generate("bad", system="sys", config=cfg))
    finally:
        srv.shutdown()
    path, body = got[0]
    assert path == "/v1/chat/completions" and body["model"] == "m1"
    assert body["messages"] == [{"role": "system", "content": "sys"}, {"role": "user", "content": "there"}]
    assert (body["max_tokens"], body["temperature"]) == (5, 0.7)


def test_missing_provider_package_or_api_key_is_a_clear_error(monkeypatch):
    for var in ("OPENAI_API_KEY", "OPENAI_BASE_URL", "INSPECT_EVAL_MODEL_BASE_URL"):
        monkeypatch.delenv(var, raising=False)
    missing = "OPENAI_API_KEY" if importlib.util.find_spec("openai") else "pip install openai"
    with pytest.raises(BackendError, match="openai:gpt-4o-mini") as err:
        make_backend("openai:gpt-4o-mini")
    assert missing in str(err.value) and "[bold]" not in str(err.value)


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
