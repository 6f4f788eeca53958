"""A model version in memory, complete from the start: its model, its servable, the thread its
predictions run on, its batcher when batching is on, and the requests using it (its leases)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from concurrent.futures import Executor
from dataclasses import dataclass
from typing import Any

from amms_cli.loaders import Model
from amms_cli.repository.manifest import InputInfo, Manifest
from amms_cli.repository.versions import Version
from amms_cli.servables import Servable
from amms_cli.serving.batching import CONCURRENT_BATCHES, Batcher
from amms_cli.serving.inference import Prediction, predict
from amms_cli.serving.placement import PredictSpeed, thread_clock

UNBOUNDED = 1 << 30


@dataclass(frozen=True)
class BatchSettings:
    """Adaptive batching for one version (only for servables whose inputs can be merged)."""

    max_batch_size: int
    max_wait_ms: float
    on_batch: Callable[[int], None] | None = None  # told the rows of every batch (for metrics)


class LoadedVersion:
    def __init__(
        self,
        *,
        name: str,
        version: Version,
        manifest: Manifest,
        model: Model,
        servable: Servable,
        executor: Executor,
        serial: bool,
        batching: BatchSettings | None = None,
        memory_bytes: int = 0,
        speed: PredictSpeed | None = None,
    ) -> None:
        self.name = name
        self.version = version
        self.version_text = str(version)
        self.manifest = manifest
        self.model = model
        self.servable = servable
        self.info: InputInfo = manifest.input
        self.memory_bytes = memory_bytes  # what its load added to the process (serving/memory.py)
        # Pickled Python models (scikit-learn and friends) mostly hold the GIL: concurrent calls only
        # contend (measured: 4 threads halved a random forest's throughput), so they predict one at a
        # time, on their model's lane (see Lanes), and scale through batching and workers. ONNX
        # (releases the GIL) and custom models (may wait on I/O) run concurrently in the shared pool.
        self.serial = serial
        self.executor = executor  # where predictions run off the event loop
        self.gate = asyncio.Semaphore(1 if serial else UNBOUNDED)
        self.speed = speed or PredictSpeed()  # the model cache passes a reload its earlier measure
        self.batcher = self._batcher(batching)
        self.in_flight = 0
        self.last_used = time.monotonic()  # the model cache evicts the least recently used first
        self.reused = False  # a request found it loaded (not only those that waited for its load)
        self.retired = False
        self.on_used: Callable[[LoadedVersion], None] | None = None  # the model cache's recency order
        self._drained: asyncio.Event | None = None

    @property
    def classes(self) -> list[Any] | None:
        return self.model.classes

    @property
    def has_predict_proba(self) -> bool:
        return self.model.has_predict_proba

    def _batcher(self, batching: BatchSettings | None) -> Batcher | None:
        if batching is None:
            return None
        return Batcher(
            self.model,
            self.servable,
            self.executor,
            max_batch_size=batching.max_batch_size,
            max_wait_ms=batching.max_wait_ms,
            predict_one=self.predict,
            on_batch=batching.on_batch,
            max_parallel=1 if self.serial else CONCURRENT_BATCHES,
        )

    async def predict(self, model_input: Any, proba: bool) -> Prediction:
        """Predict inline when this version is measured fast and idle, else off the event loop."""
        if self.speed.inline and not self.gate.locked():
            return self.timed_predict(model_input, proba)
        async with self.gate:
            loop = asyncio.get_running_loop()
            return await loop.run_in_executor(self.executor, self.timed_predict, model_input, proba)

    def timed_predict(self, model_input: Any, proba: bool) -> Prediction:
        started, (started_cpu, started_waits) = time.perf_counter(), thread_clock()
        try:
            return predict(self.model, self.servable.prepare(model_input), proba)
        finally:
            cpu, waits = thread_clock()
            self.speed.observe(time.perf_counter() - started, cpu - started_cpu, waits != started_waits)

    def acquire(self) -> None:
        """A request holds this version (from its resolution to its response)."""
        self.in_flight += 1
        self.last_used = time.monotonic()
        if self.on_used is not None:
            self.on_used(self)

    def release(self) -> None:
        self.in_flight -= 1
        if self.in_flight == 0 and self._drained is not None:
            self._drained.set()

    async def drain(self, timeout_s: float | None) -> bool:
        """Mark retired and wait until no request uses this version (without a timeout: for as long
        as that takes); False on timeout."""
        self.retired = True
        if self.in_flight == 0:
            return True
        if self._drained is None:
            self._drained = asyncio.Event()
        try:
            await asyncio.wait_for(self._drained.wait(), timeout_s)
        except TimeoutError:
            return False
        return True

    def close(self) -> None:
        """Release the model; called once, after draining."""
        self.model.close()
        self.batcher = None
