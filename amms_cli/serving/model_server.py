"""ModelServer: everything a running server owns besides its protocols (metrics, prediction threads,
registry, reconciler, watcher), built from one ServeSettings. Every front end drives it through the
DataPlane it makes."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from dataclasses import dataclass, field

from amms_cli.project.config import AmmsConfig
from amms_cli.serving import memory
from amms_cli.serving.cold_starts import ColdStarts
from amms_cli.serving.dataplane import DataPlane
from amms_cli.serving.lanes import Lanes
from amms_cli.serving.metrics import Metrics
from amms_cli.serving.reconciler import Reconciler
from amms_cli.serving.registry import ModelView, Registry
from amms_cli.serving.settings import ServeSettings
from amms_cli.serving.watcher import Watcher

log = logging.getLogger("amms.server")


def trust_checked_inputs() -> None:
    """Servables refuse NaN and infinite numbers before a model sees them, so scikit-learn need not
    check every array again (13 us of a LogisticRegression's 100 us predict). Its switch is read
    when scikit-learn is first imported, i.e. when the first model is unpickled, after this. A
    SKLEARN_ASSUME_FINITE set by the user is kept (empty keeps scikit-learn's check, for custom
    models that build arrays from unchecked JSON)."""
    os.environ.setdefault("SKLEARN_ASSUME_FINITE", "1")


def _summary(views: list[ModelView], shown: int = 20) -> str:
    """What is served after the first load, for the log: up to `shown` models by name."""
    if not views:
        return "no models configured"
    on_demand = sum(1 for view in views if view.servable_on_demand)
    lines = [
        f"{view.name} {view.served.version_text if view.served else '(none)'}"
        for view in views
        if not view.servable_on_demand
    ]
    text = ", ".join(lines[:shown]) + (f" and {len(lines) - shown} more" if len(lines) > shown else "")
    if on_demand:
        text += ("; " if text else "") + f"{on_demand} on demand (loaded by their first request)"
    return text


@dataclass
class ModelServer:
    metrics: Metrics
    registry: Registry
    reconciler: Reconciler
    watcher: Watcher | None
    cold_starts: ColdStarts | None = None  # with the model cache on
    tasks: list[asyncio.Task[None]] = field(default_factory=list)

    @classmethod
    def start(cls, config: AmmsConfig, settings: ServeSettings) -> ModelServer:
        """Build the server and start the first load in the background (readiness waits for it)."""
        trust_checked_inputs()
        if settings.on_demand:
            memory.reuse_freed_blocks()  # an evicted model's memory serves the next load
        metrics = Metrics()
        registry = Registry()
        lanes = Lanes(settings.predict_threads)
        reconciler = Reconciler(registry, lanes, config, metrics, settings)
        watcher = Watcher(reconciler, settings.debounce_ms, settings.poll_s) if settings.watching else None
        cold_starts = None
        if reconciler.cache is not None:
            cold_starts = ColdStarts(registry, reconciler.load_on_demand, metrics, settings.request_timeout_s)
        server = cls(metrics, registry, reconciler, watcher, cold_starts)
        server.tasks.append(asyncio.get_running_loop().create_task(server._first_load()))
        return server

    def dataplane(self) -> DataPlane:
        return DataPlane(self.registry, self.metrics, self.cold_starts)

    async def _first_load(self) -> None:
        await self.reconciler.reconcile()
        log.info("ready: %s", _summary(list(self.registry.snapshot.models.values())))
        if self.watcher is not None:
            await self.watcher.run()

    async def stop(self) -> None:
        if self.watcher is not None:
            self.watcher.stop()
        for task in self.tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        await self.reconciler.stop()
