"""The model cache, on with `--max-loaded-models` or `--memory-budget`: models are known without being
loaded, a version loads on its first request, and to make room the least recently used idle version
is evicted (drained, then closed; its memory is reused by the next loads, and what they leave is
returned to the system within seconds, serving/memory.py).

Which one, precisely (a segmented LRU, as memcached's): a version some request found already loaded
("reused") is kept before one only the requests that waited for its load have used, as long as the
reused ones take at most `REUSED_SHARE` of the room the hot set leaves; past that share, the least
recently used reused version goes first. So a burst of requests for rarely used models replaces the
other rarely used models, not the popular ones. Measured with Zipf traffic over 1,000 models and room
for 100 (benchmarks/many_models.py, 60 s): with plain LRU 9.3% of the 50 most requested models'
requests waited for a load (33% of all requests); with this, 0.8% (26%).

What counts against the limits: every loaded version (the hot set included) by number, and by
memory what each measured at its load (loaders/footprint.py), from its load until it is closed, so a
retired version that is still draining counts until it is gone. Before a version loads, its expected
size is what it measured the last time it loaded, else the size of its artifacts. A budget also counts
what the process holds beyond those figures and beyond what it held when it started serving (and the
libraries loads imported since): the allocator's slack after churn, bookkeeping for every model that
has loaded, memory a model takes after its load, what versions freed and no load reused yet. It is
measured each time freed memory is returned, just before (`_overhead_bytes`), and the most measured
over the last two minutes counts; until a first window has passed, a share of the budget
(`STARTING_OVERHEAD_SHARE`) stands in for what has not been measured yet, and 2% of the budget is
kept free besides (`HEADROOM_SHARE`: the measurements lag). With exact figures for 100
models of 2 MiB under a budget of 201 MiB, the process otherwise grew 20 MiB past it; counting what
was measured only, it still passed it by 2 MiB in the first minute (benchmarks/many_models.py). When
nothing is loaded, a version that fits the budget by itself loads whatever the overhead: evicting
could not make more room.

Only idle versions are evicted: no request holds them (a request holds its version from the moment it
is resolved until its response is made; a version loaded for waiting requests is held until they
have it, see cold_starts.py), they are not in the hot set (`keep_loaded`), and their model is not
being reconciled or loaded (its lock is free).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import enum
import logging
import time
from collections import OrderedDict, deque
from collections.abc import Mapping
from dataclasses import dataclass

from amms_cli.errors import AmmsError, ModelBusy, ModelLoadError
from amms_cli.loaders import LOADERS, footprint
from amms_cli.loaders.footprint import format_bytes
from amms_cli.project.config import AmmsConfig, ModelEntry
from amms_cli.repository.scan import VersionOnDisk, scan_model
from amms_cli.serving import memory
from amms_cli.serving.loaded_version import LoadedVersion
from amms_cli.serving.metrics import Metrics
from amms_cli.serving.placement import PredictSpeed
from amms_cli.serving.plan import plan_model
from amms_cli.serving.registry import ModelView, Registry, VersionState, VersionStatus
from amms_cli.serving.unloading import Unloader

log = logging.getLogger("amms.cache")
EVICTED = "evicted (least recently used); loads again on its next request"
ROOM_POLL_S = 0.02  # how often a load waiting for room looks again, at the latest (requests finish)
SmokeKey = tuple[str, str, str | None, str]  # model, version, the entry's servable, the manifest's JSON
REUSED_SHARE = 0.9  # of the room the hot set leaves, what reused versions may hold before they are evicted
OVERHEAD_WINDOW_S = 120.0  # the overhead counted is the most measured over this long
# until measured, the overhead is taken as this share of the budget (for the first window): in
# benchmarks/many_models.py the process came to hold 26-29 MiB beyond its versions under 200 MiB
STARTING_OVERHEAD_SHARE = 0.15
# of the budget, always kept free besides: what is measured lags what the process does by up to a return
# of freed memory, and the peak settles where the counting puts the limit (many_models.py, Zipf 1.1:
# peaks at 397-400 MiB against a ceiling of 399 without it)
HEADROOM_SHARE = 0.02
RETURN_FREED_AFTER_S = 2.0  # after a version is closed, how soon the memory no load reused goes back


class Segment(enum.Enum):
    """Where a resident version stands in the eviction order (see `ModelCache._victim`)."""

    FRESH = "fresh"  # only the requests that waited for its load have used it
    REUSED = "reused"  # a request found it loaded
    HOT = "hot"  # its entry kept it loaded (`keep_loaded`) when it loaded


@dataclass(frozen=True)
class Usage:
    versions: int  # resident, plus loads under way
    held_bytes: int  # by resident versions, what loads under way expect, and the server's own growth
    closing_bytes: int  # by versions retired but not closed yet (draining): returned soon


@dataclass(frozen=True)
class Limits:
    """What one worker process may hold. The limits given on the command line are the server's: with
    `--workers W` each worker has its own cache, with a W-th of them (`of`)."""

    max_versions: int | None = None
    budget_bytes: int | None = None
    workers: int = 1

    @classmethod
    def of(cls, max_versions: int | None, budget_bytes: int | None, workers: int = 1) -> Limits:
        share_versions = None if max_versions is None else max(1, max_versions // workers)
        share_bytes = None if budget_bytes is None else budget_bytes // workers
        return cls(share_versions, share_bytes, workers)

    def flag(self, option: str, value: str) -> str:
        """How a limit is named in errors: the option, and the worker's share when there are several."""
        return f"{option} {value}" + (f" (a worker's share, of {self.workers})" if self.workers > 1 else "")

    def fit(self, usage: Usage, more_bytes: int, more_versions: int, *, closed: bool = False) -> bool:
        """Whether `more_versions` of `more_bytes` fit beside `usage` (`closed`: once the retired
        versions are closed)."""
        if self.max_versions is not None and usage.versions + more_versions > self.max_versions:
            return False
        held = usage.held_bytes + (0 if closed else usage.closing_bytes)
        return self.budget_bytes is None or held + more_bytes <= self.budget_bytes

    def too_big(self, name: str, item: VersionOnDisk, estimate: int) -> str | None:
        """Why this version can never load under the budget, or None."""
        if self.budget_bytes is None or estimate <= self.budget_bytes:
            return None
        budget = self.flag("--memory-budget", format_bytes(self.budget_bytes))
        return f"model '{name}' version {item.version} needs about {format_bytes(estimate)}, more than {budget}"


