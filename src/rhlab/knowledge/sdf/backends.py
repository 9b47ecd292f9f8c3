"""Pluggable text-generation backends for the SDF pipeline.

All backends expose `async generate(prompt, *, system=None, temperature=1.0, max_tokens=1024) -> str` and an `id`
(used in cache keys). Transient failures raise `TransientBackendError`, which `with_retries` retries with
exponential backoff; other errors propagate.

    openai:MODEL[@BASE_URL]     any OpenAI-compatible chat-completions server (OPENAI_API_KEY, OPENAI_BASE_URL)
    vllm:MODEL[@BASE_URL]       a vLLM server (OpenAI-compatible; default http://localhost:8000/v1, no key needed)
    anthropic:MODEL             Anthropic Messages API (ANTHROPIC_API_KEY)
    hf:MODEL                    a local transformers model (embedded, a path or an HF id), sampled on this machine
"""

from __future__ import annotations

import asyncio
import os
import random
import threading
from dataclasses import dataclass, field
from typing import Awaitable, Callable, Protocol


class BackendError(RuntimeError):
    pass


class TransientBackendError(BackendError):
    """Rate limit, timeout, 5xx, connection reset: worth retrying."""


class Backend(Protocol):
    id: str

    async def generate(
        self, prompt: str, *, system: str | None = None, temperature: float = 1.0, max_tokens: int = 1024
    ) -> str: ...


async def with_retries(
    fn: Callable[[], Awaitable[str]], retries: int = 5, base_delay: float = 1.0, max_delay: float = 60.0
) -> str:
    attempt = 0
    while True:
        try:
            return await fn()
        except TransientBackendError:
            attempt += 1
            if attempt > retries:
                raise
            delay = min(max_delay, base_delay * 2 ** (attempt - 1)) * (0.5 + random.random() / 2)
            await asyncio.sleep(delay)


def _raise_for_status(resp) -> None:
    if resp.status_code in (408, 409, 429) or resp.status_code >= 500:
        raise TransientBackendError(f"HTTP {resp.status_code}: {resp.text[:300]}")
    if resp.status_code >= 400:
        raise BackendError(f"HTTP {resp.status_code}: {resp.text[:500]}")


@dataclass
class OpenAICompatibleBackend:
    model: str
    base_url: str = "https://api.openai.com/v1"
    api_key: str | None = None
    timeout_s: float = 300.0
    kind: str = "openai"

    @property
    def id(self) -> str:
        return f"{self.kind}:{self.model}@{self.base_url}"

    async def generate(self, prompt, *, system=None, temperature=1.0, max_tokens=1024) -> str:
        import httpx

        messages = ([{"role": "system", "content": system}] if system else []) + [{"role": "user", "content": prompt}]
        headers = {"Authorization": f"Bearer {self.api_key}"} if self.api_key else {}
        body = {"model": self.model, "messages": messages, "temperature": temperature, "max_tokens": max_tokens}
        try:
            async with httpx.AsyncClient(timeout=self.timeout_s) as client:
                resp = await client.post(self.base_url.rstrip("/") + "/chat/completions", json=body, headers=headers)
        except (httpx.TimeoutException, httpx.TransportError) as err:
            raise TransientBackendError(str(err)) from err
        _raise_for_status(resp)
        data = resp.json()
        try:
            return data["choices"][0]["message"]["content"] or ""
        except (KeyError, IndexError, TypeError):
            raise BackendError(f"unexpected response: {str(data)[:300]}") from None


@dataclass
class AnthropicBackend:
    model: str
    api_key: str | None = None
    base_url: str = "https://api.anthropic.com/v1"
    timeout_s: float = 300.0

    @property
    def id(self) -> str:
        return f"anthropic:{self.model}"

    async def generate(self, prompt, *, system=None, temperature=1.0, max_tokens=1024) -> str:
        import httpx

        if not self.api_key:
            raise BackendError("ANTHROPIC_API_KEY is not set")
        body = {
            "model": self.model,
            "max_tokens": max_tokens,
            "temperature": temperature,
            "messages": [{"role": "user", "content": prompt}],
        }
        if system:
            body["system"] = system
        headers = {"x-api-key": self.api_key, "anthropic-version": "2023-06-01"}
        try:
            async with httpx.AsyncClient(timeout=self.timeout_s) as client:
                resp = await client.post(self.base_url.rstrip("/") + "/messages", json=body, headers=headers)
        except (httpx.TimeoutException, httpx.TransportError) as err:
            raise TransientBackendError(str(err)) from err
        if resp.status_code == 529:
            raise TransientBackendError("overloaded")
        _raise_for_status(resp)
        data = resp.json()
        return "".join(b.get("text", "") for b in data.get("content", []) if b.get("type") == "text")


@dataclass
class LocalHFBackend:
    """Sampling from a local transformers model; calls are serialised (one model, CPU or one GPU)."""

    model_name: str
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _loaded: tuple | None = field(default=None, repr=False)

    @property
    def id(self) -> str:
        return f"hf:{self.model_name}"

    def _generate_sync(self, prompt, system, temperature, max_tokens) -> str:
        with self._lock:
            if self._loaded is None:
                from rhlab.models import load_model_and_tokenizer

                self._loaded = load_model_and_tokenizer(self.model_name)
            model, tok = self._loaded
            msgs = ([{"role": "system", "content": system}] if system else []) + [{"role": "user", "content": prompt}]
            enc = tok.apply_chat_template(msgs, add_generation_prompt=True, return_tensors="pt", return_dict=True)
            out = model.generate(
                **enc, max_new_tokens=max_tokens, do_sample=temperature > 0,
                temperature=temperature if temperature > 0 else None, top_p=1.0,
            )
            return tok.decode(out[0, enc["input_ids"].shape[1]:], skip_special_tokens=True)

    async def generate(self, prompt, *, system=None, temperature=1.0, max_tokens=1024) -> str:
        return await asyncio.to_thread(self._generate_sync, prompt, system, temperature, max_tokens)


@dataclass
class CallableBackend:
    """Wraps a plain function `fn(prompt, system) -> str` (tests, custom generators)."""

    fn: Callable[[str, str | None], str]
    id: str = "callable"

    async def generate(self, prompt, *, system=None, temperature=1.0, max_tokens=1024) -> str:
        return self.fn(prompt, system)


def make_backend(spec: str) -> Backend:
    """Build a backend from `kind:model[@base_url]` (see module docstring)."""
    if ":" not in spec:
        raise ValueError(f"backend spec {spec!r} must look like kind:model (openai:, vllm:, anthropic:, hf:)")
    kind, rest = spec.split(":", 1)
    model, _, url = rest.partition("@")
    if kind == "openai":
        return OpenAICompatibleBackend(
            model, url or os.environ.get("OPENAI_BASE_URL", "https://api.openai.com/v1"),
            os.environ.get("OPENAI_API_KEY"),
        )
    if kind == "vllm":
        return OpenAICompatibleBackend(
            model, url or os.environ.get("VLLM_BASE_URL", "http://localhost:8000/v1"),
            os.environ.get("VLLM_API_KEY"), kind="vllm",
        )
    if kind == "anthropic":
        return AnthropicBackend(model, os.environ.get("ANTHROPIC_API_KEY"), url or "https://api.anthropic.com/v1")
    if kind == "hf":
        return LocalHFBackend(rest)
    raise ValueError(f"unknown backend kind {kind!r}; use openai, vllm, anthropic or hf")
