"""Models in memory: an immutable snapshot of every configured model, its loaded versions and the
state of each version seen on disk. Requests read the current snapshot without locks; the
reconciler (and, with the model cache on, a request's on-demand load or an eviction) replaces one
model's view at a time, each change a new snapshot swapped in by one assignment.

All mutations happen on the event loop thread (the reconciler is a coroutine), so leases
(in-flight counts used to drain a version before it is unloaded) need no locks either.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from amms_cli.errors import AmmsError, ModelNotReady, NotFound
from amms_cli.project.config import ModelEntry
from amms_cli.repository.manifest import Manifest
from amms_cli.repository.scan import VersionOnDisk
from amms_cli.repository.versions import Version
from amms_cli.servables import Servable, make_servable
from amms_cli.serving.loaded_version import LoadedVersion


class VersionState(StrEnum):
    LOADING = "LOADING"
    AVAILABLE = "AVAILABLE"
    FAILED = "FAILED"
    UNLOADED = "UNLOADED"
    ON_DEMAND = "ON_DEMAND"  # known and loadable, not in memory: its first request loads it (model cache)


@dataclass(frozen=True)
class VersionStatus:
    version: Version
    state: VersionState
    reason: str | None = None
    framework: str | None = None
    load_seconds: float | None = None
    memory_bytes: int | None = None  # measured at load (serving/memory.py)
    changed_at: float = field(default_factory=time.time)


@dataclass(frozen=True)
class Described:
    """A version as the APIs document it without loading it (the model cache): from its manifest. It
    has what the metadata routes read of a LoadedVersion (see serving/signatures.py)."""

    name: str
    version_text: str
    manifest: Manifest
    servable: Servable

    @property
    def classes(self) -> list[Any] | None:
        return self.manifest.input.classes

    @property
    def has_predict_proba(self) -> bool:
        return self.manifest.input.has_predict_proba

    @classmethod
    def of(cls, entry: ModelEntry, item: VersionOnDisk) -> Described | None:
        """From a version's manifest (None without one, or naming no servable amms knows)."""
        if item.manifest is None:
            return None
        servable_name = entry.servable_name or item.manifest.servable_name
        try:
            servable = make_servable(servable_name, item.manifest.input, entry.model_name)
        except (AmmsError, KeyError):
            return None
        return cls(entry.model_name, str(item.version), item.manifest, servable)


@dataclass(frozen=True)
class ModelView:
    """One configured model: which version is served, which are loaded, and every version's state."""

    entry: ModelEntry
    served: LoadedVersion | None = None
    loaded: dict[str, LoadedVersion] = field(default_factory=dict)
    statuses: dict[str, VersionStatus] = field(default_factory=dict)
    pending: bool = False  # configured, not reconciled yet
    # with the model cache on: the planned versions (the one to serve, then pinned ones), resident or
    # not, that a request may load; `target` is the key of the one to serve
    on_demand: dict[str, VersionOnDisk] = field(default_factory=dict)
    target: str | None = None
    target_described: Described | None = None  # the target, from its manifest: its schema without loading it

    @property
    def name(self) -> str:
        return self.entry.model_name

    @property
    def described(self) -> Described | None:
        """The served version, or (model cache) the one a request would load."""
        if self.served is not None:
            served = self.served
            return Described(self.name, served.version_text, served.manifest, served.servable)
        return self.target_described

    @property
    def servable_on_demand(self) -> bool:
        """Nothing served now, but a request would load the version to serve."""
        return self.served is None and self.target is not None and self.target in self.on_demand

    def sorted_statuses(self) -> list[VersionStatus]:
        return sorted(self.statuses.values(), key=lambda s: s.version)


@dataclass(frozen=True)
class Snapshot:
    models: dict[str, ModelView] = field(default_factory=dict)
    generation: int = 0
    ready: bool = False  # the first reconcile has finished


