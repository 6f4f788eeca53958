"""Converge what is loaded on what the config and the repository ask for.

`plan_model` is pure: from an entry, the versions on disk and the versions known to fail, it says
which version to serve and which to keep loaded. `Reconciler` applies plans: load in a thread (checksums,
load, smoke check on the recorded example), swap the snapshot, then drain and unload what is no longer
wanted. One reconcile runs at a time; triggers that arrive meanwhile are folded into one more run.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, TypeVar

from amms_cli.errors import AmmsError, ConfigError, ModelLoadError
from amms_cli.loaders import RUNS_CODE, load_version
from amms_cli.project.config import AmmsConfig, ModelEntry, load_config
from amms_cli.repository.scan import ModelOnDisk, VersionOnDisk, scan_model
from amms_cli.repository.versions import Version
from amms_cli.servables import get_servable
from amms_cli.serving import gc_freeze
from amms_cli.serving.batching import CONCURRENT_BATCHES, Batcher
from amms_cli.serving.inference import predict
from amms_cli.serving.metrics import Metrics
from amms_cli.serving.registry import LoadedVersion, ModelView, Registry, VersionState, VersionStatus

log = logging.getLogger("amms.reconcile")
Fingerprint = tuple[int, int]
T = TypeVar("T")


@dataclass(frozen=True)
class ModelPlan:
    serve: VersionOnDisk | None
    keep: tuple[VersionOnDisk, ...]  # serve first, then pinned versions


def plan_model(entry: ModelEntry, on_disk: ModelOnDisk, failed: frozenset[Version]) -> ModelPlan:
    serve = on_disk.resolve(entry.pattern, failed)
    keep = [serve] if serve else []
    for text in entry.pinned_versions:
        pinned = on_disk.get(Version.parse(text))
        if pinned is not None and pinned.ok and pinned.version not in failed and pinned not in keep:
            keep.append(pinned)
    return ModelPlan(serve, tuple(keep))


def fingerprint(item: VersionOnDisk) -> Fingerprint:
    """Identifies one publication of a version folder, so a re-published folder is tried again."""
    try:
        stat = (item.path / "amms-version.json").stat()
    except OSError:
        return (0, 0)
    return (stat.st_ino, stat.st_mtime_ns)


class Reconciler:
    def __init__(
        self,
        registry: Registry,
        config: AmmsConfig,
        metrics: Metrics,
        drain_timeout_s: float = 30.0,
        allowed_loaders: frozenset[str] | None = None,
    ) -> None:
        self.registry = registry
        self.config = config
        self.metrics = metrics
        self.drain_timeout_s = drain_timeout_s
        self.allowed_loaders = allowed_loaders
        self.failed: dict[tuple[str, Version], tuple[Fingerprint, str]] = {}
        self.held: set[str] = set()  # models unloaded through the admin API
        self._lock = asyncio.Lock()
        self._again = False
        self._last_config_error: str | None = None
        self._background: set[asyncio.Task[None]] = set()
        self._retiring: Counter[str] = Counter()  # versions of each model waiting to be unloaded
        self._loaded_since_settle = False  # a load happened: settle the heap once the pass is done

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
        """Run one pass; if one is running, ask it to run once more and return when that is done."""
        if self._lock.locked():
            self._again = True
        async with self._lock:
            self._again = True
            while self._again:
                self._again = False
                await self._pass()

    async def _pass(self) -> None:
        models = dict(self.registry.snapshot.models)
        wanted = {entry.model_name: entry for entry in self.config.models}
        for name in [n for n in models if n not in wanted]:
            self._retire(models.pop(name).loaded.values())
            with contextlib.suppress(KeyError):
                self.metrics.loaded_versions.remove(name)
            log.info("model '%s' removed", name)
        new_names = [name for name in wanted if name not in models]
        if new_names:  # visible (as loading) at once, before the slow part
            models.update({name: ModelView(wanted[name], pending=True) for name in new_names})
            self.registry.publish(dict(models))
        for name, entry in wanted.items():
            if name in self.held:
                models[name] = self._held_view(entry, models.get(name))
            else:
                models[name] = await self._converge(entry, models.get(name), models)
        self.registry.publish(models, ready=True)
        if self._loaded_since_settle:
            self._loaded_since_settle = False
            gc_freeze.settle()

    def _gauged(self) -> set[str]:
        return {
            sample.labels["model"] for metric in self.metrics.loaded_versions.collect() for sample in metric.samples
        }

    async def _converge(self, entry: ModelEntry, view: ModelView | None, models: dict[str, ModelView]) -> ModelView:
        if view is None or view.entry != entry:
            view = ModelView(
                entry,
                view.served if view else None,
                dict(view.loaded) if view else {},
                dict(view.statuses) if view else {},
            )
        on_disk = scan_model(self.config.model_dir(entry), entry.model_name)
        for warning in on_disk.warnings:
            log.debug("%s", warning)
        while True:
            plan = plan_model(entry, on_disk, self._failed_versions(entry.model_name, on_disk))
            missing = [item for item in plan.keep if str(item.version) not in view.loaded]
            if not missing:
                break
            item = missing[0]
            view = await self._load(entry, item, view, models)
        return self._finish(entry, on_disk, plan, view)

    def _held_view(self, entry: ModelEntry, view: ModelView | None) -> ModelView:
        """A model unloaded through the admin API: nothing loaded, every version UNLOADED."""
        if view is not None:
            self._retire(view.loaded.values())
        on_disk = scan_model(self.config.model_dir(entry), entry.model_name)
        statuses = {
            str(item.version): VersionStatus(item.version, VersionState.UNLOADED, "unloaded through the admin API")
            for item in on_disk.versions
        }
        self.metrics.loaded_versions.labels(entry.model_name).set(0)
        return ModelView(entry, None, {}, statuses)

    def _failed_versions(self, name: str, on_disk: ModelOnDisk) -> frozenset[Version]:
        failed = set()
        for item in on_disk.versions:
            record = self.failed.get((name, item.version))
            if record is not None and record[0] == fingerprint(item):
                failed.add(item.version)
        return frozenset(failed)

    async def _load(
        self, entry: ModelEntry, item: VersionOnDisk, view: ModelView, models: dict[str, ModelView]
    ) -> ModelView:
        name, key = entry.model_name, str(item.version)
        view = replace(view, statuses={**view.statuses, key: VersionStatus(item.version, VersionState.LOADING)})
        models[name] = view
        self.registry.publish(dict(models))
        started = time.perf_counter()
        try:
            loaded = await asyncio.wait_for(
                in_daemon_thread(load_checked, entry, item, self.allowed_loaders), entry.load_timeout_s
            )
        except TimeoutError:
            return self._fail(view, item, f"load took longer than load_timeout_s={entry.load_timeout_s:g}")
        except AmmsError as exc:
            return self._fail(view, item, exc.message)
        except Exception as exc:
            return self._fail(view, item, f"{type(exc).__name__}: {exc}")
        seconds = time.perf_counter() - started
        self.metrics.load_seconds.labels(name).observe(seconds)
        self._attach(entry, loaded)
        self._loaded_since_settle = True
        log.info("model '%s' version %s loaded in %.2f s", name, key, seconds)
        status = VersionStatus(item.version, VersionState.AVAILABLE, None, loaded.manifest.framework, seconds)
        return replace(view, loaded={**view.loaded, key: loaded}, statuses={**view.statuses, key: status})

    def _fail(self, view: ModelView, item: VersionOnDisk, reason: str) -> ModelView:
        name = view.entry.model_name
        log.error("model '%s' version %s FAILED: %s", name, item.version, reason)
        self.failed[(name, item.version)] = (fingerprint(item), reason)
        status = VersionStatus(item.version, VersionState.FAILED, reason)
        return replace(view, statuses={**view.statuses, str(item.version): status})

    def _attach(self, entry: ModelEntry, loaded: LoadedVersion) -> None:
        """Give a freshly loaded version its prediction thread(s) and, when configured, its batcher."""
        name = entry.model_name
        loaded.executor = self.registry.lane(name) if loaded.serialised else self.registry.executor
        if entry.max_batch_size > 1 and loaded.servable.batchable:
            loaded.batcher = Batcher(
                loaded.model,
                loaded.servable,
                loaded.executor,
                entry.max_batch_size,
                entry.max_wait_ms,
                loaded.predict,
                on_batch=self.metrics.batch_size.labels(name).observe,
                max_parallel=1 if loaded.serialised else CONCURRENT_BATCHES,
            )

    def _finish(self, entry: ModelEntry, on_disk: ModelOnDisk, plan: ModelPlan, view: ModelView) -> ModelView:
        """Swap in the planned served version, retire what is no longer wanted, describe every version."""
        keep = {str(item.version) for item in plan.keep}
        loaded = {k: v for k, v in view.loaded.items() if k in keep}
        self._retire(v for k, v in view.loaded.items() if k not in keep)
        served = loaded.get(str(plan.serve.version)) if plan.serve else None
        if served is not None and (view.served is None or view.served.version != served.version):
            log.info("model '%s' now serves version %s", entry.model_name, served.version_text)
        statuses = describe(entry, on_disk, plan, view.statuses, loaded, self.failed)
        self.metrics.loaded_versions.labels(entry.model_name).set(len(loaded))
        return ModelView(entry, served, loaded, statuses)

    def _retire(self, versions: Iterable[LoadedVersion]) -> None:
        for version in versions:
            self._retiring[version.name] += 1
            task = asyncio.get_running_loop().create_task(self._unload(version))
            self._background.add(task)
            task.add_done_callback(self._background.discard)

    async def _unload(self, version: LoadedVersion) -> None:
        drained = await version.drain(self.drain_timeout_s)
        if not drained:
            log.warning(
                "model '%s' version %s still had %d request(s) after %.0f s; unloading anyway",
                version.name,
                version.version_text,
                version.in_flight,
                self.drain_timeout_s,
            )
        version.model.close()
        version.batcher = None
        self._retiring[version.name] -= 1
        if not self._retiring[version.name] and version.name not in self.registry.snapshot.models:
            self.registry.close_lane(version.name)  # the model was removed and its last version is gone
        gc_freeze.settle()
        log.info("model '%s' version %s unloaded", version.name, version.version_text)

    async def hold(self, name: str) -> None:
        self.held.add(name)
        await self.reconcile()

    async def release(self, name: str) -> None:
        self.held.discard(name)
        for key in [k for k in self.failed if k[0] == name]:
            del self.failed[key]
        await self.reconcile()

    async def wait_idle(self) -> None:
        """Wait for background unloads (used by shutdown and tests)."""
        if self._background:
            await asyncio.gather(*self._background, return_exceptions=True)


def in_daemon_thread(function: Callable[..., T], *args: Any) -> asyncio.Future[T]:
    """Run `function` in a daemon thread: a load that hangs past its timeout is abandoned and cannot
    keep the process from exiting (executor threads would be joined at exit)."""
    loop = asyncio.get_running_loop()
    future: asyncio.Future[T] = loop.create_future()

    def settle(result: T | None, error: BaseException | None) -> None:
        if future.done():
            return
        if error is not None:
            future.set_exception(error)
        else:
            future.set_result(result)  # type: ignore[arg-type]

    def target() -> None:
        try:
            result = function(*args)
        except BaseException as exc:
            loop.call_soon_threadsafe(settle, None, exc)
        else:
            loop.call_soon_threadsafe(settle, result, None)

    threading.Thread(target=target, name="amms-load", daemon=True).start()
    return future


def load_checked(
    entry: ModelEntry, item: VersionOnDisk, allowed_loaders: frozenset[str] | None = None
) -> LoadedVersion:
    """Verify, load and smoke-check one version (runs in a worker thread)."""
    manifest = item.manifest
    if manifest is None:
        raise ModelLoadError(item.problem or "no manifest")
    if allowed_loaders is not None and manifest.loader not in allowed_loaders:
        runs_code = " (loading it runs code from the artifact)" if manifest.loader in RUNS_CODE else ""
        raise ModelLoadError(
            f"loader '{manifest.loader}' is refused by --allow-frameworks {','.join(sorted(allowed_loaders))}"
            + runs_code
        )
    model = load_version(item.path, manifest)
    servable = get_servable(entry.servable_name or manifest.servable_name)
    example = servable.example(manifest.input)
    if example is not None:
        try:
            predict(model, servable.parse(example, manifest.input), False)
        except AmmsError as exc:
            model.close()
            raise ModelLoadError(f"smoke check on the recorded example failed: {exc.message}") from exc
    return LoadedVersion(entry.model_name, item.version, manifest, model, servable)


def describe(
    entry: ModelEntry,
    on_disk: ModelOnDisk,
    plan: ModelPlan,
    previous: dict[str, VersionStatus],
    loaded: dict[str, LoadedVersion],
    failed: dict[tuple[str, Version], tuple[Fingerprint, str]],
) -> dict[str, VersionStatus]:
    """The state of every version on disk (and of loaded ones whose folder is gone)."""
    statuses: dict[str, VersionStatus] = {}
    for item in on_disk.versions:
        key = str(item.version)
        record = failed.get((entry.model_name, item.version))
        if key in loaded:
            statuses[key] = previous.get(key) or VersionStatus(item.version, VersionState.AVAILABLE)
        elif record is not None and record[0] == fingerprint(item):
            statuses[key] = VersionStatus(item.version, VersionState.FAILED, record[1])
        else:
            statuses[key] = VersionStatus(item.version, VersionState.UNLOADED, _why_unloaded(entry, item, plan))
    for key, version in loaded.items():
        statuses.setdefault(key, VersionStatus(version.version, VersionState.AVAILABLE, "folder removed from disk"))
    return statuses


def _why_unloaded(entry: ModelEntry, item: VersionOnDisk, plan: ModelPlan) -> str:
    if item.problem:
        return item.problem
    if not entry.pattern.matches(item.version):
        return f"does not match aspired_version {entry.aspired_version}"
    if plan.serve is not None:
        return f"version {plan.serve.version} is served"
    return "not selected"


def config_watch_paths(config: AmmsConfig) -> list[Path]:
    roots = {entry.source(config.base_dir).watch_root() for entry in config.models}
    return [config.path, *sorted(roots)]
