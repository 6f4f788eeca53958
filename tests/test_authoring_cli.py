"""The authoring commands through the real `amms` process: init, add-model, bump-version, list."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
from pathlib import Path

import factories
import numpy as np
import pytest
from projects import Project, amms_env, error_of, run_amms
from sklearn.linear_model import LogisticRegression

import amms_cli
from amms_cli.errors import RepositoryError
from amms_cli.loaders import detect_format
from amms_cli.project import authoring

Published = tuple[Project, dict[str, subprocess.CompletedProcess[str]]]
NAME_HELP = "use lowercase letters, digits, '_', '.', '-', starting with a letter or digit"


def ok(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Traceback" not in result.stdout + result.stderr
    return result.stdout


def list_table(project: Project, *args: str) -> dict[str, dict[str, str]]:
    """The `amms list` table: model name -> {column title: cell}."""
    lines = ok(project.run("list", *args)).splitlines()
    header = next(line for line in lines if "on disk" in line)
    titles = [cell.strip() for cell in header.split("┃")]
    rows = [line for line in lines if "│" in line and line.split("│")[0].strip()]  # first line of each row
    cells = [dict(zip(titles, (cell.strip() for cell in row.split("│")), strict=True)) for row in rows]
    return {row["model"]: row for row in cells}


def list_row(project: Project, name: str, *args: str) -> dict[str, str]:
    return list_table(project, *args)[name]


def bump(project: Project, name: str, *parts: str) -> None:
    """Publish versions quickly through the library (the CLI's bump has its own tests)."""
    for part in parts:
        authoring.bump_version(project.config, name, part=part)  # type: ignore[arg-type]


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# --- init ---------------------------------------------------------------------------------------


def test_init_creates_an_empty_config_and_models_folder(tmp_path: Path) -> None:
    out = ok(Project(tmp_path).run("init", "my-project"))
    assert json.loads((tmp_path / "my-project" / "amms.json").read_text()) == []
    assert (tmp_path / "my-project" / "models").is_dir()
    assert "amms add-model" in out


def test_init_refuses_to_overwrite_without_force(project: Project) -> None:
    project.write_entries([{"model_name": "keep"}])
    message, hint = error_of(project.run("init"))
    assert message == "amms.json already exists"
    assert hint == "pass --force to replace it with an empty config"
    assert project.entries() == [{"model_name": "keep"}]
    ok(project.run("init", "--force"))
    assert project.entries() == []


# --- add-model ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fmt", "name", "description"),
    [
        ("pickle", "tabular_pickle", "(scikit-learn LogisticRegression, loader pickle, servable tabular)"),
        ("cloudpickle", "simple_text", "(scikit-learn Pipeline, loader cloudpickle, servable text_input)"),
        ("joblib", "tabular_joblib", "(scikit-learn LogisticRegression, loader joblib, servable tabular)"),
        ("onnx", "tabular_onnx", "(onnx OnnxModel, loader onnx, servable tabular)"),
        ("custom", "custom_model", "(custom Model, loader custom, servable custom)"),
    ],
)
def test_add_model_per_format(published: Published, fmt: str, name: str, description: str) -> None:
    project, results = published
    out = ok(results[fmt])
    assert f"Published {name} 1.0.0 {description} → {project.models / name / '1.0.0'}" in out
    assert "serves 1.x" in out
    assert project.versions(name) == ["1.0.0"]
    servable = description.rsplit("servable ", 1)[1].rstrip(")")
    entry = next(e for e in project.entries() if e["model_name"] == name)
    assert entry == {
        "model_name": name,
        "aspired_version": "1.x",
        "load_type": "SHARE",
        "load_url": "models",
        "servable_name": servable,
    }


def test_format_is_detected_from_the_file_not_its_name(artifacts: dict[str, Path], tmp_path: Path) -> None:
    for fmt in ["pickle", "cloudpickle", "joblib", "onnx", "custom"]:
        assert detect_format(artifacts[fmt]) == fmt
    renamed = tmp_path / "model.bin"
    renamed.write_bytes(artifacts["joblib"].read_bytes())
    assert detect_format(renamed) == "joblib"
    with pytest.raises(RepositoryError, match=r"is a folder without model\.py"):
        detect_format(tmp_path)


def test_models_added_at_the_same_time_all_reach_the_config(published: Published) -> None:
    """The `published` fixture runs its five add-models concurrently: the config is re-read and
    saved under a lock, so none of them drops another's entry."""
    project, _ = published
    names = ["custom_model", "simple_text", "tabular_joblib", "tabular_onnx", "tabular_pickle"]
    assert sorted(e["model_name"] for e in project.entries()) == names


