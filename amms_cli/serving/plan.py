"""What each model should have loaded, decided without side effects: `plan_model` chooses the version
to serve and the ones to keep loaded; `describe` states every version's status for the APIs."""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass

from amms_cli.project.config import ModelEntry
from amms_cli.repository.scan import ModelOnDisk, VersionOnDisk
from amms_cli.repository.versions import Version
from amms_cli.serving.loaded_version import LoadedVersion
from amms_cli.serving.registry import VersionState, VersionStatus

FailureReason = Callable[[VersionOnDisk], str | None]  # why a version on disk failed to load, if it did
LOADS_ON_REQUEST = "loads on its first request"


@dataclass(frozen=True)
class ModelPlan:
    serve: VersionOnDisk | None
    keep: tuple[VersionOnDisk, ...]  # serve first, then pinned versions

    def missing(self, loaded: Mapping[str, LoadedVersion]) -> list[VersionOnDisk]:
        """The versions to keep that are not loaded yet, in order."""
        return [item for item in self.keep if str(item.version) not in loaded]


def plan_model(entry: ModelEntry, on_disk: ModelOnDisk, failed: frozenset[Version]) -> ModelPlan:
    serve = on_disk.resolve(entry.pattern, failed)
    keep = [serve] if serve else []
    for text in entry.pinned_versions:
        pinned = on_disk.get(Version.parse(text))
        if pinned is not None and pinned.ok and pinned.version not in failed and pinned not in keep:
            keep.append(pinned)
    return ModelPlan(serve, tuple(keep))


def describe(
    entry: ModelEntry,
    on_disk: ModelOnDisk,
    plan: ModelPlan,
    *,
    previous: Mapping[str, VersionStatus],
    loaded: Mapping[str, LoadedVersion],
    failure: FailureReason,
    on_demand: Collection[str] = (),
) -> dict[str, VersionStatus]:
    """The state of every version on disk (and of loaded ones whose folder is gone); with the model
    cache on, planned versions that are not loaded are ON_DEMAND."""
    statuses: dict[str, VersionStatus] = {}
    for item in on_disk.versions:
        key = str(item.version)
        reason = failure(item)
        if key in loaded:
            statuses[key] = previous.get(key) or VersionStatus(item.version, VersionState.AVAILABLE)
        elif reason is not None:
            statuses[key] = VersionStatus(item.version, VersionState.FAILED, reason)
        elif key in on_demand:
            status = previous.get(key)
            if status is None or status.state != VersionState.ON_DEMAND:
                status = VersionStatus(item.version, VersionState.ON_DEMAND, LOADS_ON_REQUEST)
            statuses[key] = status
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
