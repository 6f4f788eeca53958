"""Converge what is loaded on what the config and the repository ask for.

Each pass plans every model (`plan.plan_model`, pure), loads the versions the plan is missing
(`loading`, in a thread, with a timeout and a smoke check), publishes a new registry snapshot in one
assignment, and hands what is no longer wanted to the `Unloader`, which drains it before closing it.
One pass runs at a time; the triggers that arrive during a pass are served together by one more.

With the model cache on (serving/model_cache.py), a pass loads only the hot set (`keep_loaded`) and
the new versions of models that are resident; the others are planned but left for their first
request (`load_on_demand`), which takes the same per-model lock as a pass does.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import functools
import logging
import time
from collections.abc import Callable

from amms_cli.errors import AmmsError, ConfigError, ModelBusy, ModelNotReady
from amms_cli.loaders import LOADERS
from amms_cli.project.config import DEFAULT_BATCH_SIZE, AmmsConfig, ModelEntry, load_config
from amms_cli.repository.manifest import Manifest
from amms_cli.repository.scan import ModelOnDisk, VersionOnDisk, scan_model
from amms_cli.repository.versions import Version
from amms_cli.serving import gc_freeze
from amms_cli.serving.failures import FailureMemory
from amms_cli.serving.lanes import Lanes
from amms_cli.serving.loaded_version import BatchSettings, LoadedVersion
from amms_cli.serving.loading import CheckedModel, load_in_background
from amms_cli.serving.metrics import Metrics
from amms_cli.serving.model_cache import Limits, ModelCache, ModelLocks
from amms_cli.serving.plan import ModelPlan, describe, plan_model
from amms_cli.serving.registry import Described, ModelView, Registry, VersionState, VersionStatus
from amms_cli.serving.settings import ServeSettings
from amms_cli.serving.unloading import Unloader

log = logging.getLogger("amms.reconciler")
ADMIN_UNLOADED = "unloaded through the admin API"


class Reconciler:
    def __init__(
        self, registry: Registry, lanes: Lanes, config: AmmsConfig, metrics: Metrics, settings: ServeSettings
    ) -> None:
        self.registry = registry
        self.lanes = lanes
        self.config = config
        self.metrics = metrics
        self.allowed_loaders = settings.allowed_loaders
        settle = gc_freeze.settle_soon if settings.on_demand else gc_freeze.settle
        self.unloader = Unloader(lanes, settings.drain_timeout_s, settle)
        self.locks = ModelLocks()
        self.cache: ModelCache | None = None
        if settings.on_demand:
            limits = Limits.of(settings.max_loaded_models, settings.memory_budget_bytes, settings.workers)
            self.cache = ModelCache(limits, registry, self.unloader, metrics, self.locks)
        self.failures = FailureMemory()
        self.held: set[str] = set()  # models unloaded through the admin API
        self._lock = asyncio.Lock()
        self._requested = 0  # reconcile() calls so far
        self._covered = 0  # calls made before the last finished pass started: that pass served them
        self._last_config_error: str | None = None
        self._loaded_since_settle = False  # a load happened: collect and freeze once the pass is done

    async def reload_config(self) -> str | None:
        """Re-read the config file. An invalid or missing file is logged, the running config stays,
        and the problem is returned; None means the file was read."""
        try:
            config = load_config(self.config.path)
        except ConfigError as exc:
            if exc.message != self._last_config_error:
                log.error("config change ignored, the running config stays: %s", exc.message)
            self._last_config_error = exc.message
            return exc.message
        if config != self.config:
            log.info("config changed: %d model(s)", len(config.models))
        self.config = config
        self._last_config_error = None
        return None

    async def reconcile(self) -> None:
        """Return once a pass that started after this call has finished. Calls that arrive during a
        pass share the next one: one trigger and ten more during its pass make two passes, not eleven."""
        self._requested += 1
        ticket = self._requested
        async with self._lock:
            if self._covered >= ticket:
                return  # a pass that started after this call already ran
            covers = self._requested
            await self._pass()
            self._covered = covers

    async def hold(self, name: str) -> None:
        """Unload every version of a model until `release` (the admin API's unload)."""
        self.held.add(name)
        await self.reconcile()

    async def release(self, name: str) -> None:
        """Load a model again: clears an admin unload and the memory of its failed versions."""
        self.held.discard(name)
        self.failures.forget(name)
        await self.reconcile()

    async def stop(self) -> None:
        await self.unloader.wait_idle()
        self.lanes.shutdown()

    async def _pass(self) -> None:
        """Converge every model, each under its own lock, publishing each model's view as it is done."""
        wanted = {entry.model_name: entry for entry in self.config.models}
        for name in [n for n in self.registry.snapshot.models if n not in wanted]:
            async with self.locks.of(name):
                self.unloader.retire(self.registry.view(name).loaded.values())
                self.registry.remove(name)
            self.locks.forget(name)
            for gauge in (self.metrics.loaded_versions, self.metrics.resident_bytes):
                with contextlib.suppress(KeyError):
                    gauge.remove(name)
            log.info("model '%s' removed", name)
        for name, entry in wanted.items():  # new ones visible (as loading) at once, before the slow part
            if name not in self.registry.snapshot.models:
                self.registry.put(ModelView(entry, pending=True))
        for name, entry in wanted.items():
            async with self.locks.of(name):
                view = self.registry.snapshot.models.get(name)
                if name in self.held:
                    self._publish(self._held_view(entry, view))
                else:
                    self._publish(await self._converge(entry, view, self.registry.put))
        self.registry.mark_ready()
        if self.cache is not None:
            self.cache.serving_started()
        if self._loaded_since_settle:
            self._loaded_since_settle = False
            self.unloader.settle()

    async def _converge(
        self, entry: ModelEntry, view: ModelView | None, show: Callable[[ModelView], object]
    ) -> ModelView:
        """Load what the model's plan is missing, one version at a time (a failed load changes the plan),
        then serve the planned version. `show` publishes the model's view while a version loads."""
        view = _carried_over(entry, view)
        on_disk = scan_model(self.config.model_dir(entry), entry.model_name)
        for warning in on_disk.warnings:
            log.debug("%s", warning)
        plan = self._plan(entry, on_disk)
        tried: set[Version] = set()
        while missing := [item for item in self._to_load_now(entry, plan, view) if item.version not in tried]:
            item = missing[0]
            tried.add(item.version)
            view = _with_status(view, VersionStatus(item.version, VersionState.LOADING))
            show(view)
            try:
                view = await self._load(entry, item, view)
            except ModelBusy as exc:  # no room in the model cache in time: it loads on a request later
                view = _with_status(view, VersionStatus(item.version, VersionState.ON_DEMAND, exc.message))
            plan = self._plan(entry, on_disk)
        return self._finish(entry, on_disk, plan, view)

    def _publish(self, view: ModelView) -> None:
        """Publish a model's view; with the model cache, evict others if its loads measured more than
        expected."""
        self.registry.put(view)
        if self.cache is not None:
            self.cache.trim()

    def _to_load_now(self, entry: ModelEntry, plan: ModelPlan, view: ModelView) -> list[VersionOnDisk]:
        """Every planned version not loaded; with the model cache, only for the hot set, and for a
        resident model its new version to serve (the swap of live reload). The rest load on demand."""
        missing = plan.missing(view.loaded)
        if self.cache is None or entry.keep_loaded:
            return missing
        resident = view.served is not None
        return [item for item in missing if resident and item is plan.serve]

    async def load_on_demand(self, name: str, key: str) -> LoadedVersion:
        """Load version `key` of a model for a request that found it not loaded (the model cache's cold
        start); returns at once when another load already finished it. ModelNotReady if it fails."""
        async with self.locks.of(name):
            view = self.registry.view(name)
            loaded = view.loaded.get(key)
            if loaded is not None:
                return loaded
            item = view.on_demand.get(key)
            if item is None:
                raise ModelNotReady(f"model '{name}' version {key} is not planned to be served any more")
            before = view.statuses.get(key)
            self.registry.put(_with_status(view, VersionStatus(item.version, VersionState.LOADING)))
            try:
                view = await self._load(view.entry, item, view)
            except BaseException:  # no room in time (ModelBusy), or the request's wait was cancelled
                self.registry.put(view if before is None else _with_status(view, before))
                raise
            loaded = view.loaded.get(key)
            if loaded is not None and key == view.target:
                view = dataclasses.replace(view, served=loaded)
            self._publish(view)
            self.metrics.set_resident(name, view.loaded.values())
            if loaded is not None:
                gc_freeze.settle_soon()  # freeze it out of future collections, with the others loaded soon
        if loaded is None:
            asyncio.get_running_loop().create_task(self.reconcile())  # the plan falls back to another version
            raise ModelNotReady(f"model '{name}' version {key} failed to load: {view.statuses[key].reason}")
        return loaded

    def _plan(self, entry: ModelEntry, on_disk: ModelOnDisk) -> ModelPlan:
        return plan_model(entry, on_disk, self.failures.failed_versions(entry.model_name, on_disk))

    async def _load(self, entry: ModelEntry, item: VersionOnDisk, view: ModelView) -> ModelView:
        """The view with `item` loaded (AVAILABLE), or FAILED with the reason; ModelBusy when the model
        cache found no room for it in time (not a failure of the version)."""
        name = entry.model_name
        started = time.perf_counter()
        try:
            checked = await self._load_within_limits(entry, item)
        except ModelBusy:
            raise
        except AmmsError as exc:
            return self._fail(view, item, exc.message)
        except Exception as exc:
            return self._fail(view, item, f"{type(exc).__name__}: {exc}")
        seconds = time.perf_counter() - started
        self.metrics.load_seconds.labels(name).observe(seconds)
        self.metrics.loads.labels(name, "loaded").inc()
        loaded = self._loaded_version(entry, item, checked)
        if self.cache is not None:
            self.cache.charge(loaded)  # trimmed to the limits once its view is published (_publish)
            self.cache.libraries_imported(checked.libraries_bytes)
        self._loaded_since_settle = True
        log.info(
            "model '%s' version %s loaded in %.2f s (%.1f MiB)",
            name,
            item.version,
            seconds,
            checked.memory_bytes / 2**20,
        )
        status = VersionStatus(
            item.version, VersionState.AVAILABLE, None, loaded.manifest.framework, seconds, checked.memory_bytes
        )
        return _with_status(view, status, loaded)

    async def _load_within_limits(self, entry: ModelEntry, item: VersionOnDisk) -> CheckedModel:
        """Load in the background; with the model cache, in room made for it first."""
        if self.cache is None:
            return await load_in_background(entry, item, self.allowed_loaders)
        await self.cache.make_room(entry.model_name, item, deadline=time.monotonic() + entry.load_timeout_s)
        smoke_key = self.cache.smoke_key(entry, item)
        smoke_check = self.cache.smoke_check_needed(smoke_key)
        # the same files loaded before in this process: the same memory (measured then)
        measured = None if smoke_check else self.cache.measured(entry.model_name, item)
        try:
            checked = await load_in_background(
                entry, item, self.allowed_loaders, smoke_check=smoke_check, measured_bytes=measured
            )
        finally:
            self.cache.unreserve(entry.model_name, str(item.version))
        if smoke_check:
            self.cache.smoke_check_passed(smoke_key)
        return checked

    def _loaded_version(self, entry: ModelEntry, item: VersionOnDisk, checked: CheckedModel) -> LoadedVersion:
        """The loaded version, complete: the thread it predicts on and, when configured, its batcher."""
        assert item.manifest is not None  # load_checked refuses versions without one
        name = entry.model_name
        serial = LOADERS[item.manifest.loader].predicts_serially
        batching = None
        size = batch_size(entry, item.manifest)
        if size > 1 and checked.servable.batchable:
            on_batch = self.metrics.batch_size.labels(name).observe
            batching = BatchSettings(size, entry.max_wait_ms, on_batch)
        return LoadedVersion(
            name=name,
            version=item.version,
            manifest=item.manifest,
            model=checked.model,
            servable=checked.servable,
            executor=self.lanes.for_model(name, serial),
            serial=serial,
            batching=batching,
            memory_bytes=checked.memory_bytes,
            speed=self.cache.speed_of(entry, item) if self.cache is not None else None,
        )

    def _fail(self, view: ModelView, item: VersionOnDisk, reason: str) -> ModelView:
        self.metrics.loads.labels(view.name, "failed").inc()
        log.error("model '%s' version %s FAILED: %s", view.name, item.version, reason)
        self.failures.remember(view.name, item, reason)
        return _with_status(view, VersionStatus(item.version, VersionState.FAILED, reason))

    def _finish(self, entry: ModelEntry, on_disk: ModelOnDisk, plan: ModelPlan, view: ModelView) -> ModelView:
        """Swap in the planned served version, retire what is no longer wanted, describe every version."""
        keep = {str(item.version) for item in plan.keep}
        loaded = {k: v for k, v in view.loaded.items() if k in keep}
        self.unloader.retire(v for k, v in view.loaded.items() if k not in keep)
        served = loaded.get(str(plan.serve.version)) if plan.serve else None
        if served is not None and (view.served is None or view.served.version != served.version):
            log.info("model '%s' now serves version %s", entry.model_name, served.version_text)
        failure = functools.partial(self.failures.reason, entry.model_name)
        on_demand = {str(item.version): item for item in plan.keep} if self.cache is not None else {}
        statuses = describe(
            entry, on_disk, plan, previous=view.statuses, loaded=loaded, failure=failure, on_demand=on_demand
        )
        self.metrics.set_resident(entry.model_name, loaded.values())
        if not on_demand or plan.serve is None:
            return ModelView(entry, served, loaded, statuses)
        return ModelView(
            entry,
            served,
            loaded,
            statuses,
            on_demand=on_demand,
            target=str(plan.serve.version),
            target_described=Described.of(entry, plan.serve),
        )

    def _held_view(self, entry: ModelEntry, view: ModelView | None) -> ModelView:
        """A model unloaded through the admin API: nothing loaded, every version UNLOADED."""
        if view is not None:
            self.unloader.retire(view.loaded.values())
        on_disk = scan_model(self.config.model_dir(entry), entry.model_name)
        statuses = {
            str(item.version): VersionStatus(item.version, VersionState.UNLOADED, ADMIN_UNLOADED)
            for item in on_disk.versions
        }
        self.metrics.set_resident(entry.model_name, ())
        return ModelView(entry, None, {}, statuses)


def batch_size(entry: ModelEntry, manifest: Manifest) -> int:
    """The entry's max_batch_size, or by default batching on for models whose rows are independent."""
    if entry.max_batch_size is not None:
        return entry.max_batch_size
    return DEFAULT_BATCH_SIZE if manifest.input.row_independent else 1


def _carried_over(entry: ModelEntry, view: ModelView | None) -> ModelView:
    """The model's view for this pass: what is loaded stays loaded; an edited entry replaces the old."""
    if view is None:
        return ModelView(entry)
    if view.entry == entry:
        return view
    return dataclasses.replace(view, entry=entry)


def _with_status(view: ModelView, status: VersionStatus, loaded: LoadedVersion | None = None) -> ModelView:
    """A copy of the view with one version's status replaced (and the version added when loaded)."""
    key = str(status.version)
    versions = {**view.loaded, key: loaded} if loaded is not None else view.loaded
    return dataclasses.replace(view, loaded=versions, statuses={**view.statuses, key: status})
