"""The runtime model interface every loader returns: `predict`, optional `predict_proba`, `close`."""

from __future__ import annotations

from typing import Any

import numpy as np


class Model:
    """A loaded model version. Loaders wrap whatever the framework gives them in one of these."""

    framework: str = "unknown"

    def predict(self, inputs: Any) -> Any:
        raise NotImplementedError

    @property
    def has_predict_proba(self) -> bool:
        return False

    def predict_proba(self, inputs: Any) -> Any:
        raise NotImplementedError(f"{type(self).__name__} gives no class probabilities")

    @property
    def classes(self) -> list[Any] | None:
        return None

    def close(self) -> None:
        """Release what the model holds (sessions, files). Called once when a version is unloaded."""


class ObjectModel(Model):
    """Any Python object with a `predict` method (scikit-learn estimators and pipelines, the
    scikit-learn wrappers of XGBoost, LightGBM and CatBoost, a user's custom class)."""

    def __init__(self, obj: Any, framework: str) -> None:
        if not callable(getattr(obj, "predict", None)):
            raise TypeError(f"the loaded {type(obj).__name__} object has no predict() method")
        self.obj = obj
        self.framework = framework

    def predict(self, inputs: Any) -> Any:
        return self.obj.predict(inputs)

    @property
    def has_predict_proba(self) -> bool:
        # scikit-learn exposes predict_proba through `available_if`, so hasattr tells the truth
        return callable(getattr(self.obj, "predict_proba", None))

    def predict_proba(self, inputs: Any) -> Any:
        if not self.has_predict_proba:
            return super().predict_proba(inputs)
        return self.obj.predict_proba(inputs)

    @property
    def classes(self) -> list[Any] | None:
        classes = getattr(self.obj, "classes_", None)
        if classes is None:
            return None
        return np.asarray(classes).tolist()  # type: ignore[no-any-return]

    def close(self) -> None:
        close = getattr(self.obj, "close", None)
        if callable(close):
            close()
        self.obj = None