def test_duplicate_name_points_to_bump_version(seeded: Project, artifacts: dict[str, Path]) -> None:
    message, hint = error_of(seeded.run("add-model", str(artifacts["pickle"]), "--name", "tabular_pickle"))
    assert message == "model 'tabular_pickle' already exists in amms.json"
    assert hint == "publish a new version with `amms bump-version tabular_pickle PATH`"
    assert seeded.versions("tabular_pickle") == ["1.0.0"]


@pytest.mark.parametrize("name", ["../x", "a/b", ".."])
def test_names_that_are_not_plain_folder_names_are_refused(
    project: Project, artifacts: dict[str, Path], name: str
) -> None:
    before = sorted(p.name for p in project.root.parent.rglob("*"))
    message, hint = error_of(project.run("add-model", str(artifacts["pickle"]), "--name", name))
    assert message == f"'{name}' is not a valid model name"
    assert hint == NAME_HELP
    assert sorted(p.name for p in project.root.parent.rglob("*")) == before
    assert project.entries() == []


def test_missing_model_file(project: Project) -> None:
    message, hint = error_of(project.run("add-model", "no/such/clf.pkl", "--name", "iris"))
    assert message == "no/such/clf.pkl: no such file or folder"
    assert hint == "check the model path"


@pytest.mark.parametrize(
    ("artifact", "expected"),
    [
        ("truncated", "pickle load failed: UnpicklingError: pickle data was truncated"),
        ("random", "random.pkl is named like a pickle file, but its content is not one (truncated or corrupt?)"),
    ],
)
def test_corrupt_model_file_is_refused_and_nothing_is_published(
    project: Project, artifacts: dict[str, Path], artifact: str, expected: str
) -> None:
    message, hint = error_of(project.run("add-model", str(artifacts[artifact]), "--name", "broken"))
    assert message == expected
    assert hint
    assert project.entries() == []
    assert list(project.models.iterdir()) == []  # not even an empty model folder


def test_a_model_that_fails_to_load_is_reported_on_one_line(project: Project, tmp_path: Path) -> None:
    folder = factories.custom_model_dir(tmp_path / "broken")
    (folder / "model.py").write_text(
        "class Model:\n"
        "    def load(self, path):\n"
        "        raise ValueError('weights are missing\\nsee the training log')\n"
        "    def predict(self, inputs):\n"
        "        return inputs\n"
    )
    message, hint = error_of(project.run("add-model", str(folder), "--name", "broken"))
    assert message == "custom load failed: ValueError: weights are missing see the training log"
    assert hint
    assert project.entries() == []


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (("--aspired", "1.y"), "aspired_version '1.y' is not a version pattern (use 1.x, 1.2.x, 1.2.3 or latest)"),
        (("--servable", "images"), "servable_name 'images' is not a servable (known: text_input, tabular, ndarray,"),
        (("--version", "1.0"), "'1.0' is not a version (expected MAJOR.MINOR.PATCH, e.g. 1.0.0)"),
        (("--version", "2.0.0", "--aspired", "1.x"), "--aspired 1.x does not match version 2.0.0"),
        (("--format", "zip"), "--format zip is not a format"),
        (("--example", "[[1, 2"), "--example is neither a JSON file nor valid JSON:"),
        (("--example", "[[1, 2]]"), "the model failed to predict the example: inputs: expected 4 features per row"),
    ],
    ids=["aspired", "servable", "version", "aspired-mismatch", "format", "example-json", "example-width"],
)
def test_bad_add_model_options(
    project: Project, artifacts: dict[str, Path], args: tuple[str, ...], expected: str
) -> None:
    message, _hint = error_of(project.run("add-model", str(artifacts["pickle"]), "--name", "iris", *args))
    assert message.startswith(expected)
    assert project.entries() == []


# --- bump-version ---------------------------------------------------------------------------------


def test_bump_patch_minor_major_without_path(seeded: Project) -> None:
    outputs = [ok(seeded.run("bump-version", "tabular_pickle", *flag)) for flag in [(), ("--minor",), ("--major",)]]
    steps = ["1.0.0 → 1.0.1", "1.0.1 → 1.1.0", "1.1.0 → 2.0.0"]
    assert outputs == [f"tabular_pickle {step}\n" for step in steps]
    assert seeded.versions("tabular_pickle") == ["1.0.0", "1.0.1", "1.1.0", "2.0.0"]
    first = seeded.manifest("tabular_pickle", "1.0.0")
    for version in ["1.0.1", "1.1.0", "2.0.0"]:
        manifest = seeded.manifest("tabular_pickle", version)
        assert manifest["version"] == version
        assert manifest["artifacts"] == first["artifacts"]  # the current artifact, republished


