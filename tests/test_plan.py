"""The reconciler's pure parts: which version a model serves and keeps loaded, the status of every
version, and the memory of failed versions (forgotten when a folder is published again)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from projects import publish_payloads

from amms_cli.project.config import ModelEntry
from amms_cli.repository.scan import ModelOnDisk, scan_model
from amms_cli.repository.versions import Version
from amms_cli.serving.failures import FailureMemory
from amms_cli.serving.plan import describe, plan_model
from amms_cli.serving.registry import VersionState

V = Version.parse


@pytest.fixture
def on_disk(tmp_path: Path) -> ModelOnDisk:
    folder = tmp_path / "models" / "m"
    publish_payloads(folder, "1.0.0", "1.1.0", "1.2.0", "2.0.0")
    return scan_model(folder, "m")


def entry(**fields: object) -> ModelEntry:
    return ModelEntry.model_validate({"model_name": "m", **fields})


def test_the_newest_matching_version_is_served(on_disk: ModelOnDisk) -> None:
    plan = plan_model(entry(aspired_version="1.x"), on_disk, frozenset())
    assert plan.serve is not None and plan.serve.version == V("1.2.0")
    assert [item.version for item in plan.keep] == [V("1.2.0")]


def test_a_failed_version_gives_way_to_the_next_newest(on_disk: ModelOnDisk) -> None:
    plan = plan_model(entry(aspired_version="1.x"), on_disk, frozenset({V("1.2.0")}))
    assert plan.serve is not None and plan.serve.version == V("1.1.0")


def test_pinned_versions_are_kept_after_the_served_one_and_never_twice(on_disk: ModelOnDisk) -> None:
    plan = plan_model(
        entry(aspired_version="latest", pinned_versions=["1.0.0", "2.0.0", "9.9.9"]), on_disk, frozenset()
    )
    assert [item.version for item in plan.keep] == [V("2.0.0"), V("1.0.0")]


def test_nothing_matching_serves_nothing(on_disk: ModelOnDisk) -> None:
    plan = plan_model(entry(aspired_version="3.x"), on_disk, frozenset())
    assert plan.serve is None and plan.keep == ()
    assert plan.missing({}) == []


def test_missing_lists_the_kept_versions_not_loaded_yet(on_disk: ModelOnDisk) -> None:
    plan = plan_model(entry(aspired_version="1.x", pinned_versions=["1.0.0"]), on_disk, frozenset())
    assert [item.version for item in plan.missing({})] == [V("1.2.0"), V("1.0.0")]


def test_every_version_on_disk_gets_a_status_with_its_reason(on_disk: ModelOnDisk) -> None:
    model = entry(aspired_version="1.x")
    failed = {V("1.2.0"): "load took too long"}
    plan = plan_model(model, on_disk, frozenset(failed))
    statuses = describe(model, on_disk, plan, previous={}, loaded={}, failure=lambda item: failed.get(item.version))
    assert {key: (s.state, s.reason) for key, s in statuses.items()} == {
        "1.0.0": (VersionState.UNLOADED, "version 1.1.0 is served"),
        "1.1.0": (VersionState.UNLOADED, "version 1.1.0 is served"),
        "1.2.0": (VersionState.FAILED, "load took too long"),
        "2.0.0": (VersionState.UNLOADED, "does not match aspired_version 1.x"),
    }


def test_a_failure_is_remembered_until_the_folder_is_published_again(tmp_path: Path) -> None:
    folder = tmp_path / "models" / "m"
    publish_payloads(folder, "1.0.0")
    item = scan_model(folder, "m").versions[0]
    failures = FailureMemory()
    failures.remember("m", item, "ZeroDivisionError")
    assert failures.reason("m", item) == "ZeroDivisionError"
    assert failures.failed_versions("m", scan_model(folder, "m")) == {V("1.0.0")}

    shutil.rmtree(folder / "1.0.0")
    publish_payloads(folder, "1.0.0")  # published again: a new manifest file
    republished = scan_model(folder, "m")
    assert failures.reason("m", republished.versions[0]) is None
    assert failures.failed_versions("m", republished) == frozenset()


def test_forgetting_a_model_clears_its_failures_only(tmp_path: Path) -> None:
    publish_payloads(tmp_path / "a", "1.0.0")
    publish_payloads(tmp_path / "b", "1.0.0")
    a, b = scan_model(tmp_path / "a", "a").versions[0], scan_model(tmp_path / "b", "b").versions[0]
    failures = FailureMemory()
    failures.remember("a", a, "broken")
    failures.remember("b", b, "broken")
    failures.forget("a")
    assert (failures.reason("a", a), failures.reason("b", b)) == (None, "broken")
