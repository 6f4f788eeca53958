"""Shared fixtures: real model files (made once per session) and amms projects in temp folders."""

from __future__ import annotations

import subprocess
from pathlib import Path

import factories
import pytest
from hypothesis import settings
from projects import Project, amms_argv, amms_env

from amms_cli.project.authoring import init_project

settings.register_profile("amms", deadline=None, print_blob=True)
settings.load_profile("amms")


@pytest.fixture(scope="session")
def artifacts(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """One file (or folder) per format, plus broken ones; read-only for tests."""
    folder = tmp_path_factory.mktemp("artifacts")
    pickle_file = factories.save_pickle(folder / "clf.pkl", factories.classifier())
    return {
        "pickle": pickle_file,
        "cloudpickle": factories.save_cloudpickle(folder / "text.pkl", factories.text_pipeline()),
        "joblib": factories.save_joblib(folder / "clf.joblib", factories.classifier()),
        "onnx": factories.save_onnx(folder / "clf.onnx"),
        "custom": factories.custom_model_dir(folder / "custom_model"),
        "truncated": factories.truncated_copy(pickle_file, folder / "truncated.pkl"),
        "random": factories.random_bytes(folder / "random.pkl"),
    }


@pytest.fixture(scope="session")
def big_artifact(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 16 MiB pickle: copying, hashing and probing it takes long enough to kill a publish midway."""
    return factories.save_pickle(tmp_path_factory.mktemp("big") / "big.pkl", factories.classifier(padding_mb=16))


@pytest.fixture
def project(tmp_path: Path) -> Project:
    """A fresh `amms init` project (the library call; the CLI's init has its own tests)."""
    init_project(tmp_path / "proj")
    return Project(tmp_path / "proj")


# add-model arguments per format; the custom model and the text pipeline get an example to predict
ADD_ARGS = {
    "pickle": ("--name", "tabular_pickle"),
    "cloudpickle": ("--name", "simple_text", "--example", '["a great movie"]'),
    "joblib": ("--name", "tabular_joblib"),
    "onnx": ("--name", "tabular_onnx"),
    "custom": ("--name", "custom_model", "--example", "[1, 2, 3]"),
}


@pytest.fixture(scope="session")
def published(
    tmp_path_factory: pytest.TempPathFactory, artifacts: dict[str, Path]
) -> tuple[Project, dict[str, subprocess.CompletedProcess[str]]]:
    """A project where the real CLI added one model per format, all at once (as a CI job might);
    read-only (copy it to change it)."""
    root = tmp_path_factory.mktemp("published") / "proj"
    root.mkdir()
    project = Project(root)
    results = {"init": project.run("init")}
    children = {
        fmt: subprocess.Popen(
            amms_argv("add-model", str(artifacts[fmt]), *args),
            cwd=root,
            env=amms_env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for fmt, args in ADD_ARGS.items()
    }
    for fmt, child in children.items():
        stdout, stderr = child.communicate(timeout=120)
        results[fmt] = subprocess.CompletedProcess(child.args, child.returncode, stdout, stderr)
    return project, results


@pytest.fixture
def seeded(published: tuple[Project, dict[str, subprocess.CompletedProcess[str]]], tmp_path: Path) -> Project:
    """A writable copy of the published project (version 1.0.0 of every format's model)."""
    return published[0].copy_to(tmp_path / "seeded")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Under pytest-xdist (`-n 2 --dist loadgroup`, as scripts/test.sh runs it) each test module runs
    on one worker, so its module-scoped servers and models are built once. The Docker tests share
    one group, run first: they share one engine, and each cleans up the build-stage images made since
    it began, so two must never overlap; they take the longest, so they start first."""
    for item in items:
        group = "docker" if item.get_closest_marker("docker") else item.module.__name__ if item.module else "misc"
        item.add_marker(pytest.mark.xdist_group(group))
    items.sort(key=lambda item: not item.get_closest_marker("docker"))  # stable: file order otherwise
