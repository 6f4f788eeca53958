"""The protocol-neutral operations every front end calls: inference, readiness, the models' views, and
request metrics.

A front end decodes its protocol's request, then makes one inference call per request:

    with plane.inference(name, version, PROTOCOL) as call:
        loaded = await call.resolve()              # once; loads it first if the model cache evicted it
        prediction = await call.infer(inputs, proba)
        return encode(loaded, prediction, headers=call.headers())  # recorded when the block ends

`call.headers()` is a `Server-Timing` header when the request waited for its version to load.
"""

from __future__ import annotations

import time
from types import TracebackType

from amms_cli.errors import AmmsError, InvalidInput, ModelNotReady, NotFound
from amms_cli.servables import RequestInputs
from amms_cli.serving.cold_starts import ColdStarts
from amms_cli.serving.inference import Prediction
from amms_cli.serving.loaded_version import LoadedVersion
from amms_cli.serving.metrics import Metrics
from amms_cli.serving.registry import ModelView, Registry

UNKNOWN_MODEL = "<unknown>"  # metrics label for names that are not configured (bounded cardinality)


class DataPlane:
    def __init__(self, registry: Registry, metrics: Metrics, cold_starts: ColdStarts | None = None) -> None:
        self.registry = registry
        self.metrics = metrics
        self.cold_starts = cold_starts  # with the model cache on

    def inference(self, name: str, version: str | None, protocol: str) -> InferenceCall:
        return InferenceCall(self, name, version, protocol)

    async def resolve(self, name: str, version: str | None = None) -> tuple[LoadedVersion, bool]:
        """The loaded version for a request (the served one or an exact one) and whether the request
        waited for it to load (a cold start: the model cache had it on demand)."""
        try:
            loaded = self.registry.resolve(name, version)
        except (ModelNotReady, NotFound):
            item = self.registry.loadable(name, version)
            cold_starts = self.cold_starts
            if cold_starts is None or item is None:
                raise
            return await cold_starts.resolve(name, str(item.version)), True
        loaded.reused = True  # found in memory: the model cache keeps versions used again longer
        return loaded, False

    def on_demand(self, name: str, version: str | None = None) -> bool:
        """Not loaded, but a request would load it (the model cache): ready to serve, not resident."""
        return self.cold_starts is not None and self.registry.loadable(name, version) is not None

    def view(self, name: str) -> ModelView:
        return self.registry.view(name)

    def views(self) -> list[ModelView]:
        models = self.registry.snapshot.models
        return [models[name] for name in sorted(models)]

    def not_ready_reason(self) -> str | None:
        """None once every model has a served version; otherwise what readiness is waiting for."""
        if self.registry.is_ready():
            return None
        waiting = [view.name for view in self.views() if view.served is None]
        return f"not ready: waiting for {waiting or 'the first load'}"

    def unavailable(self) -> dict[str, str]:
        """Models without a served version (and why), in name order: reported even once ready."""
        return dict(sorted(self.registry.unavailable().items()))

    def record(self, name: str, version: str | None, protocol: str, *, code: int, seconds: float) -> None:
        """Count one request under bounded labels: names and versions that are not configured or not
        on disk are not labels of their own."""
        view = self.registry.snapshot.models.get(name)
        if view is None:
            name, version = UNKNOWN_MODEL, ""
        elif version is None:
            version = view.served.version_text if view.served is not None else ""
        elif version not in view.statuses:
            version = ""
        self.metrics.observe_request(name, version, protocol, code=code, seconds=seconds)


class InferenceCall:
    """One inference request: the version is resolved once and held (its lease) until the block ends,
    so it is neither unloaded nor evicted meanwhile; the outcome (200, the status of an AmmsError, or
    500 for anything else) is recorded once, when the block ends."""

    __slots__ = ("_loaded", "cold_start_s", "name", "plane", "protocol", "started", "version")

    def __init__(self, plane: DataPlane, name: str, version: str | None, protocol: str) -> None:
        self.plane = plane
        self.name = name
        self.version = version  # as requested: None for the served version
        self.protocol = protocol
        self.started = time.perf_counter()
        self._loaded: LoadedVersion | None = None
        self.cold_start_s: float | None = None  # how long it waited for its version to load, if it did

    async def resolve(self) -> LoadedVersion:
        if self._loaded is None:
            asked = time.perf_counter()
            loaded, cold = await self.plane.resolve(self.name, self.version)
            loaded.acquire()  # no await between resolving and holding: it cannot be evicted in between
            self._loaded = loaded
            if cold:
                self.cold_start_s = time.perf_counter() - asked
        return self._loaded

    def headers(self) -> dict[str, str]:
        """A `Server-Timing` header for a request that waited for its version to load, so a client
        (or a browser's network panel) can tell a cold start from a slow model; else none."""
        if self.cold_start_s is None:
            return {}
        return {"Server-Timing": f'cold-start;dur={self.cold_start_s * 1e3:.1f};desc="waited for the model to load"'}

    async def infer(self, inputs: RequestInputs, proba: bool = False) -> Prediction:
        """Convert the protocol's inputs with the version's servable and predict (batched when the
        version has a batcher)."""
        loaded = await self.resolve()
        model_input = loaded.servable.convert(inputs)
        if proba and not loaded.model.has_predict_proba:
            raise InvalidInput(f"model '{self.name}' gives no class probabilities")
        if loaded.batcher is not None:
            return await loaded.batcher.submit(model_input, proba)
        return await loaded.predict(model_input, proba)

    def __enter__(self) -> InferenceCall:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, traceback: TracebackType | None
    ) -> None:
        if self._loaded is not None:
            self._loaded.release()
        if error is None:
            code = 200
        elif isinstance(error, AmmsError):
            code = int(error.status)
        elif isinstance(error, Exception):
            code = 500  # rendered by the app's handler for unexpected errors
        else:
            return  # cancelled: the client is gone and no response is sent
        version = self._loaded.version_text if self._loaded is not None else self.version
        seconds = time.perf_counter() - self.started
        self.plane.record(self.name, version, self.protocol, code=code, seconds=seconds)
