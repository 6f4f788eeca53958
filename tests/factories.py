"""Real tiny models saved the way data scientists save them (pickle, cloudpickle, joblib, ONNX, a
custom model folder), and amms projects driven through the real `amms` command."""

from __future__ import annotations

import json
import os
import pickle
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cloudpickle
import joblib
import numpy as np
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import FunctionTransformer

N_FEATURES = 4
TEXT_EXAMPLE = ["what a great movie"]
TABULAR_EXAMPLE = [[0.1, 0.2, 0.3, 0.4]]
CUSTOM_EXAMPLE = [1, 2, 3]


def tabular_data(rows: int = 40) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    features = rng.random((rows, N_FEATURES))
    return features, (features[:, 0] > 0.5).astype(int)


def classifier(padding_mb: float = 0.0) -> LogisticRegression:
    """A fitted LogisticRegression; `padding_mb` of random floats makes its pickle that large."""
    model = LogisticRegression().fit(*tabular_data())
    if padding_mb:
        # incompressible bytes, so copying, hashing and loading the artifact take measurable time
        model.padding_ = np.random.default_rng(1).random(int(padding_mb * (1 << 20) / 8))
    return model


def text_pipeline() -> Pipeline:
    """A text classifier whose first step is a lambda: plain pickle cannot save it, cloudpickle can."""
    texts = ["great movie", "awful film", "great acting", "awful plot", "GREAT fun", "Awful mess"]
    labels = ["pos", "neg", "pos", "neg", "pos", "neg"]
    lowercase = FunctionTransformer(lambda batch: [text.lower() for text in batch])
    return make_pipeline(lowercase, TfidfVectorizer(), LogisticRegression()).fit(texts, labels)


def save_pickle(path: Path, obj: Any) -> Path:
    path.write_bytes(pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL))
    return path


def save_cloudpickle(path: Path, obj: Any) -> Path:
    path.write_bytes(cloudpickle.dumps(obj))
    return path


def save_joblib(path: Path, obj: Any) -> Path:
    joblib.dump(obj, path)
    return path


def save_onnx(path: Path) -> Path:
    from skl2onnx import to_onnx

    features, _ = tabular_data()
    onnx_model = to_onnx(classifier(), features[:1].astype(np.float32), target_opset=17)
    path.write_bytes(onnx_model.SerializeToString())
    return path


CUSTOM_MODEL_PY = """\
import json
from pathlib import Path


class Model:
    def load(self, path):
        self.weight = json.loads((Path(path) / "weights.json").read_text())["weight"]

    def predict(self, inputs):
        return [self.weight * value for value in inputs]
"""


def custom_model_dir(folder: Path, weight: float = 2.0) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "model.py").write_text(CUSTOM_MODEL_PY)
    (folder / "weights.json").write_text(json.dumps({"weight": weight}))
    return folder


def truncated_copy(source: Path, target: Path) -> Path:
    target.write_bytes(source.read_bytes()[: source.stat().st_size // 2])
    return target


def random_bytes(target: Path, size: int = 4096) -> Path:
    data = np.random.default_rng(2).bytes(size)
    # random data must not look like a pickle (0x80) or a compressed joblib file by accident
    target.write_bytes(b"\x00" + data[1:])
    return target


def amms_argv(*args: str) -> list[str]:
    """The installed `amms` console script, or the same entry point through this interpreter."""
    script = shutil.which("amms", path=str(Path(sys.executable).parent)) or shutil.which("amms")
    if script:
        return [script, *args]
    return [sys.executable, "-c", "from amms_cli.cli import main; main()", *args]


def amms_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AMMS_") and k != "FORCE_COLOR"}
    # Rich hard-wraps at 80 columns when the output is not a terminal; see
    # test_authoring_cli.test_errors_stay_on_one_line_at_the_default_width
    return env | {"COLUMNS": "1000", "NO_COLOR": "1"} | extra


def run_amms(*args: str, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Run the real `amms` command as its own process."""
    return subprocess.run(
        amms_argv(*args), cwd=cwd, env=env or amms_env(), capture_output=True, text=True, timeout=120, check=False
    )


@dataclass(frozen=True)
class Project:
    """An amms project folder: amms.json and models/ (relative load_url, so copies stay valid)."""

    root: Path

    @property
    def config(self) -> Path:
        return self.root / "amms.json"

    @property
    def models(self) -> Path:
        return self.root / "models"

    def run(self, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        return run_amms(*args, cwd=self.root, env=env)

    def entries(self) -> list[dict[str, Any]]:
        return json.loads(self.config.read_text())  # type: ignore[no-any-return]

    def write_entries(self, entries: list[dict[str, Any]]) -> None:
        self.config.write_text(json.dumps(entries, indent=2))

    def manifest(self, name: str, version: str) -> dict[str, Any]:
        return json.loads((self.models / name / version / "amms-version.json").read_text())  # type: ignore[no-any-return]

    def versions(self, name: str) -> list[str]:
        """Visible entries of a model folder (hidden staging folders and the lock excluded)."""
        folder = self.models / name
        return sorted(p.name for p in folder.iterdir() if not p.name.startswith(".")) if folder.is_dir() else []

    def copy_to(self, target: Path) -> Project:
        shutil.copytree(self.root, target)
        return Project(target)


def error_of(result: subprocess.CompletedProcess[str]) -> tuple[str, str | None]:
    """Assert a failed command printed one error line (and at most one hint line) and no traceback;
    return the message and the hint."""
    output = result.stdout + result.stderr
    assert result.returncode != 0, output
    assert "Traceback" not in output, output
    lines = result.stderr.strip().splitlines()
    assert 1 <= len(lines) <= 2, output
    assert lines[0].startswith("error: "), output
    hint = None
    if len(lines) == 2:
        assert lines[1].startswith("hint: "), output
        hint = lines[1].removeprefix("hint: ")
    return lines[0].removeprefix("error: "), hint