def test_bump_prints_old_and_new_version(seeded: Project) -> None:
    bump(seeded, "tabular_joblib", "patch", "patch", "patch")
    assert ok(seeded.run("bump-version", "tabular_joblib", "--patch")) == "tabular_joblib 1.0.3 → 1.0.4\n"


def test_bump_with_a_new_model_file(seeded: Project, tmp_path: Path) -> None:
    retrained = factories.save_joblib(tmp_path / "retrained.joblib", factories.classifier(padding_mb=0.01))
    assert ok(seeded.run("bump-version", "tabular_pickle", str(retrained))) == "tabular_pickle 1.0.0 → 1.0.1\n"
    manifest = seeded.manifest("tabular_pickle", "1.0.1")
    assert manifest["loader"] == "joblib"
    assert manifest["artifacts"] == [
        {"name": "retrained.joblib", "sha256": sha256(retrained), "size": retrained.stat().st_size}
    ]
    assert manifest["input"]["example"] == seeded.manifest("tabular_pickle", "1.0.0")["input"]["example"]


def test_bump_of_a_model_without_example_records_none(seeded: Project, tmp_path: Path) -> None:
    """amms never invents an input: a model published without an example has none to smoke-check."""
    features, labels = factories.tabular_data()
    wider = LogisticRegression().fit(np.hstack([features, features]), labels)
    path = factories.save_pickle(tmp_path / "wider.pkl", wider)
    assert ok(seeded.run("bump-version", "tabular_pickle", str(path))) == "tabular_pickle 1.0.0 → 1.0.1\n"
    manifest = seeded.manifest("tabular_pickle", "1.0.1")
    assert manifest["input"]["n_features_in"] == 2 * features.shape[1]
    assert (manifest["input"]["example"], manifest["input"]["example_given"]) == (None, False)
    assert list_row(seeded, "tabular_pickle")["example"] == "none"


def test_bump_outside_the_aspired_pattern_warns_and_aspire_updates_the_entry(seeded: Project) -> None:
    result = seeded.run("bump-version", "tabular_pickle", "--major")
    assert ok(result) == "tabular_pickle 1.0.0 → 2.0.0\n"
    assert result.stderr == (
        "warning: 2.0.0 will not be served: 'tabular_pickle' aspires to 1.x (pass --aspire to update the entry)\n"
    )
    assert list_row(seeded, "tabular_pickle")["serves"] == "1.0.0"

    result = seeded.run("bump-version", "tabular_pickle", "--major", "--aspire")
    assert ok(result) == "tabular_pickle 2.0.0 → 3.0.0\n"
    assert result.stderr == ""
    entry = next(e for e in seeded.entries() if e["model_name"] == "tabular_pickle")
    assert entry["aspired_version"] == "3.x"
    assert list_row(seeded, "tabular_pickle")["serves"] == "3.0.0"


@pytest.mark.parametrize(("aspired", "updated"), [("1.0.x", "1.1.x"), ("1.0.0", "1.1.0")])
def test_aspire_keeps_the_kind_of_pattern(seeded: Project, aspired: str, updated: str) -> None:
    seeded.write_entries([{**e, "aspired_version": aspired} for e in seeded.entries()])
    ok(seeded.run("bump-version", "tabular_pickle", "--minor", "--aspire"))
    assert next(e for e in seeded.entries() if e["model_name"] == "tabular_pickle")["aspired_version"] == updated


def test_semver_order_picks_1_10_0_over_1_9_0(tmp_path: Path, artifacts: dict[str, Path]) -> None:
    project, parent = Project(tmp_path / "proj"), Project(tmp_path)
    ok(parent.run("init", "proj"))
    config = ("--config", str(project.config))  # run from the parent folder
    ok(parent.run("add-model", str(artifacts["pickle"]), "-n", "iris", "--version", "1.9.0", *config))
    assert project.entries()[0]["aspired_version"] == "1.x"
    assert ok(parent.run("bump-version", "iris", "--minor", *config)) == "iris 1.9.0 → 1.10.0\n"
    newer = 2_000_000_000  # 1.9.0 becomes the newest folder by time: order must not depend on it
    os.utime(project.models / "iris" / "1.9.0", (newer, newer))
    row = list_row(project, "iris")
    assert (row["on disk"], row["serves"]) == ("1.9.0, 1.10.0", "1.10.0")
    assert ok(project.run("bump-version", "iris")) == "iris 1.10.0 → 1.10.1\n"


