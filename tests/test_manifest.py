"""amms-version.json as `amms add-model` writes it, per format: artifacts, loader, framework,
pinned requirements, input facts and a checked example. The published versions also load back."""

from __future__ import annotations

import dataclasses
import hashlib
import platform
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import cloudpickle
import joblib
import onnxruntime
import pytest
import sklearn
from factories import CUSTOM_EXAMPLE, N_FEATURES, TABULAR_EXAMPLE
from projects import Project

from amms_cli.loaders import LOADERS, load_version
from amms_cli.loaders.base import jsonable
from amms_cli.repository.manifest import FORMAT_VERSION, read_manifest, verify_artifacts
from amms_cli.servables import make_servable

Published = tuple[Project, dict[str, subprocess.CompletedProcess[str]]]
MODEL_NAMES = {
    "pickle": "tabular_pickle",
    "cloudpickle": "simple_text",
    "joblib": "tabular_joblib",
    "onnx": "tabular_onnx",
    "custom": "custom_model",
}


def manifest_of(published: Published, fmt: str) -> dict[str, Any]:
    project, results = published
    assert results[fmt].returncode == 0, results[fmt].stderr
    return project.manifest(MODEL_NAMES[fmt], "1.0.0")


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.parametrize("fmt", list(MODEL_NAMES))
def test_common_fields(published: Published, fmt: str) -> None:
    manifest = manifest_of(published, fmt)
    assert manifest["format_version"] == FORMAT_VERSION
    assert manifest["model_name"] == MODEL_NAMES[fmt]
    assert manifest["version"] == "1.0.0"
    assert manifest["loader"] == fmt
    assert manifest["python_version"] == platform.python_version()
    created = datetime.fromisoformat(manifest["created_at"])
    assert timedelta(0) <= datetime.now(UTC) - created < timedelta(hours=1)


@pytest.mark.parametrize("fmt", ["pickle", "cloudpickle", "joblib", "onnx"])
def test_single_file_artifact_is_copied_with_checksum_and_size(
    published: Published, artifacts: dict[str, Path], fmt: str
) -> None:
    manifest = manifest_of(published, fmt)
    source = artifacts[fmt]
    assert manifest["entrypoint"] == source.name
    assert manifest["artifacts"] == [{"name": source.name, "sha256": sha256(source), "size": source.stat().st_size}]
    copied = published[0].models / MODEL_NAMES[fmt] / "1.0.0" / source.name
    assert copied.read_bytes() == source.read_bytes()


def test_custom_model_folder_records_every_file(published: Published, artifacts: dict[str, Path]) -> None:
    manifest = manifest_of(published, "custom")
    folder = artifacts["custom"]
    assert manifest["entrypoint"] == "."
    assert manifest["artifacts"] == [
        {"name": name, "sha256": sha256(folder / name), "size": (folder / name).stat().st_size}
        for name in ["model.py", "weights.json"]
    ]
    assert (manifest["framework"], manifest["servable_name"]) == ("custom", "custom")
    assert manifest["input"]["example"] == CUSTOM_EXAMPLE


@pytest.mark.parametrize(
    ("fmt", "libraries"),
    [
        ("pickle", {"scikit-learn": sklearn.__version__}),
        ("joblib", {"scikit-learn": sklearn.__version__, "joblib": joblib.__version__}),
        ("cloudpickle", {"scikit-learn": sklearn.__version__, "cloudpickle": cloudpickle.__version__}),
        ("onnx", {"onnxruntime": onnxruntime.__version__}),
    ],
)
def test_requirements_pin_the_installed_versions(published: Published, fmt: str, libraries: dict[str, str]) -> None:
    requirements = manifest_of(published, fmt)["requirements"]
    assert requirements.items() >= libraries.items()
    assert "amms_cli" not in requirements


@pytest.mark.parametrize("fmt", ["pickle", "joblib"])
def test_tabular_scikit_learn_model(published: Published, fmt: str) -> None:
    manifest = manifest_of(published, fmt)
    assert manifest["framework"] == "scikit-learn"
    assert manifest["model_class"] == "sklearn.linear_model._logistic.LogisticRegression"
    assert manifest["servable_name"] == "tabular"
    assert manifest["input"] == {
        "n_features_in": N_FEATURES,
        "feature_names_in": None,
        "columns": None,
        "allows_missing": False,
        "row_independent": True,  # scikit-learn predicts row by row: batched by default
        "classes": [0, 1],
        "shape": None,
        "dtype": None,
        "example": None,  # none given: amms invents none, so loads are not smoke-checked
        "example_given": False,
        "has_predict_proba": True,
    }
    assert manifest["outputs"] == {}  # without a prediction of an example, unknown


