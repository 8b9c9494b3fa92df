"""One backend as the request handlers see it: its connection pool and limits (`Upstream`) and what its latest
probe found (kind, models, context length), re-probed while it is down.

The proxy has one of these for `upstream` and one for each other backend a model route names
(`haiku: {model: …, upstream: http://127.0.0.1:8001/v1}`), so that each server's context length, tokenizer,
thinking style and concurrency limit apply to the requests routed to it.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from dataclasses import dataclass, field

from proxy.config import Config
from proxy.translate.request import MAX_OPENAI_STOP, BackendProfile
from proxy.upstream import BackendInfo, Upstream

REPROBE_INTERVAL = 2.0  # seconds between probe retries while the backend is down
REPROBE_WAIT = 1.0  # longest a request waits for such a retry before going on with what is known
THINKING_BY_KIND = {
    "llamacpp": "chat_template_kwargs",
    "vllm": "chat_template_kwargs",
    "sglang": "chat_template_kwargs",
    "openai": "reasoning_effort",
    "ollama": "reasoning_effort",
    "lmstudio": "reasoning_effort",
}


ANY_NUMBER_OF_STOPS = frozenset({"llamacpp", "vllm", "sglang", "ollama", "lmstudio"})
LOADS_ON_DEMAND = (
    "ollama",
    "lmstudio",
)  # servers that load a model on its first request, with their own window


MAX_AWAITED_WINDOWS = 64  # models whose window a re-probe looks for (names a server lists, so few)


@dataclass(frozen=True)
class BackendFacts:
    """The probe result as a request uses it: backend kind, default model, context length, thinking profile.

    `context_length` is the default model's (or the configured one). A server that loads models on demand gives
    each its own window, in `model_contexts` once loaded; `probed_model` is the one `context_length` is for."""

    kind: str
    default_model: str | None
    context_length: int | None
    profile: BackendProfile
    model_contexts: dict[str, int] = field(default_factory=dict)
    probed_model: str | None = None
    context_fixed: bool = False  # set with --context-length / context_length: it holds for every model

    def context_for(self, model: str) -> int | None:
        """The window `model` runs with: the server's one window, or on Ollama and LM Studio that model's own
        (None until it is loaded: the default model's window says nothing about it)."""
        if self.context_fixed or self.kind not in LOADS_ON_DEMAND:
            return self.context_length
        if model in self.model_contexts:
            return self.model_contexts[model]
        return self.context_length if model == self.probed_model else None


def backend_profile(config: Config, kind: str) -> BackendProfile:
    """How thinking reaches this backend: `auto` picks by the kind the probe detected."""
    style = THINKING_BY_KIND.get(kind, "none") if config.thinking == "auto" else config.thinking
    return BackendProfile(
        thinking_style=style,
        send_reasoning_back=config.send_reasoning_back,
        max_output_tokens=config.max_output_tokens,
        max_stop_sequences=None if kind in ANY_NUMBER_OF_STOPS else MAX_OPENAI_STOP,
    )


@dataclass
class BackendState:
    """A backend's session and its latest probe result. `config` is the proxy's, with this backend's URL."""

    config: Config
    upstream: Upstream
    info: BackendInfo | None = None
    probed_at: float = 0.0
    _probe_lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    _reprobe: asyncio.Task | None = None
    _facts: BackendFacts | None = None
    _facts_from: BackendInfo | None = None
    _awaited: set[str] = field(default_factory=set)  # listed models asked for whose window is not known yet

    async def probe(self) -> BackendInfo:
        async with self._probe_lock:
            self.upstream.needs_probe = False
            self.info = await self.upstream.probe()
            self.probed_at = time.monotonic()
            return self.info

    async def backend(self, max_age: float | None = None) -> BackendInfo | None:
        """The probe result. While the backend has not answered, since a request found it down or without the
        model (a restart, maybe with another model), or while it is an Ollama or LM Studio with the model not
        loaded yet, or when the result is older than `max_age`, it is re-probed at most every 2 s; a request
        waits at most REPROBE_WAIT for that (a hanging backend must not stall every request by the probe time)."""
        if not self.config.probe_backend:
            return self.info
        if self.info is None:
            return await self.probe()
        age = time.monotonic() - self.probed_at
        stale = self.upstream.needs_probe or (max_age is not None and age > max_age)
        if (stale or self._incomplete(self.info)) and age > REPROBE_INTERVAL:
            if self._reprobe is None or self._reprobe.done():
                self._reprobe = asyncio.ensure_future(self.probe())
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(self._reprobe), REPROBE_WAIT)
        return self.info

    def _incomplete(self, info: BackendInfo) -> bool:
        """Worth probing again: the backend is down, or it is an Ollama or LM Studio whose context is only known
        once it has loaded the model (the first request loads it)."""
        if not info.reachable:
            return True
        if info.kind not in LOADS_ON_DEMAND or self.config.context_length:
            return False
        self._awaited -= info.model_contexts.keys()
        return info.context_length is None or bool(self._awaited)

    def window(self, facts: BackendFacts, model: str) -> int | None:
        """`model`'s context window. On a server that loads models on demand, a listed model whose window is not
        known yet (its first request loads it) is looked for by the next re-probe."""
        window = facts.context_for(model)
        info = self.info
        listed = info is not None and (model in info.models or f"{model}:latest" in info.models)
        if (
            window is None
            and facts.kind in LOADS_ON_DEMAND
            and listed
            and len(self._awaited) < MAX_AWAITED_WINDOWS
        ):
            self._awaited.add(model)
        return window

    async def close(self) -> None:
        """Stop a re-probe still running, then close the backend session."""
        if self._reprobe is not None and not self._reprobe.done():
            self._reprobe.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reprobe
        await self.upstream.close()

    async def facts(self) -> BackendFacts:
        """What a request needs from the latest probe, built once per probe result (read on every request)."""
        info = await self.backend()
        if self._facts is None or self._facts_from is not info:
            self._facts_from = info
            self._facts = BackendFacts(
                kind=info.kind if info else "unknown",
                default_model=info.models[0] if info and info.models else None,
                context_length=self.config.context_length or (info.context_length if info else None),
                profile=backend_profile(self.config, info.kind if info else "unknown"),
                model_contexts=info.model_contexts if info else {},
                probed_model=self.config.model or (info.models[0] if info and info.models else None),
                context_fixed=bool(self.config.context_length),
            )
        return self._facts

    async def context_length(self) -> int | None:
        return (await self.facts()).context_length  # the configured length wins there already