def test_bump_errors(seeded: Project) -> None:
    message, hint = error_of(seeded.run("bump-version", "nope"))
    assert message == "model 'nope' is not in amms.json"
    assert hint == "add it first with `amms add-model PATH --name nope`"
    message, hint = error_of(seeded.run("bump-version", "tabular_pickle", "--major", "--minor"))
    assert (message, hint) == ("choose one of --major, --minor, --patch", "--patch is the default")
    message, hint = error_of(seeded.run("bump-version", "tabular_pickle", "missing.pkl"))
    assert (message, hint) == ("missing.pkl: no such file or folder", "check the model path")
    assert seeded.versions("tabular_pickle") == ["1.0.0"]


# --- list / status ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def many_versions(published: Published, tmp_path_factory: pytest.TempPathFactory) -> Project:
    """tabular_pickle with versions 1.0.0, 1.1.0, 1.2.0, 1.2.1 and 2.0.0."""
    project = published[0].copy_to(tmp_path_factory.mktemp("many") / "proj")
    bump(project, "tabular_pickle", "minor", "minor", "patch", "major")
    assert project.versions("tabular_pickle") == ["1.0.0", "1.1.0", "1.2.0", "1.2.1", "2.0.0"]
    return project


def test_list_shows_the_version_each_pattern_serves(many_versions: Project, tmp_path: Path) -> None:
    served = {"latest": "2.0.0", "1.x": "1.2.1", "1.2.x": "1.2.1", "1.0.x": "1.0.0", "1.1.0": "1.1.0", "3.x": "none"}
    project = Project(tmp_path)
    entries = []
    for number, aspired in enumerate(served):  # one copy of the repository per pattern, all in one table
        shutil.copytree(many_versions.models / "tabular_pickle", project.models / f"m{number}")
        entries.append({"model_name": f"m{number}", "aspired_version": aspired})
    project.write_entries(entries)
    table = list_table(project)
    for number, (aspired, version) in enumerate(served.items()):
        row = table[f"m{number}"]
        assert row["on disk"] == "1.0.0, 1.1.0, 1.2.0, 1.2.1, 2.0.0"
        assert (row["aspired"], row["serves"], row.get("problems", "")) == (aspired, version, "")


def test_list_shows_every_model(published: Published) -> None:
    project, _ = published
    table = list_table(project)
    for name, framework in [("tabular_pickle", "scikit-learn"), ("tabular_onnx", "onnx"), ("custom_model", "custom")]:
        row = table[name]
        assert (row["on disk"], row["aspired"], row["serves"]) == ("1.0.0", "1.x", "1.0.0")
        assert (row["framework"], row.get("problems", "")) == (framework, "")


def test_list_at_80_columns_wraps_instead_of_cutting_names(published: Published) -> None:
    project, _ = published
    output = ok(project.run("list", env=amms_env(COLUMNS="80")))
    lines = output.splitlines()
    assert max(len(line) for line in lines) <= 80
    for name, framework in [("tabular_pickle", "scikit-learn"), ("tabular_onnx", "onnx"), ("custom_model", "custom")]:
        row = next(line for line in lines if line.startswith(f" {name} "))  # whole, on one line
        assert f"│ {framework} " in row
    assert "…" not in output


def test_list_reports_checksum_mismatch_and_serves_around_it(seeded: Project) -> None:
    bump(seeded, "tabular_pickle", "patch", "patch")
    folder = seeded.models / "tabular_pickle"
    artifact = folder / "1.0.2" / "clf.pkl"
    data = bytearray(artifact.read_bytes())
    data[-2] ^= 0xFF  # same size, different bytes
    artifact.write_bytes(bytes(data))
    with (folder / "1.0.1" / "clf.pkl").open("ab") as handle:
        handle.write(b"appended")
    row = list_row(seeded, "tabular_pickle")
    assert row["serves"] == "1.0.0"
    assert "1.0.2: checksum mismatch for 'clf.pkl'" in row.get("problems", "")
    size = (folder / "1.0.0" / "clf.pkl").stat().st_size
    assert f"1.0.1: 'clf.pkl' has {size + 8} bytes, recorded {size} (tampered or truncated)" in row.get("problems", "")
    message, hint = error_of(seeded.run("bump-version", "tabular_pickle"))  # republishing copies the newest
    assert message == "1.0.2: checksum mismatch for 'clf.pkl'"
    assert hint == "publish from the model file instead: `amms bump-version tabular_pickle PATH`"