def test_text_pipeline_needs_cloudpickle_and_records_the_example(published: Published) -> None:
    manifest = manifest_of(published, "cloudpickle")
    assert (manifest["framework"], manifest["servable_name"]) == ("scikit-learn", "text_input")
    assert manifest["model_class"] == "sklearn.pipeline.Pipeline"
    assert manifest["input"]["classes"] == ["neg", "pos"]
    assert manifest["input"]["example"] == ["a great movie"]


def test_onnx_model_records_shape_and_dtype(published: Published) -> None:
    manifest = manifest_of(published, "onnx")
    assert (manifest["framework"], manifest["servable_name"]) == ("onnx", "tabular")
    facts = manifest["input"]
    assert (facts["shape"], facts["dtype"], facts["n_features_in"]) == ([None, N_FEATURES], "float32", N_FEATURES)


@pytest.mark.parametrize("fmt", list(MODEL_NAMES))
def test_published_version_verifies_loads_and_predicts_its_example(published: Published, fmt: str) -> None:
    version_dir = published[0].models / MODEL_NAMES[fmt] / "1.0.0"
    manifest = read_manifest(version_dir)
    verify_artifacts(version_dir, manifest)
    model = load_version(version_dir, manifest)
    try:
        servable = make_servable(manifest.servable_name, manifest.input, manifest.model_name)
        outputs = jsonable(model.predict(servable.model_input(manifest.input.example or TABULAR_EXAMPLE)))
    finally:
        model.close()
    expected_rows = {"custom": len(CUSTOM_EXAMPLE)}.get(fmt, 1)
    assert len(outputs) == expected_rows
    if fmt == "custom":
        assert outputs == [2.0 * value for value in CUSTOM_EXAMPLE]


def test_text_pipeline_without_example_is_still_text_input(project: Project, artifacts: dict[str, Path]) -> None:
    """The vectorizer is the pipeline's second step (a lowercasing lambda comes first)."""
    result = project.run("add-model", str(artifacts["cloudpickle"]), "--name", "guess")
    assert result.returncode == 0, result.stderr
    manifest = project.manifest("guess", "1.0.0")
    assert manifest["servable_name"] == "text_input"
    assert (manifest["input"]["example"], manifest["input"]["example_given"]) == (None, False)
    assert project.entries()[0]["servable_name"] == "text_input"
    assert "warning: no example recorded for guess: its loads are not smoke-checked" in result.stderr


def test_imports_list_what_loading_needs_from_installed_libraries(published: Published) -> None:
    imports = {fmt: manifest_of(published, fmt)["imports"] for fmt in ("pickle", "cloudpickle", "custom", "onnx")}
    assert any(name.startswith("sklearn.") for name in imports["pickle"]), imports
    assert "numpy" in imports["pickle"]
    assert any(name.startswith("sklearn.feature_extraction") for name in imports["cloudpickle"]), imports
    everything = {name for names in imports.values() for name in names}
    # never the publisher's own modules (a custom model's model.py, __main__) nor amms itself
    assert not {name.split(".")[0] for name in everything} & {"__main__", "builtins", "model", "amms_cli"}
    assert all(names == sorted(names) for names in imports.values())


def test_a_load_imports_the_recorded_list_without_scanning_the_artifact(
    published: Published, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Scanning a pickle's opcodes costs more than unpickling it (1.1 s against 0.09 s for a 6 MiB
    vocabulary): the server reads the list the trial load recorded instead."""

    def scan(path: Path) -> set[str]:
        raise AssertionError(f"{path} was scanned at load")

    for fmt in ("pickle", "cloudpickle", "joblib", "custom"):
        monkeypatch.setitem(LOADERS, fmt, dataclasses.replace(LOADERS[fmt], modules_named=scan))
        version_dir = published[0].models / MODEL_NAMES[fmt] / "1.0.0"
        load_version(version_dir, read_manifest(version_dir)).close()
