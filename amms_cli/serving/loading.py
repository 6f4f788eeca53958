"""Loading one version off the event loop: verify its checksums, open it with its loader and run its
recorded example through it as a smoke check, within the entry's load timeout."""

from __future__ import annotations

import _thread
import asyncio
import contextlib
import itertools
import logging
import os
import queue
import sys
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, TypeVar

from amms_cli.errors import AmmsError, ModelLoadError
from amms_cli.loaders import LOADERS, Model, footprint, load_version
from amms_cli.project.config import ModelEntry
from amms_cli.repository.scan import VersionOnDisk
from amms_cli.servables import Servable, make_servable
from amms_cli.serving.inference import predict

T = TypeVar("T")
log = logging.getLogger("amms.loading")
LOAD_NICENESS = 10  # added to the server's own: a load gets about a tenth of a CPU a request also wants


@dataclass(frozen=True)
class CheckedModel:
    """A version loaded and smoke-checked: its model, the servable it is fed through, the memory its
    load added to the process (see loaders/footprint.py), and what importing its libraries added
    before that (the first load of a framework; 0 when nothing was measured)."""

    model: Model
    servable: Servable
    memory_bytes: int = 0
    libraries_bytes: int = 0


async def load_in_background(
    entry: ModelEntry,
    item: VersionOnDisk,
    allowed_loaders: frozenset[str] | None,
    *,
    smoke_check: bool = True,
    measured_bytes: int | None = None,
) -> CheckedModel:
    """Load in a thread; a load past `load_timeout_s` is abandoned and raises ModelLoadError."""

    def close_abandoned(checked: CheckedModel) -> None:
        checked.model.close()
        log.warning(
            "model '%s' version %s finished loading after its timeout; closed (its memory is released)",
            entry.model_name,
            item.version,
        )

    loading = in_daemon_thread(
        load_checked, entry, item, allowed_loaders, smoke_check, measured_bytes, abandoned=close_abandoned
    )
    try:
        return await asyncio.wait_for(loading, entry.load_timeout_s)
    except TimeoutError:
        raise ModelLoadError(f"load took longer than load_timeout_s={entry.load_timeout_s:g}") from None


def load_checked(
    entry: ModelEntry,
    item: VersionOnDisk,
    allowed_loaders: frozenset[str] | None,
    smoke_check: bool = True,
    measured_bytes: int | None = None,
) -> CheckedModel:
    """Verify, load, smoke-check and measure one version (runs in a worker thread). Without
    `smoke_check` (the same files passed it in this process before) the recorded example is not run
    again; with `measured_bytes` (what the same files' load measured before) nothing is measured:
    reading the allocator's figures locks its heap, 0.1-0.4 ms with a thousand models' churn."""
    manifest = item.manifest
    if manifest is None:
        raise ModelLoadError(item.problem or "no manifest")
    if allowed_loaders is not None and manifest.loader not in allowed_loaders:
        facts = LOADERS.get(manifest.loader)
        runs_code = " (loading it runs code from the artifact)" if facts is not None and facts.runs_code else ""
        raise ModelLoadError(
            f"loader '{manifest.loader}' is refused by --allow-frameworks {','.join(sorted(allowed_loaders))}"
            + runs_code
        )
    measures = measured_bytes is None
    with LOAD_TURNS.turn(alone=measures):  # a load that measures runs alone: others would count in it
        start = footprint.read() if measures else None
        readings: list[footprint.Reading] = []
        measure = (lambda: readings.append(footprint.read())) if measures else None
        model = load_version(item.path, manifest, before_open=measure)
        servable = make_servable(entry.servable_name or manifest.servable_name, manifest.input, entry.model_name)
        if smoke_check:
            _smoke_check(model, servable, manifest.input.smoke_example)
        if measured_bytes is not None:
            return CheckedModel(model, servable, measured_bytes)
        artifacts = manifest.artifacts_bytes
        opened = readings[0] if readings else None
        added = footprint.growth(opened, footprint.read(), fallback=artifacts)
        libraries = footprint.resident_growth(start, opened)  # the server's baseline, in resident terms
    # at least its files' size: a load that reuses memory freed by another shows less growth than it holds
    return CheckedModel(model, servable, max(added, artifacts), libraries)


def _smoke_check(model: Model, servable: Servable, example: Any) -> None:
    """Run the recorded example through the model; never an invented input: without one, nothing."""
    if example is None:
        return
    try:
        predict(model, servable.model_input(example), False)
    except AmmsError as exc:
        model.close()
        raise ModelLoadError(f"smoke check on the recorded example failed: {exc.message}") from exc


def in_daemon_thread(
    function: Callable[..., T], *args: Any, abandoned: Callable[[T], None] | None = None
) -> asyncio.Future[T]:
    """Run `function` in a daemon thread: a load that hangs past its timeout is abandoned and cannot
    keep the process from exiting (executor threads would be joined at exit). A result that arrives
    after the future was given up on is handed to `abandoned` (to close it), not dropped."""
    loop = asyncio.get_running_loop()
    future: asyncio.Future[T] = loop.create_future()

    def settle(result: T | None, error: BaseException | None) -> None:
        if future.done():
            if error is None and result is not None and abandoned is not None:
                try:
                    abandoned(result)
                except Exception:
                    log.exception("closing an abandoned load failed")
            return
        if error is not None:
            future.set_exception(error)
        else:
            future.set_result(result)  # type: ignore[arg-type]

    def job() -> None:
        try:
            result = function(*args)
        except BaseException as exc:
            loop.call_soon_threadsafe(settle, None, exc)
        else:
            loop.call_soon_threadsafe(settle, result, None)

    _DAEMON_THREADS.run(job)
    return future


