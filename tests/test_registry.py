"""Version resolution on a registry snapshot: what a request for a model (or one of its versions) gets,
and the 404 / 503 it gets instead, each naming what exists."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest
from factories import classifier
from projects import bare_manifest

from amms_cli.errors import ModelNotReady, NotFound
from amms_cli.loaders.base import ObjectModel
from amms_cli.project.config import ModelEntry
from amms_cli.repository.versions import Version
from amms_cli.servables import make_servable
from amms_cli.serving.loaded_version import LoadedVersion
from amms_cli.serving.registry import ModelView, Registry, VersionState, VersionStatus


@pytest.fixture
def executor() -> Iterator[ThreadPoolExecutor]:
    with ThreadPoolExecutor(1) as pool:
        yield pool


def loaded(name: str, version: str, executor: ThreadPoolExecutor) -> LoadedVersion:
    manifest = bare_manifest(name, version)
    return LoadedVersion(
        name=name,
        version=Version.parse(version),
        manifest=manifest,
        model=ObjectModel(classifier(), "scikit-learn"),
        servable=make_servable("tabular", manifest.input, name),
        executor=executor,
        serial=True,
    )


def status(version: str, state: VersionState, reason: str | None = None) -> VersionStatus:
    return VersionStatus(Version.parse(version), state, reason)


@pytest.fixture
def registry(executor: ThreadPoolExecutor) -> Registry:
    """iris serves 1.1.0 and keeps 1.0.0; 1.2.0 loads; 1.3.0 failed. text has nothing loaded yet."""
    served, pinned = loaded("iris", "1.1.0", executor), loaded("iris", "1.0.0", executor)
    iris = ModelView(
        ModelEntry(model_name="iris"),
        served,
        {"1.1.0": served, "1.0.0": pinned},
        {
            "1.0.0": status("1.0.0", VersionState.AVAILABLE),
            "1.1.0": status("1.1.0", VersionState.AVAILABLE),
            "1.2.0": status("1.2.0", VersionState.LOADING),
            "1.3.0": status("1.3.0", VersionState.FAILED, "checksum mismatch"),
        },
    )
    text = ModelView(ModelEntry(model_name="text"), statuses={"1.0.0": status("1.0.0", VersionState.LOADING)})
    registry = Registry()
    registry.publish({"iris": iris, "text": text}, ready=True)
    return registry


def test_a_model_resolves_to_its_served_version(registry: Registry) -> None:
    assert registry.resolve("iris").version_text == "1.1.0"


def test_an_exact_version_resolves_when_it_is_loaded(registry: Registry) -> None:
    assert registry.resolve("iris", "1.0.0").version_text == "1.0.0"


def test_an_unknown_model_is_404_naming_the_models(registry: Registry) -> None:
    with pytest.raises(NotFound, match=r"model 'nope' not found \(models: iris, text\)"):
        registry.resolve("nope")


def test_a_version_still_loading_is_503(registry: Registry) -> None:
    with pytest.raises(ModelNotReady, match=r"model 'iris' version 1\.2\.0 is loading"):
        registry.resolve("iris", "1.2.0")


def test_a_failed_version_is_404_with_its_reason_and_the_loaded_ones(registry: Registry) -> None:
    expected = r"no loaded version 1.3.0 \(FAILED: checksum mismatch\) \(loaded: 1.0.0, 1.1.0\)"
    with pytest.raises(NotFound, match=expected):
        registry.resolve("iris", "1.3.0")


def test_a_model_without_a_served_version_is_503_saying_why(registry: Registry) -> None:
    with pytest.raises(ModelNotReady, match=r"model 'text' has no available version \(loading\)"):
        registry.resolve("text")
    assert not registry.is_ready()


def test_each_publish_is_a_new_generation(registry: Registry) -> None:
    before = registry.snapshot
    after = registry.publish(dict(before.models))
    assert after.generation == before.generation + 1 and after.ready
