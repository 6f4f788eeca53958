"""Unloading retired versions in the background: drain (wait for the requests using a version: every
one of them finishes on it, however long that takes; past the drain timeout a warning says which
version is still busy), close it, free its model's lane with its model's last loaded version, and
collect the memory it held. A failure while closing is logged with the version it concerns, and the
rest of the unload still happens."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable

from amms_cli.serving import gc_freeze
from amms_cli.serving.lanes import Lanes
from amms_cli.serving.loaded_version import LoadedVersion

log = logging.getLogger("amms.unloading")


class Unloader:
    def __init__(self, lanes: Lanes, drain_timeout_s: float, settle: Callable[[], None] = gc_freeze.settle) -> None:
        self.lanes = lanes
        self.drain_timeout_s = drain_timeout_s
        self.settle = settle  # the model cache settles once for many unloads (gc_freeze.settle_soon)
        self._tasks: set[asyncio.Task[None]] = set()
        self.on_retired: Callable[[LoadedVersion], None] | None = None  # the model cache's accounting
        self.on_closed: Callable[[LoadedVersion], None] | None = None

    def retire(self, versions: Iterable[LoadedVersion]) -> None:
        for version in versions:
            version.retired = True  # out of service from now: no longer counted as resident
            if self.on_retired is not None:
                self.on_retired(version)
            task = asyncio.get_running_loop().create_task(self._unload(version))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _unload(self, version: LoadedVersion) -> None:
        try:
            if not await version.drain(self.drain_timeout_s):
                log.warning(
                    "model '%s' version %s still has %d request(s) after %.0f s; it is closed once they finish",
                    version.name,
                    version.version_text,
                    version.in_flight,
                    self.drain_timeout_s,
                )
                await version.drain(None)
            gc_freeze.watch_unloaded(version.model)
            version.close()
        except Exception:
            log.exception("model '%s' version %s: closing it failed", version.name, version.version_text)
        finally:
            if self.on_closed is not None:
                self.on_closed(version)
            self.lanes.release(version.name, version.serial)
            self.settle()
        log.info("model '%s' version %s unloaded", version.name, version.version_text)

    async def wait_idle(self) -> None:
        """Wait for the unloads under way (shutdown)."""
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