class ModelLocks:
    """One lock per model: a reconcile of a model and an on-demand load of it never overlap, and a
    model whose lock is held is never evicted from (its holder is about to publish its view)."""

    def __init__(self) -> None:
        self._locks: dict[str, asyncio.Lock] = {}

    def of(self, name: str) -> asyncio.Lock:
        lock = self._locks.get(name)
        if lock is None:
            lock = self._locks[name] = asyncio.Lock()
        return lock

    def busy(self, name: str) -> bool:
        lock = self._locks.get(name)
        return lock is not None and lock.locked()

    def forget(self, name: str) -> None:
        self._locks.pop(name, None)


class ModelCache:
    def __init__(
        self, limits: Limits, registry: Registry, unloader: Unloader, metrics: Metrics, locks: ModelLocks
    ) -> None:
        self.limits = limits
        self.registry = registry
        self.unloader = unloader
        self.metrics = metrics
        self.locks = locks
        # every version from its load until it is closed, with its bytes: resident until retired (by an
        # eviction or the reconciler), then closing; kept here so no decision walks every model
        self._charged: dict[int, tuple[LoadedVersion, int]] = {}
        self._closing: set[int] = set()  # of those, the retired ones
        # the others in three segments, each least recently used first (moved to its end at each
        # request): fresh, reused, and the hot set's (as configured when they loaded). `_victim` reads
        # the oldest ends, so no eviction passes over the versions it keeps.
        self._segments: dict[Segment, OrderedDict[int, LoadedVersion]] = {s: OrderedDict() for s in Segment}
        self._segment_bytes = dict.fromkeys(Segment, 0)
        self._segment_of: dict[int, Segment] = {}
        self._resident_bytes = self._closing_bytes = 0  # their sums, kept as they change (see usage)
        self._reserved: dict[tuple[str, str], int] = {}  # loads under way: (model, version) -> expected bytes
        self._measured: dict[tuple[str, str], int] = {}  # the last load's figure per version
        self._freed = asyncio.Event()  # set when a closed version's memory is discharged
        self._smoke_checked: set[SmokeKey] = set()  # see smoke_key
        self._speeds: dict[SmokeKey, PredictSpeed] = {}  # see speed_of
        self._returning: asyncio.TimerHandle | None = None  # see return_freed_soon
        # with a budget: the process's resident bytes beyond its versions when it started serving, plus
        # the libraries loads imported since (see serving_started), and what it holds beyond both
        self._baseline_bytes: int | None = None
        self._overhead_bytes = 0
        self._headroom_bytes = 0  # see HEADROOM_SHARE
        self._overheads: deque[tuple[float, int]] = deque()  # (when, what was measured), the window's
        unloader.on_retired = self.retired
        unloader.on_closed = self.discharge

    def usage(self) -> Usage:
        """From sums kept at each charge, retirement and discharge: it is asked before every load."""
        resident = len(self._charged) - len(self._closing)
        held = self._resident_bytes + sum(self._reserved.values()) + self._overhead_bytes + self._headroom_bytes
        return Usage(resident + len(self._reserved), held, self._closing_bytes)

    def serving_started(self) -> None:
        """The first reconcile is done: what the process holds now beyond its versions (the hot set)
        is the server itself, the baseline its later growth is measured from. Only with a budget."""
        if self.limits.budget_bytes is None or self._baseline_bytes is not None:
            return
        resident = footprint.resident_bytes()
        if resident is not None:
            self._baseline_bytes = resident - self._versions_bytes()
            self._count_overhead(int(self.limits.budget_bytes * STARTING_OVERHEAD_SHARE))
            self._headroom_bytes = int(self.limits.budget_bytes * HEADROOM_SHARE)

    def libraries_imported(self, size: int) -> None:
        """A load imported libraries (a framework's first model): the server's own from now on."""
        if self._baseline_bytes is not None:
            self._baseline_bytes += size

    def _versions_bytes(self) -> int:
        """What the loaded versions are charged. Not the loads under way: what they hold already, when
        the process is measured, counts as overhead until the next measurement (on the safe side)."""
        return self._resident_bytes + self._closing_bytes

    def _measure_overhead(self, resident: int | None) -> None:
        """What the process held, just before freed memory went back to the system, beyond its
        baseline and its versions: it counts against the budget until the next measurement, so the
        process stays within the budget between two returns too."""
        if self._baseline_bytes is None or resident is None:
            return
        self._count_overhead(max(0, resident - self._baseline_bytes - self._versions_bytes()))

    def _count_overhead(self, measured: int) -> None:
        """Add a figure to the window; the most of the window's counts."""
        now = time.monotonic()
        self._overheads.append((now, measured))
        while self._overheads[0][0] < now - OVERHEAD_WINDOW_S:
            self._overheads.popleft()
        self._overhead_bytes = max(measured for _, measured in self._overheads)
        self.metrics.cache_overhead_bytes.set(self._overhead_bytes)

    def measured(self, name: str, item: VersionOnDisk) -> int | None:
        """What the last load of this version measured, if it loaded in this process."""
        return self._measured.get((name, str(item.version)))

    def estimate(self, name: str, item: VersionOnDisk) -> int:
        measured = self.measured(name, item)
        if measured is not None:
            return measured
        return item.manifest.artifacts_bytes if item.manifest else 0

    def charge(self, loaded: LoadedVersion) -> None:
        """A version finished loading: it counts until it is closed."""
        if id(loaded) in self._charged:
            return
        self._charged[id(loaded)] = (loaded, loaded.memory_bytes)
        self._resident_bytes += loaded.memory_bytes
        view = self.registry.snapshot.models.get(loaded.name)
        self._enter(Segment.HOT if view is not None and view.entry.keep_loaded else Segment.FRESH, loaded)
        loaded.on_used = self._used
        self._measured[(loaded.name, loaded.version_text)] = loaded.memory_bytes

    def smoke_key(self, entry: ModelEntry, item: VersionOnDisk) -> SmokeKey | None:
        """What identifies a load's smoke check: the model, version, the entry's servable and the whole
        manifest (so, once its checksums are verified, the same bytes). None when every load must run
        it: no manifest, or a loader whose result may depend on more than the files (custom code)."""
        manifest = item.manifest
        facts = LOADERS.get(manifest.loader) if manifest is not None else None
        if manifest is None or facts is None or not facts.files_decide:
            return None
        return entry.model_name, str(item.version), entry.servable_name, manifest.fingerprint

    def smoke_check_needed(self, key: SmokeKey | None) -> bool:
        """Yes unless the same smoke check passed in this process: a model evicted and loaded again a
        hundred times a minute then pays for its example once."""
        return key is None or key not in self._smoke_checked

    def smoke_check_passed(self, key: SmokeKey | None) -> None:
        if key is not None:
            self._smoke_checked.add(key)

    def speed_of(self, entry: ModelEntry, item: VersionOnDisk) -> PredictSpeed | None:
        """Where this version's predictions run, as measured by its earlier loads in this process (the
        same files and servable: see smoke_key): an evicted version loaded again resumes predicting
        inline instead of spending its first calls on a lane thread to be measured again. None when
        it must be measured afresh."""
        key = self.smoke_key(entry, item)
        if key is None:
            return None
        return self._speeds.setdefault(key, PredictSpeed())

    def _used(self, loaded: LoadedVersion) -> None:
        """A request holds `loaded` (LoadedVersion.acquire): the most recently used of its segment now,
        a fresh one found loaded moving to the reused ones."""
        segment = self._segment_of.get(id(loaded))
        if segment is Segment.FRESH and loaded.reused:
            self._leave(loaded)
            self._enter(Segment.REUSED, loaded)
        elif segment is not None:
            self._segments[segment].move_to_end(id(loaded))

    def _enter(self, segment: Segment, loaded: LoadedVersion) -> None:
        key = id(loaded)
        self._segments[segment][key] = loaded
        self._segment_bytes[segment] += self._charged[key][1]
        self._segment_of[key] = segment

    def _leave(self, loaded: LoadedVersion) -> None:
        key = id(loaded)
        segment = self._segment_of.pop(key, None)
        if segment is not None:
            del self._segments[segment][key]
            self._segment_bytes[segment] -= self._charged[key][1]

    def retired(self, loaded: LoadedVersion) -> None:
        """A version was taken out of service (evicted or replaced): its memory counts as closing."""
        charged = self._charged.get(id(loaded))
        if charged is None or id(loaded) in self._closing:
            return
        loaded.on_used = None
        self._leave(loaded)
        self._closing.add(id(loaded))
        self._resident_bytes -= charged[1]
        self._closing_bytes += charged[1]

    def discharge(self, loaded: LoadedVersion) -> None:
        """A version was closed: its memory no longer counts (it is free for the next loads)."""
        self.retired(loaded)
        charged = self._charged.pop(id(loaded), None)
        self._freed.set()
        if charged is None:
            return
        self._closing.discard(id(loaded))
        self._closing_bytes -= charged[1]
        self.return_freed_soon()

    def return_freed_soon(self) -> None:
        """In RETURN_FREED_AFTER_S, once for every unload until then, give the system back the memory
        the allocator holds free (memory.py; in a thread: trimming walks every heap). Meanwhile the
        loads reuse what evicted versions freed: with a hundred loads a second, all but the first few."""
        if self._returning is not None:
            return
        loop = asyncio.get_running_loop()

        def return_freed() -> None:
            self._returning = None
            returned = loop.run_in_executor(None, _read_then_return_freed)
            returned.add_done_callback(measured)

        def measured(returned: asyncio.Future[int | None]) -> None:
            if not returned.cancelled() and returned.exception() is None:
                self._measure_overhead(returned.result())

        self._returning = loop.call_later(RETURN_FREED_AFTER_S, return_freed)

    def unreserve(self, name: str, version: str) -> None:
        """The load `make_room` reserved for is over (charged if it loaded)."""
        self._reserved.pop((name, version), None)

    async def make_room(self, name: str, item: VersionOnDisk, deadline: float | None = None) -> None:
        """Evict until `item` fits, then reserve its room until `unreserve` (loads run two at a time).
        Waits while the memory of evicted versions is being returned, or every candidate is busy.
        Raises ModelLoadError when it can never fit (bigger than the budget), ModelBusy when `deadline`
        (monotonic) passes first."""
        needed = self.estimate(name, item)
        reason = self.limits.too_big(name, item, needed)
        if reason is not None:
            raise ModelLoadError(reason, hint="raise --memory-budget, or serve this model from another server")
        while not self.limits.fit(usage := self.usage(), needed, 1) and not self._nothing_held():
            if not self.limits.fit(usage, needed, 1, closed=True) and self.evict_one(protect=name):
                continue  # else: enough is being returned already, or nothing is idle; look again soon
            if deadline is not None and time.monotonic() > deadline:
                raise ModelBusy(self._no_room(name, item), retry_after_s=1)
            self._freed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._freed.wait(), ROOM_POLL_S)
        self._reserved[(name, str(item.version))] = needed

    def _nothing_held(self) -> bool:
        """No version loaded, loading or closing: the overhead alone stands in a load's way."""
        return not self._charged and not self._reserved

    def _no_room(self, name: str, item: VersionOnDisk) -> str:
        message = f"no room to load model '{name}' version {item.version}: every loaded version is in use"
        if self._overhead_bytes and self.limits.budget_bytes is not None:
            budget = self.limits.flag("--memory-budget", format_bytes(self.limits.budget_bytes))
            own = format_bytes(self._overhead_bytes)
            message += f" (and the server's own memory beyond its versions takes {own} of {budget})"
        return message

    def trim(self) -> None:
        """After a load measured more than its estimate: evict until the limits hold again."""
        while not self.limits.fit(self.usage(), 0, 0, closed=True) and self.evict_one(protect=None):
            pass

    def evict_one(self, protect: str | None) -> bool:
        """Evict the least recently used idle version, reused ones last while within their share
        (never one of `protect`); False if none is idle."""
        victim = self._victim(protect)
        if victim is None:
            return False
        view = self.registry.view(victim.name)
        served = None if view.served is victim else view.served
        status = dataclasses.replace(
            view.statuses.get(victim.version_text) or VersionStatus(victim.version, VersionState.ON_DEMAND),
            state=VersionState.ON_DEMAND,
            reason=EVICTED,
            changed_at=time.time(),
        )
        loaded = {key: version for key, version in view.loaded.items() if version is not victim}
        view = dataclasses.replace(
            view, served=served, loaded=loaded, statuses={**view.statuses, victim.version_text: status}
        )
        self.registry.put(view)
        self.metrics.evictions.labels(victim.name).inc()
        self.metrics.set_resident(view.name, view.loaded.values())
        log.info(
            "model '%s' version %s evicted (idle %.1f s, %s)",
            victim.name,
            victim.version_text,
            time.monotonic() - victim.last_used,
            format_bytes(victim.memory_bytes),
        )
        self.unloader.retire([victim])
        return True

    def _victim(self, protect: str | None) -> LoadedVersion | None:
        """The version to evict (it runs before most loads, on the event loop, so it reads the
        segments from their oldest ends): the least recently used idle fresh one, unless reused versions
        hold more than REUSED_SHARE of the room the hot set leaves (by number or by memory); then, or
        when no fresh one is idle, the least recently used idle reused one. Last, a version loaded in
        the hot set whose entry no longer keeps it loaded (`_idle` reads the current entry)."""
        most, budget = self.limits.max_versions, self.limits.budget_bytes
        hot_count, hot_bytes = len(self._segments[Segment.HOT]), self._segment_bytes[Segment.HOT]
        reused_count, reused_bytes = len(self._segments[Segment.REUSED]), self._segment_bytes[Segment.REUSED]
        over_share = (most is not None and reused_count > REUSED_SHARE * (most - hot_count)) or (
            budget is not None and reused_bytes > REUSED_SHARE * (budget - hot_bytes)
        )
        order = (Segment.REUSED, Segment.FRESH) if over_share else (Segment.FRESH, Segment.REUSED)
        models = self.registry.snapshot.models
        for segment in (*order, Segment.HOT):
            for loaded in self._segments[segment].values():
                if self._idle(loaded, protect, models):
                    return loaded
        return None

    def _idle(self, loaded: LoadedVersion, protect: str | None, models: Mapping[str, ModelView]) -> bool:
        """No request holds it, it is not in the hot set (`keep_loaded`), it is not `protect`'s, it is
        what its model's view holds, and its model is not being reconciled or loaded (lock free)."""
        if loaded.in_flight or loaded.name == protect:
            return False
        view = models.get(loaded.name)
        return (
            view is not None
            and not view.entry.keep_loaded
            and view.loaded.get(loaded.version_text) is loaded
            and not self.locks.busy(loaded.name)
        )


