"""Real tiny models, made in the tests and saved the way data scientists save them (pickle,
cloudpickle, joblib, ONNX, a custom model folder), and the inputs they take."""

from __future__ import annotations

import json
import pickle
import textwrap
from pathlib import Path
from typing import Any

import cloudpickle
import joblib
import numpy as np
from sklearn.datasets import load_iris
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LinearRegression, LogisticRegression
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import FunctionTransformer

N_FEATURES = 4
TABULAR_EXAMPLE = [[0.1, 0.2, 0.3, 0.4]]
IRIS_ROWS = [[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3], [5.9, 3.0, 4.2, 1.5]]
IRIS_ROW = IRIS_ROWS[0]
REGRESSION_ROWS = [[0.1, 0.2, 0.3, 0.4, 0.5], [1.0, -1.0, 0.5, 2.0, 0.0]]
TEXTS = ["a GREAT movie", "an awful film", "great fun"]
TEXT_EXAMPLE = ["what a great movie"]
ONNX_ROWS = [[0.1, 0.9, 0.3, 0.4], [0.8, 0.1, 0.5, 0.2]]
CUSTOM_EXAMPLE = [1, 2, 3]


def tabular_data(rows: int = 40) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    features = rng.random((rows, N_FEATURES))
    return features, (features[:, 0] > 0.5).astype(int)


def classifier(padding_mb: float = 0.0) -> LogisticRegression:
    """A fitted LogisticRegression on 4 random features; `padding_mb` of random floats makes its
    pickle that large."""
    return _padded(LogisticRegression().fit(*tabular_data()), padding_mb)


def iris_classifier(c: float = 1.0, padding_mb: float = 0.0) -> LogisticRegression:
    """An iris classifier; `padding_mb` adds that much random data, so holding an old version in
    memory shows in the server's RSS."""
    features, labels = load_iris(return_X_y=True)
    return _padded(LogisticRegression(C=c, max_iter=1000).fit(features, labels), padding_mb)


def _padded(model: LogisticRegression, padding_mb: float) -> LogisticRegression:
    if padding_mb:
        # incompressible bytes, so copying, hashing and loading the artifact take measurable time
        model.padding_ = np.random.default_rng(1).random(int(padding_mb * (1 << 20) / 8))
    return model


def regressor() -> LinearRegression:
    rng = np.random.default_rng(0)
    features = rng.random((50, 5))
    return LinearRegression().fit(features, features @ np.array([1.0, -2.0, 0.5, 3.0, 0.0]) + 0.25)


def text_pipeline() -> Pipeline:
    """A text classifier whose first step is a lambda: plain pickle cannot save it, cloudpickle can."""
    texts = ["great movie", "awful film", "great acting", "awful plot", "GREAT fun", "Awful mess"]
    labels = ["pos", "neg", "pos", "neg", "pos", "neg"]
    lowercase = FunctionTransformer(lambda batch: [text.lower() for text in batch])
    return make_pipeline(lowercase, TfidfVectorizer(), LogisticRegression()).fit(texts, labels)


# A table as data scientists have them: a string category, an integer, a float with a missing value,
# a boolean. Senior customers (over 40) are the positive class, labelled with strings.
TABLE_COLUMNS = ["city", "age", "income", "member"]
TABLE_RECORD = {"city": "paris", "age": 30, "income": None, "member": True}


def table(rows: int = 120) -> Any:
    import pandas as pd

    rng = np.random.default_rng(4)
    frame = pd.DataFrame(
        {
            "city": rng.choice(["paris", "lyon", "nice"], rows),
            "age": rng.integers(18, 80, rows),
            "income": rng.normal(3000.0, 800.0, rows).round(2),
            "member": rng.choice([True, False], rows),
        }
    )
    frame.loc[::7, "income"] = np.nan
    return frame


def table_labels(frame: Any) -> np.ndarray:
    return np.where(frame["age"] > 40, "senior", "junior")


def table_pipeline(rows: int = 120) -> Pipeline:
    """The pipeline a data scientist ships: one-hot city, imputed and scaled numbers, a classifier;
    fitted on a DataFrame of `rows` rows, so it knows its column names."""
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    columns = ColumnTransformer(
        [
            ("city", OneHotEncoder(), ["city"]),
            ("numbers", make_pipeline(SimpleImputer(), StandardScaler()), ["age", "income"]),
        ],
        remainder="passthrough",
    )
    frame = table(rows)
    return Pipeline([("columns", columns), ("classify", LogisticRegression())]).fit(frame, table_labels(frame))


def imputing_pipeline() -> Pipeline:
    """Numbers only, fitted on an array (no column names), with missing values it imputes."""
    from sklearn.impute import SimpleImputer

    features, labels = tabular_data()
    features[::5, 1] = np.nan
    return make_pipeline(SimpleImputer(), LogisticRegression()).fit(features, labels)


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
    """A LogisticRegression on 4 float features, converted by skl2onnx (labels + ZipMap probabilities)."""
    from skl2onnx import to_onnx

    features, labels = tabular_data()
    model = LogisticRegression().fit(features.astype(np.float32), labels)
    path.write_bytes(to_onnx(model, features[:1].astype(np.float32), target_opset=17).SerializeToString())
    return path


# A custom model.py: `inputs` is a list of numbers. Environment variables (set only on the server
# process, never during `add-model`) make it slow to load; "boom" makes it raise, "sleep" sleep.
CUSTOM_MODEL_PY = textwrap.dedent(
    """\
    import json
    import os
    import time
    from pathlib import Path


    class Model:
        def load(self, path):
            time.sleep(float(os.environ.get("AMMS_TEST_LOAD_SLEEP", "0")))
            self.weight = json.loads((Path(path) / "weights.json").read_text())["weight"]

        def predict(self, inputs):
            if "boom" in inputs:
                raise RuntimeError("secret internal detail")
            if "sleep" in inputs:
                time.sleep(float(inputs[-1]))
                return ["slept"]
            return [self.weight * value for value in inputs]
    """
)


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
