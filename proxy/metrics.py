"""Prometheus metrics behind `GET /metrics`: what an operator graphs and alerts on.

Request rate and errors by type, time to first token, request duration, tokens, answers the proxy had to repair,
and the backend's queue. Requests are recorded from the `RequestLog` each one already fills (no second set of
timers on the hot path; label children are cached, so a request costs a few dict lookups and increments). Queue
gauges and dropped-feature counts are read from the proxy's state when scraped.

With `ccbench proxy --workers N` each worker writes to prometheus_client's multiprocess files in a directory the
parent made (`PROMETHEUS_MULTIPROC_DIR`), so a scrape answered by any worker reports the sum over all of them;
workers refresh their gauges every `GAUGE_REFRESH` seconds for that.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Mapping
from dataclasses import dataclass, field

import prometheus_client
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client import multiprocess as prometheus_multiprocess

from proxy.errors import TYPE_TO_STATUS
from proxy.requestlog import RequestLog

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
CONTENT_TYPE = prometheus_client.CONTENT_TYPE_LATEST
GAUGE_REFRESH = 1.0  # seconds between a worker's gauge updates (multiprocess mode only)
MAX_MODEL_LABELS = 64  # distinct model label values; a client-chosen name beyond that counts as "other"
OTHER = "other"
COUNT_TOKENS_ROUTE = "/v1/messages/count_tokens"
KNOWN_ERROR_TYPES = frozenset({*TYPE_TO_STATUS, "client_closed"})  # Anthropic's, and a client that went away
# Seconds. Claude Code turns take from milliseconds (an error, a cached answer) to minutes (a long local prefill).
LATENCY_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20, 30, 60, 120, 300, 600)

prometheus_client.disable_created_metrics()  # no `_created` series next to every counter: nobody graphs them


def use_multiprocess_values() -> None:
    """In a forked worker: write values to the multiprocess directory (prometheus_client picks its value class
    when imported, which happened in the parent, before the directory existed)."""
    prometheus_client.values.ValueClass = prometheus_client.values.MultiProcessValue()


def multiprocess_dir() -> str | None:
    path = os.environ.get(MULTIPROC_ENV)
    return path if path and os.path.isdir(path) else None


def remove_metrics_dir() -> None:
    """A worker outliving a parent killed with SIGKILL removes the workers' metrics directory, which the parent
    would have removed on any other exit (otherwise every `kill -9` left one behind in the temp directory). The
    other workers are stopping too; files they still have open go when they close them."""
    path = multiprocess_dir()
    if path is not None:
        shutil.rmtree(path, ignore_errors=True)


@dataclass
class ProxyMetrics:
    """The proxy's metrics in a registry of its own (several proxies in one process, as in tests, stay apart)."""

    registry: CollectorRegistry = field(default_factory=lambda: CollectorRegistry(auto_describe=True))
    _models: set[str] = field(default_factory=set)
    _children: dict[tuple, tuple] = field(default_factory=dict)  # (route, model, status, error) -> children
    _per_model: dict[str, tuple] = field(default_factory=dict)
    _dropped_seen: dict[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        r = self.registry
        self.requests = Counter(
            "ccbench_proxy_requests",
            "Requests answered, by route, backend model, HTTP status and Anthropic error type ('' when none).",
            ["route", "model", "status", "error_type"],
            registry=r,
        )
        self.duration = Histogram(
            "ccbench_proxy_request_duration_seconds",
            "From the request's arrival to the end of its answer (the stream's end for streams).",
            ["route", "model"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.ttft = Histogram(
            "ccbench_proxy_time_to_first_token_seconds",
            "From the request's arrival to the first content the client received.",
            ["model"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.input_tokens = Counter(
            "ccbench_proxy_input_tokens",
            "Prompt tokens the backend reported processing (not those served from its prompt cache; not "
            "count_tokens answers).",
            ["model"],
            registry=r,
        )
        self.cache_read_tokens = Counter(
            "ccbench_proxy_cache_read_input_tokens",
            "Prompt tokens the backend reported serving from its prompt cache.",
            ["model"],
            registry=r,
        )
        self.output_tokens = Counter(
            "ccbench_proxy_output_tokens", "Output tokens the backend reported.", ["model"], registry=r
        )
        self.problems = Counter(
            "ccbench_proxy_answer_problems",
            "Problems found in backend answers (repaired tool arguments, tool calls left as text, skipped "
            "chunks, answers cut at a max_tokens the proxy lowered); the request log has them at debug level.",
            ["model"],
            registry=r,
        )
        self.dropped = Counter(
            "ccbench_proxy_dropped_features",
            "Requests from which a request feature the backend cannot take was consumed or dropped.",
            ["feature"],
            registry=r,
        )
        self.in_flight = Gauge(
            "ccbench_proxy_backend_requests_in_flight",
            "Backend requests holding one of the backend's concurrency slots.",
            ["backend"],
            registry=r,
            multiprocess_mode="livesum",
        )
        self.queued = Gauge(
            "ccbench_proxy_backend_requests_queued",
            "Requests waiting for a slot of the backend.",
            ["backend"],
            registry=r,
            multiprocess_mode="livesum",
        )
        self.backend_up = Gauge(
            "ccbench_proxy_backend_up",
            "1 when the backend answered the latest probe, else 0.",
            ["backend"],
            registry=r,
            multiprocess_mode="livemostrecent",
        )

    def _model(self, value: object) -> str:
        """A bounded label: backend model names are few, but without a mapping a client's name passes through."""
        if not isinstance(value, str) or not value:
            return ""
        if value in self._models:
            return value
        if len(self._models) >= MAX_MODEL_LABELS or len(value) > 200:
            return OTHER
        self._models.add(value)
        return value

    def observe(self, entry: RequestLog, route: str) -> None:
        """Count one finished request (called once per request, where its log line is written)."""
        model = self._model(entry.backend_model)
        error_type = entry.error_type
        if error_type is not None and error_type not in KNOWN_ERROR_TYPES:
            error_type = OTHER  # a pass-through backend's own error type: any string it likes
        key = (route, model, entry.status, error_type)
        children = self._children.get(key)
        if children is None:  # a label lookup costs a lock and a tuple: done once per distinct key
            children = self._children[key] = (
                self.requests.labels(route, model, str(entry.status), error_type or ""),
                self.duration.labels(route, model),
            )
        children[0].inc()
        children[1].observe(entry.duration_ms / 1000.0)
        generated = route != COUNT_TOKENS_ROUTE  # count_tokens reports a count, not tokens processed
        counts = entry.input_tokens or entry.output_tokens or entry.cache_read_tokens
        if entry.ttft_ms is None and not entry.problems and not (generated and counts):
            return  # errors and non-model routes: no per-model series of zeros for them
        ttft, input_tokens, cache_read, output_tokens, problems = self._model_children(model)
        if entry.ttft_ms is not None:
            ttft.observe(entry.ttft_ms / 1000.0)
        if generated:
            if entry.input_tokens:
                input_tokens.inc(entry.input_tokens)
            if entry.cache_read_tokens:
                cache_read.inc(entry.cache_read_tokens)
            if entry.output_tokens:
                output_tokens.inc(entry.output_tokens)
        if entry.problems:
            problems.inc(len(entry.problems))

    def _model_children(self, model: str) -> tuple:
        children = self._per_model.get(model)
        if children is None:
            children = self._per_model[model] = (
                self.ttft.labels(model),
                self.input_tokens.labels(model),
                self.cache_read_tokens.labels(model),
                self.output_tokens.labels(model),
                self.problems.labels(model),
            )
        return children

    def refresh(
        self, *, backends: Mapping[str, tuple[int, int, bool | None]], dropped: Mapping[str, int]
    ) -> None:
        """Bring the gauges (per backend URL: in flight, queued, up or None before a probe) and the
        dropped-feature counts up to date with the proxy's state."""
        for url, (in_flight, queued, up) in backends.items():
            self.in_flight.labels(url).set(in_flight)
            self.queued.labels(url).set(queued)
            if up is not None:
                self.backend_up.labels(url).set(1 if up else 0)
        for feature, count in dropped.items():
            delta = count - self._dropped_seen.get(feature, 0)
            if delta > 0:
                self.dropped.labels(feature).inc(delta)
                self._dropped_seen[feature] = count

    def exposition(self) -> bytes:
        """The text format: this process's registry, or every worker's values in multiprocess mode."""
        path = multiprocess_dir()
        if path is None:
            return generate_latest(self.registry)
        registry = CollectorRegistry()
        prometheus_multiprocess.MultiProcessCollector(registry, path=path)
        return generate_latest(registry)


def mark_worker_dead(pid: int) -> None:
    """The parent's bookkeeping when a worker exits: its live gauges stop counting (its counters stay)."""
    path = multiprocess_dir()
    if path is not None:
        prometheus_multiprocess.mark_process_dead(pid, path)