def test_list_reports_missing_files_and_invalid_manifests(seeded: Project) -> None:
    bump(seeded, "tabular_pickle", "patch")
    (seeded.models / "tabular_pickle" / "1.0.1" / "clf.pkl").unlink()
    (seeded.models / "tabular_pickle" / "1.0.0" / "amms-version.json").write_text('{"version": "1.0.0"}')
    row = list_row(seeded, "tabular_pickle")
    assert row["serves"] == "none"
    assert "1.0.1: artifact 'clf.pkl' is missing" in row.get("problems", "")
    assert "1.0.0: invalid amms-version.json: " in row.get("problems", "")


def test_non_version_folders_are_ignored_with_a_warning(seeded: Project) -> None:
    for name in ["notes", "1.0", "latest"]:
        (seeded.models / "tabular_pickle" / name).mkdir()
    row = list_row(seeded, "tabular_pickle")
    assert (row["on disk"], row["serves"]) == ("1.0.0", "1.0.0")
    for name in ["notes", "1.0", "latest"]:
        assert f"tabular_pickle/{name}: ignored (not a MAJOR.MINOR.PATCH version folder)" in row.get("problems", "")


def test_status_is_list_and_an_empty_config_says_what_to_do(published: Published, project: Project) -> None:
    assert ok(published[0].run("status")) == ok(published[0].run("list"))
    assert "Add one with amms add-model PATH --name NAME" in ok(project.run("list"))


# --- every command: help with an example, errors on one line --------------------------------------


@pytest.mark.parametrize("command", ["init", "add-model", "bump-version", "list", "status"])
def test_help_has_an_example(command: str, tmp_path: Path) -> None:
    result = run_amms(command, "--help", cwd=tmp_path, env=amms_env(COLUMNS="200"))
    assert result.returncode == 0, result.stderr
    assert "Example: amms " in result.stdout


@pytest.mark.parametrize("command", [[], ["build"], ["serve"], ["add-model"]])
def test_help_shows_flags_without_a_type(command: list[str], tmp_path: Path) -> None:
    result = run_amms(*command, "--help", cwd=tmp_path, env=amms_env(COLUMNS="200"))
    assert result.returncode == 0, result.stderr
    help_line = next(line for line in result.stdout.splitlines() if "--help" in line)
    assert help_line.split() == ["│", "--help", "Show", "this", "message", "and", "exit.", "│"]
    assert "<bool>" not in result.stdout


def test_version(tmp_path: Path) -> None:
    result = run_amms("--version", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout == f"amms {amms_cli.__version__}\n"


def test_errors_stay_on_one_line_at_the_default_width(project: Project) -> None:
    project.write_entries([{"model_name": "iris"}, {"model_name": "simple_text", "aspired_version": "1.y"}])
    env = amms_env()
    del env["COLUMNS"]
    message, _hint = error_of(project.run("list", env=env))
    assert message == (
        "amms.json: entry 2 (model 'simple_text'): aspired_version '1.y' is not a version pattern "
        "(use 1.x, 1.2.x, 1.2.3 or latest)"
    )


def test_a_long_inline_json_example_is_json_not_a_file_name(tmp_path: Path) -> None:
    """JSON longer than a file name may be (255 bytes) used to die with 'File name too long'."""
    rng = np.random.default_rng(3)
    features = rng.random((40, 20))
    model = LogisticRegression().fit(features, (features[:, 0] > 0.5).astype(int))
    project = Project.init(tmp_path / "proj")
    example = json.dumps(features[:2].tolist())
    assert len(example) > 255
    ok(
        project.run(
            "add-model",
            str(factories.save_pickle(tmp_path / "wide.pkl", model)),
            "--name",
            "wide",
            "--example",
            example,
        )
    )
    assert project.manifest("wide", "1.0.0")["input"]["example"] == features[:2].tolist()

    message, _hint = error_of(
        project.run("add-model", str(tmp_path / "wide.pkl"), "--name", "w2", "--example", "x" * 300)
    )
    assert message.startswith("--example is neither a JSON file nor valid JSON")