def _read_then_return_freed() -> int | None:
    """In a thread: read the most the process held since the last return of freed memory (what the
    versions freed and no load reused, loads under way, a /metrics scrape's text: all of it was in RAM
    at once), hand freed memory back, and start the next peak from what is left."""
    peak = footprint.resident_peak_bytes()
    memory.return_freed()
    footprint.restart_resident_peak()
    return peak if peak is not None else footprint.resident_bytes()


def check_limits(config: AmmsConfig, limits: Limits) -> None:
    """Before the server starts: refuse limits no configuration could meet, naming the sizes (a hot
    set that fills the cap, a model bigger than the whole budget, a hot set bigger than it). Only a
    budget needs the repository read (0.5 s for 1,000 models); a cap on versions needs the config."""
    hot_count = sum(1 for entry in config.models if entry.keep_loaded)
    others = len(config.models) - hot_count
    most = limits.max_versions
    if most is not None and (hot_count > most or (others and hot_count == most)):
        room = "more than" if hot_count > most else f"leaving no room for the other {others} under"
        raise AmmsError(
            f"{hot_count} models are keep_loaded, {room} {limits.flag('--max-loaded-models', str(most))}",
            hint="raise --max-loaded-models, or set keep_loaded on fewer models",
        )
    if limits.budget_bytes is not None:
        _check_budget(config, limits, limits.budget_bytes)


def _check_budget(config: AmmsConfig, limits: Limits, budget_bytes: int) -> None:
    hot_bytes = 0
    for entry in config.models:
        plan = plan_model(entry, scan_model(config.model_dir(entry), entry.model_name), frozenset())
        if plan.serve is None or plan.serve.manifest is None:
            continue
        size = plan.serve.manifest.artifacts_bytes
        reason = limits.too_big(entry.model_name, plan.serve, size)
        if reason is not None:
            raise AmmsError(
                f"{reason} (the size of its files; in memory it takes at least that)",
                hint="raise --memory-budget, or serve this model from another server",
            )
        hot_bytes += size if entry.keep_loaded else 0
    if hot_bytes > budget_bytes:
        budget = limits.flag("--memory-budget", format_bytes(budget_bytes))
        raise AmmsError(
            f"the keep_loaded models need about {format_bytes(hot_bytes)}, more than {budget}",
            hint="raise --memory-budget, or set keep_loaded on fewer models",
        )
