"""The Prometheus collectors of one server, owned by a Metrics object that is passed around."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

if TYPE_CHECKING:
    from amms_cli.serving.loaded_version import LoadedVersion

LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024)


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self._request_children: dict[tuple[str, str, str, int], tuple[Counter, Histogram]] = {}
        self.requests = Counter(
            "amms_requests_total",
            "Inference requests by model, version, protocol and HTTP status code.",
            ["model", "version", "protocol", "code"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "amms_request_duration_seconds",
            "Inference request latency from body read to response, in seconds.",
            ["model", "version", "protocol"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.load_seconds = Histogram(
            "amms_model_load_duration_seconds",
            "Time to verify, load and smoke-check one model version.",
            ["model"],
            buckets=(0.01, 0.05, 0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300),
            registry=self.registry,
        )
        self.loaded_versions = Gauge(
            "amms_loaded_versions", "Model versions loaded in memory.", ["model"], registry=self.registry
        )
        self.resident_bytes = Gauge(
            "amms_model_resident_bytes",
            "Memory the loaded versions of a model added to the process when they loaded (an estimate).",
            ["model"],
            registry=self.registry,
        )
        self.cache_overhead_bytes = Gauge(
            "amms_model_cache_overhead_bytes",
            "With --memory-budget: memory the process holds beyond its loaded versions and what it held "
            "when it started serving (the allocator's slack, bookkeeping), counted against the budget: "
            "the most measured over two minutes, each time freed memory is returned (15% of the budget "
            "until a first two minutes have passed).",
            registry=self.registry,
        )
        self.loads = Counter(
            "amms_model_loads_total",
            "Version loads by model and outcome (loaded, failed).",
            ["model", "outcome"],
            registry=self.registry,
        )
        self.evictions = Counter(
            "amms_model_evictions_total",
            "Versions evicted by the model cache to make room (least recently used first).",
            ["model"],
            registry=self.registry,
        )
        self.cold_start_seconds = Histogram(
            "amms_cold_start_duration_seconds",
            "With the model cache on: from a request finding its version not loaded to the version being "
            "ready (waiting for room included).",
            buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120),
            registry=self.registry,
        )
        self.batch_size = Histogram(
            "amms_batch_size_rows",
            "Rows per batch formed by adaptive batching (answered or failed).",
            ["model"],
            buckets=BATCH_BUCKETS,
            registry=self.registry,
        )

    def observe_request(self, model: str, version: str, protocol: str, *, code: int, seconds: float) -> None:
        key = (model, version, protocol, code)
        children = self._request_children.get(key)
        if children is None:  # label lookups cost more than the increments; the label set is bounded
            children = (
                self.requests.labels(model, version, protocol, str(code)),
                self.latency.labels(model, version, protocol),
            )
            self._request_children[key] = children
        children[0].inc()
        children[1].observe(seconds)

    def set_resident(self, model: str, loaded: Iterable[LoadedVersion]) -> None:
        """The loaded-versions and resident-bytes gauges of one model."""
        versions = list(loaded)
        self.loaded_versions.labels(model).set(len(versions))
        self.resident_bytes.labels(model).set(sum(version.memory_bytes for version in versions))

    def render(self) -> bytes:
        return generate_latest(self.registry)
