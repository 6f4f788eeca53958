"""Cold starts, with the model cache on: a request whose version is not loaded waits for its load,
which every request for that version shares (single flight), for at most the request timeout; past
it, or when too many loads are already queued, the answer is 503 with Retry-After, never a hang.
At most `LOAD_SLOTS` versions load at once; a queued load that no request waits for any more is
dropped before it starts (no loading for clients that have left). A version just loaded is held for
its waiters until the last of them has taken it (its `handover` lease), so making room for another
load cannot evict it before they ran: no thrashing."""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from amms_cli.errors import ModelBusy
from amms_cli.serving.loaded_version import LoadedVersion
from amms_cli.serving.metrics import Metrics
from amms_cli.serving.registry import Registry

LoadNow = Callable[[str, str], Awaitable[LoadedVersion]]  # (model, version) -> loaded (the reconciler's)


@dataclass
class Flight:
    """One version's load and the requests waiting for it."""

    task: asyncio.Task[LoadedVersion]
    created: float = field(default_factory=time.perf_counter)
    waiters: int = 0
    started: bool = False  # it holds a load slot: it finishes even if every waiter leaves
    handover: LoadedVersion | None = None  # the loaded version, held until every waiter has it


class ColdStarts:
    LOAD_SLOTS = 2
    MAX_QUEUED_LOADS = 64

    def __init__(self, registry: Registry, load_now: LoadNow, metrics: Metrics, wait_s: float) -> None:
        self.registry = registry
        self.load_now = load_now
        self.metrics = metrics
        self.wait_s = wait_s
        self._slots = asyncio.Semaphore(self.LOAD_SLOTS)
        self._flights: dict[tuple[str, str], Flight] = {}

    async def resolve(self, name: str, key: str) -> LoadedVersion:
        """Version `key` of model `name`, loaded: wait for its flight (starting it if there is none)."""
        flight = self._flights.get((name, key)) or self._start(name, key)
        flight.waiters += 1
        try:
            return await asyncio.wait_for(asyncio.shield(flight.task), self.wait_s)
        except TimeoutError:
            raise ModelBusy(
                f"model '{name}' version {key} is not loaded yet after {self.wait_s:g} s "
                "(it is loading, or waiting for room in the model cache)",
                retry_after_s=self._retry_after(name, key),
            ) from None
        finally:  # synchronous from here to the caller's own lease: nothing can evict in between
            flight.waiters -= 1
            if flight.waiters == 0:
                if not flight.started:
                    flight.task.cancel()
                if flight.handover is not None:
                    flight.handover.release()
                    flight.handover = None

    def _start(self, name: str, key: str) -> Flight:
        queued = sum(1 for flight in self._flights.values() if not flight.started)
        if queued >= self.MAX_QUEUED_LOADS:
            raise ModelBusy(f"{queued} model loads are queued; try again shortly", retry_after_s=1)
        flight = Flight(asyncio.get_running_loop().create_task(self._fly(name, key)))
        self._flights[(name, key)] = flight
        flight.task.add_done_callback(lambda task: self._land(name, key, task))
        return flight

    async def _fly(self, name: str, key: str) -> LoadedVersion:
        async with self._slots:
            flight = self._flights[(name, key)]
            flight.started = True
            loaded = await self.load_now(name, key)
            self.metrics.cold_start_seconds.observe(time.perf_counter() - flight.created)
            if flight.waiters:
                loaded.acquire()
                flight.handover = loaded
            return loaded

    def _land(self, name: str, key: str, task: asyncio.Task[LoadedVersion]) -> None:
        self._flights.pop((name, key), None)
        if not task.cancelled():
            task.exception()  # retrieved: a failure is the waiters' to report, not asyncio's

    def _retry_after(self, name: str, key: str) -> int:
        """Seconds until a retry is likely to find it loaded: its last load's duration, at least 1."""
        view = self.registry.snapshot.models.get(name)
        status = view.statuses.get(key) if view is not None else None
        seconds = status.load_seconds if status is not None and status.load_seconds else 1.0
        return max(1, math.ceil(seconds))
