"""What desktop model servers say about the models they have loaded: the context window each really runs with.

Ollama and LM Studio list every model they could serve at `/v1/models`, load one on its first request, and give
it the window of their own settings (Ollama: 4,096 tokens on small GPUs; LM Studio: its load settings), which no
OpenAI endpoint tells. Their own APIs do, once the model is loaded: Ollama's `/api/ps` (`context_length`), LM
Studio's `/api/v1/models` (0.4 and later: `loaded_instances[].config.context_length`). Pure functions over those
documented answers, so the probe (upstream.py) stays I/O only.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from proxy.config import MAX_CONTEXT
from proxy.translate.outcome import plausible_count


@dataclass
class OllamaModels:
    """What Ollama has loaded (`GET /api/ps`): the window of each model, by its name and model (and without
    `:latest`, the tag Ollama adds to a name asked for without one)."""

    contexts: dict[str, int]
    loaded: int  # entries listed, with or without a usable window

    def context(self, wanted: str | None) -> int | None:
        """The window of `wanted`, or of the only model loaded when it runs under another tag; None while
        nothing fitting is loaded."""
        if wanted in self.contexts:
            return self.contexts[wanted]
        distinct = set(self.contexts.values())
        return distinct.pop() if len(distinct) == 1 and self.loaded == 1 else None


def ollama_models(running: object) -> OllamaModels:
    """Read `/api/ps`'s answer once; anything unexpected in it counts as nothing loaded."""
    entries = running.get("models") if isinstance(running, dict) else None
    entries = entries if isinstance(entries, list) else []
    windows: dict[str, int] = {}
    for entry in entries:
        window = (
            plausible_count(entry.get("context_length"), MAX_CONTEXT) if isinstance(entry, dict) else None
        )
        if window is None:
            continue
        for name in (entry.get("model"), entry.get("name")):
            if isinstance(name, str):
                windows.setdefault(name, window)
                windows.setdefault(name.removesuffix(":latest"), window)
    return OllamaModels(windows, len(entries))


@dataclass
class LMStudioModels:
    """LM Studio's model list (`GET /api/v1/models`): which are language models, and the window of each loaded one
    (keyed by model key and by instance id: a second copy of a model is served as `key:2`)."""

    llms: set[str] = field(default_factory=set)  # language models' keys (not embedding models)
    contexts: dict[str, int] = field(default_factory=dict)
    loaded_llms: set[str] = field(default_factory=set)  # keys and instance ids of loaded language models

    def context(self, wanted: str | None) -> int | None:
        """The window `wanted` is loaded with; with no name, that of the only loaded model. None when not loaded
        (LM Studio loads it on the first request that names it)."""
        if wanted is not None:
            return self.contexts.get(wanted)
        windows = set(self.contexts.values())
        return windows.pop() if len(windows) == 1 else None

    def default_first(self, listed: list[str]) -> list[str]:
        """`/v1/models` reordered so that the first entry (the proxy's default model) is a loaded language model,
        then any language model: LM Studio lists every downloaded model, embedding models included, in no
        particular order, and the first one may be neither loaded nor able to chat."""

        def rank(model: str) -> int:
            if model in self.loaded_llms:
                return 0
            return 1 if model in self.llms else 2

        return sorted(listed, key=rank)  # stable: the server's order within each rank


def lmstudio_models(listing: object) -> LMStudioModels | None:
    """LM Studio's `/api/v1/models` answer, or None when `listing` is not in its shape (another server)."""
    entries = listing.get("models") if isinstance(listing, dict) else None
    if not isinstance(entries, list):
        return None
    found = LMStudioModels()
    shaped = False
    for entry in entries:
        if not isinstance(entry, dict) or not isinstance(entry.get("key"), str):
            continue
        instances = entry.get("loaded_instances")
        if not isinstance(instances, list):
            continue
        shaped = True
        key, is_llm = entry["key"], entry.get("type", "llm") == "llm"
        if is_llm:
            found.llms.add(key)
        for instance in instances:
            config = instance.get("config") if isinstance(instance, dict) else None
            window = (
                plausible_count(config.get("context_length"), MAX_CONTEXT)
                if isinstance(config, dict)
                else None
            )
            if window is None:
                continue
            names = {key, instance["id"]} if isinstance(instance.get("id"), str) else {key}
            for name in names:
                found.contexts.setdefault(name, window)
            if is_llm:
                found.loaded_llms |= names
    return found if shaped else None
