"""Everything a running server owns besides HTTP: metrics, executors, registry, reconciler, watcher."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from amms_cli.project.config import AmmsConfig
from amms_cli.serving.metrics import Metrics
from amms_cli.serving.reconciler import Reconciler
from amms_cli.serving.registry import Registry
from amms_cli.serving.watcher import Watcher

log = logging.getLogger("amms.runtime")


def trust_checked_inputs() -> None:
    """Servables refuse NaN and infinite numbers before a model sees them, so scikit-learn need not
    check every array again (13 us of a LogisticRegression's 100 us predict). Its switch is read
    when scikit-learn is first imported, i.e. when the first model is unpickled, after this. A
    SKLEARN_ASSUME_FINITE set by the user is kept (empty keeps scikit-learn's check, for custom
    models that build arrays from unchecked JSON)."""
    os.environ.setdefault("SKLEARN_ASSUME_FINITE", "1")


@dataclass
class RuntimeOptions:
    predict_threads: int = 4
    drain_timeout_s: float = 30.0
    watch: bool = False
    poll_s: float | None = None
    debounce_ms: int = 200
    allowed_loaders: frozenset[str] | None = None


@dataclass
class Runtime:
    metrics: Metrics
    registry: Registry
    reconciler: Reconciler
    watcher: Watcher | None
    tasks: list[asyncio.Task[None]] = field(default_factory=list)

    @classmethod
    def start(cls, config: AmmsConfig, options: RuntimeOptions) -> Runtime:
        """Build the runtime and start the first load in the background (readiness waits for it)."""
        trust_checked_inputs()
        metrics = Metrics()
        registry = Registry(ThreadPoolExecutor(options.predict_threads, thread_name_prefix="amms-predict"))
        reconciler = Reconciler(
            registry, config, metrics, options.drain_timeout_s, allowed_loaders=options.allowed_loaders
        )
        watcher = None
        if options.watch or options.poll_s is not None:
            watcher = Watcher(reconciler, options.debounce_ms, options.poll_s)
        runtime = cls(metrics, registry, reconciler, watcher)
        runtime.tasks.append(asyncio.get_running_loop().create_task(runtime._first_load()))
        return runtime

    async def _first_load(self) -> None:
        await self.reconciler.reconcile()
        log.info(
            "ready: %s",
            ", ".join(
                f"{v.name} {v.served.version_text if v.served else '(none)'}"
                for v in self.registry.snapshot.models.values()
            )
            or "no models configured",
        )
        if self.watcher is not None:
            await self.watcher.run()

    async def stop(self) -> None:
        if self.watcher is not None:
            self.watcher.stop()
        for task in self.tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        await self.reconciler.wait_idle()
        self.registry.shutdown()