class DaemonThreads:
    """Daemon threads started as jobs need them and kept while jobs keep coming: with a hundred loads a
    second, starting a thread for each cost the event loop ~50 us a load (py-spy). A thread idle for
    `idle_s` ends. A job that hangs keeps its thread; the next jobs get other threads. Each runs behind
    the requests (`run_behind_requests`).

    Not threading.Thread(...).start(): it blocks until the new thread has run, and with the GIL busy
    that held the event loop for 7% of its time. Threads started with _thread are never joined at
    exit, like daemon threads."""

    def __init__(self, idle_s: float = 10.0) -> None:
        self.idle_s = idle_s
        self._jobs: queue.SimpleQueue[Callable[[], None]] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._idle = 0  # threads waiting for a job that no job was promised to yet
        self.threads = 0

    @property
    def waiting(self) -> int:
        """Threads waiting for a job that no job was promised to yet."""
        return self._idle

    def run(self, job: Callable[[], None]) -> None:
        with self._lock:
            start = self._idle == 0
            if start:
                self.threads += 1
            else:
                self._idle -= 1  # promised to this job
        self._jobs.put(job)
        if start:
            _thread.start_new_thread(self._work, ())

    def _work(self) -> None:
        run_behind_requests()
        while True:
            try:
                job = self._jobs.get(timeout=self.idle_s)
            except queue.Empty:
                with self._lock:
                    if self._idle > 0:  # nobody was promised this thread: it ends
                        self._idle -= 1
                        self.threads -= 1
                        return
                continue  # a job was promised to it meanwhile: take it
            try:
                job()
            except Exception:  # only if its event loop closed under it: the server is stopping
                log.debug("a load finished after the server stopped", exc_info=True)
            with self._lock:
                self._idle += 1


def run_behind_requests() -> None:
    """Give the calling thread a lower CPU priority than the event loop's, on Linux: SCHED_BATCH (a
    thread that wakes up never preempts a running one) and `LOAD_NICENESS` more niceness (a smaller
    share of a CPU both want). Loading a model is mostly reading its files and building objects; when
    a load thread woke up on the event loop's CPU, the scheduler switched to it and the requests in
    flight waited. With a hundred cold starts a second (benchmarks/many_models.py, open loop, Zipf
    1.1, `perf sched`): the event loop was preempted by a load thread for over 0.5 ms ~300 times in
    15 s, and 17 times with both settings (with either alone, still 280-320).

    Elsewhere a thread has no priority of its own (setpriority would renice the whole process):
    nothing is changed. Nor when the server already runs under another policy (real-time, idle) or
    the system refuses: loads then run as before."""
    if not sys.platform.startswith("linux"):
        return
    thread = threading.get_native_id()
    try:
        if os.sched_getscheduler(0) != os.SCHED_OTHER:
            return
        niceness = os.getpriority(os.PRIO_PROCESS, thread)
        os.setpriority(os.PRIO_PROCESS, thread, min(19, niceness + LOAD_NICENESS))  # this thread only
        os.sched_setscheduler(0, os.SCHED_BATCH, os.sched_param(0))  # keeps the niceness
    except OSError as exc:
        log.debug("loads run at the server's own CPU priority: %s", exc)


class LoadTurns:
    """Loads run side by side, except one that measures its memory (a version's first load in this
    process, loaders/footprint.py): it waits until the loads under way have finished, and loads that
    start meanwhile wait for it. Two cold starts at once counted part of each other's memory: models of
    2.00 MiB measured 2.5 MiB on average, one in ten 4 MiB or more (benchmarks/many_models.py), and a
    memory budget held a fifth fewer versions than would fit. Loads of versions measured before
    (nearly all of them once a server has run a while) still overlap freely.

    Nobody waits more than `wait_s` for loads that do not finish (a hung custom model's load): past
    it, those are not waited for again."""

    def __init__(self, wait_s: float = 2.0) -> None:
        self.wait_s = wait_s
        self._changed = threading.Condition()
        self._running: dict[int, bool] = {}  # each load under way (a number) -> whether it runs alone
        self._not_waited_for: set[int] = set()
        self._numbers = itertools.count()
        self._alone_waiting = 0

    @contextlib.contextmanager
    def turn(self, *, alone: bool) -> Iterator[None]:
        number = self._start(alone)
        try:
            yield
        finally:
            with self._changed:
                del self._running[number]
                self._not_waited_for.discard(number)
                self._changed.notify_all()

    def _start(self, alone: bool) -> int:
        with self._changed:
            self._alone_waiting += int(alone)
            try:
                if not self._changed.wait_for(lambda: self._may_start(alone), self.wait_s):
                    self._not_waited_for.update(self._running)
            finally:
                self._alone_waiting -= int(alone)
            number = next(self._numbers)
            self._running[number] = alone
            return number

    def _may_start(self, alone: bool) -> bool:
        waited_for = [runs_alone for number, runs_alone in self._running.items() if number not in self._not_waited_for]
        if alone:
            return not waited_for
        return not any(waited_for) and not self._alone_waiting


_DAEMON_THREADS = DaemonThreads()
LOAD_TURNS = LoadTurns()
