"""Protocol-neutral operations behind every route: infer, readiness, metadata, and request metrics."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from amms_cli.errors import AmmsError, InvalidInput
from amms_cli.serving.inference import Prediction
from amms_cli.serving.metrics import Metrics
from amms_cli.serving.registry import LoadedVersion, ModelView, Registry

UNKNOWN_MODEL = "<unknown>"  # metrics label for names that are not configured (bounded cardinality)


@dataclass(frozen=True, slots=True)
class InferResult:
    model: LoadedVersion
    prediction: Prediction


class DataPlane:
    def __init__(self, registry: Registry, metrics: Metrics) -> None:
        self.registry = registry
        self.metrics = metrics

    async def infer(self, name: str, version: str | None, inputs: Any, proba: bool = False) -> InferResult:
        loaded = self.registry.resolve(name, version)
        model_input = loaded.servable.parse(inputs, loaded.info)
        if proba and not loaded.model.has_predict_proba:
            raise InvalidInput(f"model '{name}' gives no class probabilities")
        loaded.acquire()
        try:
            if loaded.batcher is not None:
                prediction = await loaded.batcher.submit(model_input, proba)
            else:
                prediction = await loaded.predict(model_input, proba)
        finally:
            loaded.release()
        return InferResult(loaded, prediction)

    @contextlib.contextmanager
    def failures_recorded(self, name: str, version: str | None, protocol: str, started: float) -> Iterator[None]:
        """Count a request that fails inside the block under its status (500 for an unexpected error,
        which the app's handler renders); a success is recorded by the caller, with the version served."""
        try:
            yield
        except AmmsError as exc:
            self.record(name, version, protocol, int(exc.status), started)
            raise
        except Exception:
            self.record(name, version, protocol, 500, started)
            raise

    def record(self, name: str, version: str | None, protocol: str, code: int, started: float) -> None:
        view = self.registry.snapshot.models.get(name)
        if view is None:
            name, version = UNKNOWN_MODEL, ""
        elif version is None:
            version = view.served.version_text if view.served is not None else ""
        elif version not in view.statuses:
            version = ""  # a version typed into a URL that matches nothing on disk: keep labels bounded
        self.metrics.observe_request(name, version, protocol, code, time.perf_counter() - started)

    def view(self, name: str) -> ModelView:
        return self.registry.view(name)

    def views(self) -> list[ModelView]:
        return [self.registry.snapshot.models[name] for name in sorted(self.registry.snapshot.models)]

    def is_ready(self) -> bool:
        return self.registry.is_ready()

    def model_ready(self, name: str, version: str | None = None) -> bool:
        view = self.registry.view(name)
        return view.served is not None if version is None else version in view.loaded
