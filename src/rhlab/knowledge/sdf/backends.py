"""Text-generation backends for the SDF pipeline: Inspect AI models (`inspect_ai.model.get_model`).

Inspect owns the provider clients, retries with backoff, rate limits and connection concurrency; this module only
turns a backend string into an Inspect model and gives it the `id` that keys the pipeline's response cache.

    openai:MODEL[@BASE_URL]     openai/MODEL on OpenAI (OPENAI_API_KEY), or openai-api/openai/MODEL on another
                                OpenAI-compatible server (BASE_URL or OPENAI_BASE_URL; a key is optional)
    vllm:MODEL[@BASE_URL]       vllm/MODEL on a running vLLM server (default http://localhost:8000/v1, VLLM_BASE_URL,
                                VLLM_API_KEY); never starts a server of its own
    anthropic:MODEL[@BASE_URL]  anthropic/MODEL (ANTHROPIC_API_KEY)
    hf:MODEL                    Inspect's hf provider on a local transformers model (embedded, a path or an HF id),
                                on this machine's CPU in float32
    PROVIDER/MODEL              any other Inspect model name as is (google/..., together/..., mockllm/model, ...)

The `kind:` forms keep the cache ids they had before Inspect, so response caches of earlier runs still hit.
Inspect's provider packages are optional: a missing one (e.g. `openai`) or a missing API key is a BackendError
when the backend is built, before any generation.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # inspect_ai takes ~2s to import; offline generation and `sdf mix` never need it
    from inspect_ai.model import GenerateConfig, Model

OPENAI_DEFAULT_URL = "https://api.openai.com/v1"
VLLM_DEFAULT_URL = "http://localhost:8000/v1"
KINDS = ("openai", "vllm", "anthropic", "hf")


class BackendError(RuntimeError):
    pass


@dataclass(frozen=True)
class BackendSpec:
    """What a backend string means: the Inspect model to build and the id our response cache keys on."""

    id: str
    model: str
    base_url: str | None = None
    api_key: str | None = None
    model_args: dict[str, Any] = field(default_factory=dict)


def parse_backend(spec: str) -> BackendSpec:
    """Map a backend string (see module docstring) to an Inspect model name and arguments."""
    kind, sep, rest = spec.partition(":")
    if not sep or "/" in kind:
        if "/" in spec:  # already an Inspect model name
            return BackendSpec(id=spec, model=spec)
        raise ValueError(f"backend spec {spec!r} must look like kind:model ({', '.join(k + ':' for k in KINDS)}) "
                         "or be an Inspect model name (provider/model)")
    model, _, url = rest.partition("@")
    if kind == "openai":
        base = url or os.environ.get("OPENAI_BASE_URL", OPENAI_DEFAULT_URL)
        custom = base.rstrip("/") != OPENAI_DEFAULT_URL
        cache_id = f"openai:{model}@{base}"
        if not custom:
            return BackendSpec(id=cache_id, model=f"openai/{model}")
        # Another server: Inspect's generic OpenAI-compatible client (plain chat completions; its `openai/` client
        # takes unknown names for new OpenAI models and drops temperature). Such servers often need no key,
        # Inspect's client insists on one.
        return BackendSpec(id=cache_id, model=f"openai-api/openai/{model}", base_url=base,
                           api_key=os.environ.get("OPENAI_API_KEY") or "none")
    if kind == "vllm":
        # An explicit URL keeps Inspect from launching its own vLLM server.
        base = url or os.environ.get("VLLM_BASE_URL", VLLM_DEFAULT_URL)
        return BackendSpec(id=f"vllm:{model}@{base}", model=f"vllm/{model}", base_url=base)
    if kind == "anthropic":
        # The Anthropic SDK adds /v1 itself; URLs here used to include it.
        base = url.rstrip("/").removesuffix("/v1") if url else None
        return BackendSpec(id=f"anthropic:{model}", model=f"anthropic/{model}", base_url=base)
    if kind == "hf":
        from rhlab.models import resolve_model  # prepares the embedded model, merges LoRA adapters

        path = resolve_model(rest)
        args: dict[str, Any] = {"device": "cpu", "dtype": "float32"}  # how this backend always sampled
        if Path(path).is_dir():
            return BackendSpec(id=f"hf:{rest}", model="hf/local", model_args={"model_path": path, **args})
        return BackendSpec(id=f"hf:{rest}", model=f"hf/{rest}", model_args=args)
    raise ValueError(f"unknown backend kind {kind!r}; use {', '.join(KINDS)}, or an Inspect model name")


@dataclass(frozen=True)
class Backend:
    """An Inspect model plus the id that keys the response cache."""

    id: str
    model: Model

    async def generate(self, prompt: str, *, system: str | None, config: GenerateConfig) -> str:
        from inspect_ai.model import ChatMessageSystem, ChatMessageUser

        messages = ([ChatMessageSystem(content=system)] if system else []) + [ChatMessageUser(content=prompt)]
        try:  # reaching here means Inspect's retries are used up or the error is not retryable
            output = await self.model.generate(messages, config=config)
        except Exception as err:
            raise BackendError(f"backend {self.id}: {_provider_message(err)}") from err
        if output.error:
            raise BackendError(f"backend {self.id}: {output.error}")
        return output.completion


def make_backend(spec: str, **model_args: Any) -> Backend:
    """Build the Inspect model for a backend string; `model_args` go to the provider (e.g. mockllm's
    `custom_outputs`). A missing provider package or API key raises BackendError here."""
    from inspect_ai.model import get_model

    parsed = parse_backend(spec)
    try:
        model = get_model(parsed.model, base_url=parsed.base_url, api_key=parsed.api_key,
                          **{**parsed.model_args, **model_args})
    except Exception as err:
        raise BackendError(f"cannot use backend {spec!r}: {_plain(err)}") from err
    return Backend(parsed.id, model)


def _provider_message(err: Exception) -> str:
    """Inspect's ModelGenerateError text starts with the whole request (our prompts run to pages); say what the
    provider answered instead."""
    status, message = getattr(err, "status_code", None), getattr(err, "provider_message", None)
    if message:
        return f"HTTP {status}: {message}" if status else str(message)
    return f"{type(err).__name__}: {err}"


def _plain(err: Exception) -> str:
    """The message of an error; Inspect's prerequisite errors (missing package or key) carry rich markup
    ([bold]...) meant for its console, printed here as plain text."""
    if type(err).__name__ != "PrerequisiteError":
        return str(err)
    from rich.text import Text

    return Text.from_markup(str(err)).plain.strip()
