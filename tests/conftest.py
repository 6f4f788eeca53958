"""Shared fixtures: real model files (made once per session) and amms projects in temp folders."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

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


# The suite runs on two workers (pytest-xdist, `-n 2` in scripts/test.sh), one test module at a time
# each, so a module's servers and models are built once. The Docker tests run on one worker, one after
# another (they share one engine, and each cleans up the build-stage images made since it began), and
# first, as they take the longest. These are their modules:
DOCKER_MODULES = frozenset(
    {"test_docker_e2e.py", "test_docker_native.py", "test_docker_engine.py", "test_wheel_install.py"}
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if item.get_closest_marker("docker") and item.path.name not in DOCKER_MODULES:
            raise pytest.UsageError(f"{item.nodeid} needs Docker: add {item.path.name} to conftest.DOCKER_MODULES")
    items.sort(key=lambda item: item.path.name not in DOCKER_MODULES)  # stable: file order otherwise


def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    from xdist.scheduler import LoadScopeScheduling

    class ByModule(LoadScopeScheduling):
        """Each module is one unit of work; the Docker modules together are one."""

        def _split_scope(self, nodeid: str) -> str:
            module = nodeid.split("::", 1)[0]
            return "docker" if Path(module).name in DOCKER_MODULES else module

    return ByModule(config, log)
