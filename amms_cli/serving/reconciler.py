"""Converge what is loaded on what the config and the repository ask for.

Each pass plans every model (`plan.plan_model`, pure), loads the versions the plan is missing
(`loading`, in a thread, with a timeout and a smoke check), publishes a new registry snapshot in one
assignment, and hands what is no longer wanted to the `Unloader`, which drains it before closing it.
One pass runs at a time; the triggers that arrive during a pass are served together by one more.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import functools
import logging
import time
from collections.abc import Callable

from amms_cli.errors import AmmsError, ConfigError
from amms_cli.loaders import LOADERS
from amms_cli.project.config import DEFAULT_BATCH_SIZE, AmmsConfig, ModelEntry, load_config
from amms_cli.repository.manifest import Manifest
from amms_cli.repository.scan import ModelOnDisk, VersionOnDisk, scan_model
from amms_cli.serving import gc_freeze
from amms_cli.serving.failures import FailureMemory
from amms_cli.serving.lanes import Lanes
from amms_cli.serving.loaded_version import BatchSettings, LoadedVersion
from amms_cli.serving.loading import CheckedModel, load_in_background
from amms_cli.serving.metrics import Metrics
from amms_cli.serving.plan import ModelPlan, describe, plan_model
from amms_cli.serving.registry import ModelView, Registry, VersionState, VersionStatus
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
        self.unloader = Unloader(registry, lanes, settings.drain_timeout_s)
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
        models = dict(self.registry.snapshot.models)
        wanted = {entry.model_name: entry for entry in self.config.models}
        for name in [n for n in models if n not in wanted]:
            self.unloader.retire(models.pop(name).loaded.values())
            for gauge in (self.metrics.loaded_versions, self.metrics.resident_bytes):
                with contextlib.suppress(KeyError):
                    gauge.remove(name)
            log.info("model '%s' removed", name)
        new_names = [name for name in wanted if name not in models]
        if new_names:  # visible (as loading) at once, before the slow part
            models.update({name: ModelView(wanted[name], pending=True) for name in new_names})
            self.registry.publish(dict(models))
        for name, entry in wanted.items():
            if name in self.held:
                models[name] = self._held_view(entry, models.get(name))
            else:

                def show(progress: ModelView) -> None:
                    self.registry.publish({**models, progress.name: progress})

                models[name] = await self._converge(entry, models.get(name), show)
        self.registry.publish(models, ready=True)
        if self._loaded_since_settle:
            self._loaded_since_settle = False
            gc_freeze.settle()

    async def _converge(
        self, entry: ModelEntry, view: ModelView | None, show: Callable[[ModelView], None]
    ) -> ModelView:
        """Load what the model's plan is missing, one version at a time (a failed load changes the plan),
        then serve the planned version. `show` publishes the model's view while a version loads."""
        view = _carried_over(entry, view)
        on_disk = scan_model(self.config.model_dir(entry), entry.model_name)
        for warning in on_disk.warnings:
            log.debug("%s", warning)
        plan = self._plan(entry, on_disk)
        while missing := plan.missing(view.loaded):
            view = _with_status(view, VersionStatus(missing[0].version, VersionState.LOADING))
            show(view)
            view = await self._load(entry, missing[0], view)
            plan = self._plan(entry, on_disk)
        return self._finish(entry, on_disk, plan, view)

    def _plan(self, entry: ModelEntry, on_disk: ModelOnDisk) -> ModelPlan:
        return plan_model(entry, on_disk, self.failures.failed_versions(entry.model_name, on_disk))

    async def _load(self, entry: ModelEntry, item: VersionOnDisk, view: ModelView) -> ModelView:
        """The view with `item` loaded (AVAILABLE), or FAILED with the reason."""
        name = entry.model_name
        started = time.perf_counter()
        try:
            checked = await load_in_background(entry, item, self.allowed_loaders)
        except AmmsError as exc:
            return self._fail(view, item, exc.message)
        except Exception as exc:
            return self._fail(view, item, f"{type(exc).__name__}: {exc}")
        seconds = time.perf_counter() - started
        self.metrics.load_seconds.labels(name).observe(seconds)
        self.metrics.loads.labels(name, "loaded").inc()
        loaded = self._loaded_version(entry, item, checked)
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
        statuses = describe(entry, on_disk, plan, previous=view.statuses, loaded=loaded, failure=failure)
        self.metrics.loaded_versions.labels(entry.model_name).set(len(loaded))
        self.metrics.resident_bytes.labels(entry.model_name).set(sum(v.memory_bytes for v in loaded.values()))
        return ModelView(entry, served, loaded, statuses)

    def _held_view(self, entry: ModelEntry, view: ModelView | None) -> ModelView:
        """A model unloaded through the admin API: nothing loaded, every version UNLOADED."""
        if view is not None:
            self.unloader.retire(view.loaded.values())
        on_disk = scan_model(self.config.model_dir(entry), entry.model_name)
        statuses = {
            str(item.version): VersionStatus(item.version, VersionState.UNLOADED, ADMIN_UNLOADED)
            for item in on_disk.versions
        }
        self.metrics.loaded_versions.labels(entry.model_name).set(0)
        self.metrics.resident_bytes.labels(entry.model_name).set(0)
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
    return ModelView(entry, view.served, dict(view.loaded), dict(view.statuses))


def _with_status(view: ModelView, status: VersionStatus, loaded: LoadedVersion | None = None) -> ModelView:
    """A copy of the view with one version's status replaced (and the version added when loaded)."""
    key = str(status.version)
    versions = {**view.loaded, key: loaded} if loaded is not None else view.loaded
    return dataclasses.replace(view, loaded=versions, statuses={**view.statuses, key: status})
