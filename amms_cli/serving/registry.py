"""Models in memory: an immutable snapshot of every configured model, its loaded versions and the
state of each version seen on disk. Requests read the current snapshot without locks; the
reconciler builds a new one and swaps it in one assignment.

All mutations happen on the event loop thread (the reconciler is a coroutine), so leases
(in-flight counts used to drain a version before it is unloaded) need no locks either.
"""

from __future__ import annotations

import asyncio
import itertools
import resource
import time
from collections.abc import Callable
from concurrent.futures import Executor, ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import Any

from amms_cli.errors import ModelNotReady, NotFound
from amms_cli.loaders import Model
from amms_cli.project.config import ModelEntry
from amms_cli.repository.manifest import InputInfo, Manifest
from amms_cli.repository.versions import Version
from amms_cli.servables import Servable
from amms_cli.serving.batching import Batcher
from amms_cli.serving.inference import Prediction, predict


class VersionState(StrEnum):
    LOADING = "LOADING"
    AVAILABLE = "AVAILABLE"
    FAILED = "FAILED"
    UNLOADED = "UNLOADED"


@dataclass(frozen=True)
class VersionStatus:
    version: Version
    state: VersionState
    reason: str | None = None
    framework: str | None = None
    load_seconds: float | None = None
    changed_at: float = field(default_factory=time.time)


_RUSAGE_THREAD: int | None = getattr(resource, "RUSAGE_THREAD", None)  # Linux only
_FALLBACK_WAITS = itertools.count()

SERIALISED_LOADERS = frozenset({"pickle", "cloudpickle", "joblib"})
UNBOUNDED = 1 << 30


def thread_clock() -> tuple[float, int]:
    """CPU seconds used by the calling thread (precise, from the scheduler), and how often it has
    blocked (voluntary context switches; getrusage's CPU times are tick-sampled, too coarse for
    sub-millisecond calls). Where the OS cannot count switches (macOS), every call counts as blocked."""
    if _RUSAGE_THREAD is None:
        return time.thread_time(), next(_FALLBACK_WAITS)
    return time.thread_time(), resource.getrusage(_RUSAGE_THREAD).ru_nvcsw


class PredictSpeed:
    """Decides whether a version's predictions may run on the event loop.

    Handing a call to a thread costs tens of microseconds, more than a small linear model needs to
    predict. A version whose calls stay far below a millisecond runs inline (the event loop is held
    no longer than a thread hop would take).

    Calls are judged by the CPU time of the calling thread, not wall time: in the pool, wall time
    includes waiting for the GIL while the event loop runs (under load it made a 0.1 ms model look
    like a 3 ms one and kept it in the pool for good); inline, it includes being preempted by other
    processes on a busy machine. An inline call that used the CPU too long, or that blocked (the
    thread gave up the CPU by itself: I/O, a lock, a sleep) for too long, sends the version back to
    the pool. Every such demotion doubles the calls needed before it goes inline again, so a model
    that keeps waiting blocks the loop ever more rarely; a long inline streak earns one doubling back.
    """

    INLINE_BELOW_S = 0.0003
    SLOW_CALL_S = 0.002
    WARM_UP_CALLS = 32
    MAX_BACKOFF = 10  # at most 32 << 10 calls in the pool between two inline attempts
    FORGIVE_AFTER_CALLS = 10_000

    __slots__ = ("average_s", "backoff", "calls", "inline")

    def __init__(self) -> None:
        self.average_s = 0.0
        self.calls = 0
        self.backoff = 0
        self.inline = False

    def observe(self, wall_s: float, cpu_s: float, blocked: bool) -> None:
        """One finished call: wall time, CPU time of its thread, and whether the thread blocked."""
        self.calls += 1
        self.average_s = cpu_s if self.calls == 1 else 0.9 * self.average_s + 0.1 * cpu_s
        if self.inline:
            if cpu_s > self.SLOW_CALL_S or (blocked and wall_s > self.SLOW_CALL_S):
                self._demote()
            elif self.calls >= self.WARM_UP_CALLS and self.average_s > 2 * self.INLINE_BELOW_S:
                self.inline = False  # grew slower, though never slow enough to demote
                self.calls = 0
            elif self.calls >= self.FORGIVE_AFTER_CALLS:
                self.backoff = max(0, self.backoff - 1)
                self.calls = 0
        elif cpu_s > self.SLOW_CALL_S:
            self.calls = 0
        elif self.calls >= self.WARM_UP_CALLS << self.backoff:
            self.inline = self.average_s < self.INLINE_BELOW_S
            self.calls = 0

    def _demote(self) -> None:
        self.inline = False
        self.calls = 0
        self.backoff = min(self.backoff + 1, self.MAX_BACKOFF)


