"""Watch the config file's folder and every load_url folder (watchfiles), debounced, and reconcile on
change. `poll_s` switches watchfiles to polling for filesystems without change events."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import watchfiles

from amms_cli.project.config import AmmsConfig
from amms_cli.repository.atomic_files import STAGING_PREFIX
from amms_cli.serving.reconciler import Reconciler

log = logging.getLogger("amms.watcher")
SUBSCRIBE_GRACE_S = 1.0


def _interesting(change: watchfiles.Change, path: str) -> bool:
    name = Path(path).name
    return STAGING_PREFIX not in path and name != ".amms.lock" and not name.endswith(".tmp")


class Watcher:
    def __init__(self, reconciler: Reconciler, debounce_ms: int, poll_s: float | None) -> None:
        self.reconciler = reconciler
        self.debounce_ms = debounce_ms
        self.poll_s = poll_s
        self._stop = asyncio.Event()
        self._tasks: set[asyncio.Task[None]] = set()

    def _paths(self) -> list[Path]:
        config = self.reconciler.config
        wanted = [config.path.parent, *source_roots(config)]
        existing = [p for p in wanted if p.exists()]
        # a nested folder is already covered by its watched parent
        return sorted({p for p in existing if not any(p != q and p.is_relative_to(q) for q in existing)})

    async def run(self) -> None:
        while not self._stop.is_set():
            paths = self._paths()
            if not paths:
                await asyncio.sleep(self.poll_s or 1.0)
                await self._refresh()
                continue
            log.info(
                "watching %s%s",
                ", ".join(map(str, paths)),
                f" (polling every {self.poll_s:g} s)" if self.poll_s else "",
            )
            # A change made before the watch has subscribed raises no event: rescan once it has.
            rescan = asyncio.get_running_loop().call_later(SUBSCRIBE_GRACE_S, self._schedule_refresh)
            async for _changes in watchfiles.awatch(
                *paths,
                watch_filter=_interesting,
                debounce=self.debounce_ms,
                step=min(50, self.debounce_ms or 50),
                stop_event=self._stop,
                force_polling=self.poll_s is not None,
                poll_delay_ms=int((self.poll_s or 0.3) * 1000),
                rust_timeout=1000,
                yield_on_timeout=self.poll_s is not None,
                recursive=True,
            ):
                await self._refresh()
                if self._paths() != paths:
                    break  # the config names other folders now: watch those
            rescan.cancel()

    def _schedule_refresh(self) -> None:
        task = asyncio.get_running_loop().create_task(self._refresh())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _refresh(self) -> None:
        try:
            await self.reconciler.reload_config()
            await self.reconciler.reconcile()
        except Exception:
            log.exception("reconcile after a change failed; will retry on the next change")

    def stop(self) -> None:
        self._stop.set()


def source_roots(config: AmmsConfig) -> list[Path]:
    """The folders the config's models are read from."""
    return sorted({entry.source(config.base_dir).watch_root() for entry in config.models})