class Registry:
    """Owns the current snapshot: published by the reconciler, read by every request."""

    def __init__(self) -> None:
        self.snapshot = Snapshot()
        self.started = False  # every model configured at start-up has been served once

    def publish(self, models: dict[str, ModelView], ready: bool | None = None) -> Snapshot:
        current = self.snapshot
        self.snapshot = Snapshot(models, current.generation + 1, current.ready if ready is None else ready)
        if not self.started and self.snapshot.ready and not self.unavailable():
            self.started = True
        return self.snapshot

    def put(self, view: ModelView) -> Snapshot:
        """Replace (or add) one model's view, leaving every other model as it is now."""
        return self.publish({**self.snapshot.models, view.name: view})

    def remove(self, name: str) -> Snapshot:
        return self.publish({k: v for k, v in self.snapshot.models.items() if k != name})

    def mark_ready(self) -> Snapshot:
        """The first reconcile has finished."""
        return self.publish(self.snapshot.models, ready=True)

    def view(self, name: str) -> ModelView:
        view = self.snapshot.models.get(name)
        if view is None:
            known = ", ".join(sorted(self.snapshot.models)) or "none"
            raise NotFound(f"model '{name}' not found (models: {known})")
        return view

    def resolve(self, name: str, version: str | None = None) -> LoadedVersion:
        """The loaded version a request should use: the served one, or an exact loaded one."""
        view = self.view(name)
        if version is None:
            if view.served is not None:
                return view.served
            raise ModelNotReady(f"model '{name}' has no available version ({_why_not(view)})")
        loaded = view.loaded.get(version)
        if loaded is not None:
            return loaded
        status = view.statuses.get(version)
        if status is not None and status.state == VersionState.LOADING:
            raise ModelNotReady(f"model '{name}' version {version} is loading")
        routable = ", ".join(sorted(view.loaded, key=Version.parse)) or "none"
        detail = f" ({status.state}: {status.reason})" if status is not None and status.reason else ""
        raise NotFound(f"model '{name}' has no loaded version {version}{detail} (loaded: {routable})")

    def is_ready(self) -> bool:
        """Ready once every model configured at start-up has a served version, and from then on: a
        model added later, or one that loses its last version, is reported (`unavailable`) and
        answers 503 itself, but does not take the whole server out of its load balancer."""
        return self.started

    def unavailable(self) -> dict[str, str]:
        """Every model without a served version (or one a request would load), with the reason."""
        return {
            name: _why_not(view)
            for name, view in self.snapshot.models.items()
            if view.served is None and not view.servable_on_demand
        }

    def described(self, name: str, version: str | None) -> LoadedVersion | Described:
        """The version a metadata request is about: loaded, or described from its manifest when a
        request would load it (nothing is loaded to describe it)."""
        try:
            return self.resolve(name, version)
        except (ModelNotReady, NotFound):
            item = self.loadable(name, version)
            view = self.snapshot.models.get(name)
            described = Described.of(view.entry, item) if item is not None and view is not None else None
            if described is None:
                raise
            return described

    def loadable(self, name: str, version: str | None) -> VersionOnDisk | None:
        """The version a request for (`name`, `version`) would load on demand, if it is not loaded."""
        view = self.snapshot.models.get(name)
        if view is None:
            return None
        key = view.target if version is None else version
        if key is None or key in view.loaded:
            return None
        return view.on_demand.get(key)


def _why_not(view: ModelView) -> str:
    statuses = view.sorted_statuses()
    if view.pending:
        return "loading"
    if not statuses:
        return "no versions on disk match " + view.entry.aspired_version
    if all(s.state == VersionState.UNLOADED for s in statuses) and statuses[-1].reason:
        return statuses[-1].reason
    if any(s.state == VersionState.LOADING for s in statuses):
        return "loading"
    failed = [s for s in statuses if s.state == VersionState.FAILED]
    if failed:
        return f"{failed[-1].version} FAILED: {failed[-1].reason}"
    return "no version matches " + view.entry.aspired_version