class LoadedVersion:
    """A model version in memory, with its servable and how many requests are using it."""

    def __init__(self, name: str, version: Version, manifest: Manifest, model: Model, servable: Servable) -> None:
        self.name = name
        self.version = version
        self.version_text = str(version)
        self.manifest = manifest
        self.model = model
        self.servable = servable
        self.info: InputInfo = manifest.input
        self.batcher: Batcher | None = None
        self.in_flight = 0
        self.retired = False
        self._drained: asyncio.Event | None = None
        self.speed = PredictSpeed()
        # Pickled Python models (scikit-learn and friends) mostly hold the GIL: concurrent calls only
        # contend (measured: 4 threads halved a random forest's throughput), so they predict one at a
        # time, on their model's own thread (Registry.lane), and scale through batching and workers.
        # ONNX (releases the GIL) and custom models (may wait on I/O) run concurrently in the pool.
        self.serialised = manifest.loader in SERIALISED_LOADERS
        self.gate = asyncio.Semaphore(1 if self.serialised else UNBOUNDED)
        self.executor: Executor | None = None  # where predictions run off the loop; set by the reconciler

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
            return predict(self.model, model_input, proba)
        finally:
            cpu, waits = thread_clock()
            self.speed.observe(time.perf_counter() - started, cpu - started_cpu, waits != started_waits)

    def acquire(self) -> None:
        self.in_flight += 1

    def release(self) -> None:
        self.in_flight -= 1
        if self.in_flight == 0 and self._drained is not None:
            self._drained.set()

    async def drain(self, timeout_s: float) -> bool:
        """Mark retired and wait until no request uses this version; False on timeout."""
        self.retired = True
        if self.in_flight == 0:
            return True
        self._drained = asyncio.Event()
        try:
            await asyncio.wait_for(self._drained.wait(), timeout_s)
        except TimeoutError:
            return False
        return True


@dataclass(frozen=True)
class ModelView:
    """One configured model: which version is served, which are loaded, and every version's state."""

    entry: ModelEntry
    served: LoadedVersion | None = None
    loaded: dict[str, LoadedVersion] = field(default_factory=dict)
    statuses: dict[str, VersionStatus] = field(default_factory=dict)
    pending: bool = False  # configured, not reconciled yet

    @property
    def name(self) -> str:
        return self.entry.model_name

    def sorted_statuses(self) -> list[VersionStatus]:
        return sorted(self.statuses.values(), key=lambda s: s.version)


@dataclass(frozen=True)
class Snapshot:
    models: dict[str, ModelView] = field(default_factory=dict)
    generation: int = 0
    ready: bool = False  # the first reconcile has finished


class Registry:
    """Owns the current snapshot and the threads that run predictions off the event loop."""

    def __init__(self, executor: Executor) -> None:
        self.snapshot = Snapshot()
        self.executor = executor  # shared by the models that may predict concurrently
        self.listeners: list[Callable[[Snapshot], None]] = []
        self._lanes: dict[str, ThreadPoolExecutor] = {}

    def lane(self, name: str) -> ThreadPoolExecutor:
        """The one thread on which every version of a pickled model predicts.

        Its own thread, not the shared pool: spare pool threads waiting on the same queue pass the
        GIL back and forth with the one predicting, which made every call of a random forest 30-70%
        slower once two predictions had overlapped. One per model rather than per version: with a
        new thread for every published version, the server's RSS grew by 74 MB instead of 24 MB
        over the live-reload test's 21 swaps (memory the allocator keeps per thread).
        """
        lane = self._lanes.get(name)
        if lane is None:
            lane = self._lanes[name] = ThreadPoolExecutor(1, thread_name_prefix=f"amms-predict-{name}")
        return lane

    def close_lane(self, name: str) -> None:
        lane = self._lanes.pop(name, None)
        if lane is not None:
            lane.shutdown(wait=False)

    def shutdown(self) -> None:
        self.executor.shutdown(wait=False, cancel_futures=True)
        for name in list(self._lanes):
            self.close_lane(name)

    def publish(self, models: dict[str, ModelView], ready: bool | None = None) -> Snapshot:
        current = self.snapshot
        self.snapshot = Snapshot(models, current.generation + 1, current.ready if ready is None else ready)
        for listener in self.listeners:
            listener(self.snapshot)
        return self.snapshot

    def view(self, name: str) -> ModelView:
        view = self.snapshot.models.get(name)
        if view is None:
            known = ", ".join(sorted(self.snapshot.models)) or "none"
            raise NotFound(f"model '{name}' not found (models: {known})")
        return view

    def resolve(self, name: str, version: str | None = None) -> LoadedVersion:
        """The loaded version a request should use: the served one, or an exact loaded one."""
        view = self.view(name)
        if version is None:
            if view.served is not None:
                return view.served
            raise ModelNotReady(f"model '{name}' has no available version ({_why_not(view)})")
        loaded = view.loaded.get(version)
        if loaded is not None:
            return loaded
        status = view.statuses.get(version)
        if status is not None and status.state == VersionState.LOADING:
            raise ModelNotReady(f"model '{name}' version {version} is loading")
        routable = ", ".join(sorted(view.loaded, key=Version.parse)) or "none"
        detail = f" ({status.state}: {status.reason})" if status is not None and status.reason else ""
        raise NotFound(f"model '{name}' has no loaded version {version}{detail} (loaded: {routable})")

    def is_ready(self) -> bool:
        snapshot = self.snapshot
        return snapshot.ready and all(view.served is not None for view in snapshot.models.values())


def _why_not(view: ModelView) -> str:
    statuses = view.sorted_statuses()
    if view.pending:
        return "loading"
    if not statuses:
        return "no versions on disk match " + view.entry.aspired_version
    if all(s.state == VersionState.UNLOADED for s in statuses) and statuses[-1].reason:
        return statuses[-1].reason
    if any(s.state == VersionState.LOADING for s in statuses):
        return "loading"
    failed = [s for s in statuses if s.state == VersionState.FAILED]
    if failed:
        return f"{failed[-1].version} FAILED: {failed[-1].reason}"
    return "no version matches " + view.entry.aspired_version


def with_status(view: ModelView, status: VersionStatus) -> ModelView:
    return replace(view, statuses={**view.statuses, str(status.version): status})
