"""Running a loaded version: predictions (and class probabilities when asked) as JSON-ready data."""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from typing import Any

from amms_cli.errors import AmmsError, PredictionError
from amms_cli.loaders import Model, jsonable

log = logging.getLogger("amms.inference")


@dataclass(frozen=True, slots=True)
class RawOutput:
    predictions: Any
    probabilities: Any = None


@dataclass(frozen=True, slots=True)
class Prediction:
    outputs: Any
    probabilities: Any = None
    classes: list[Any] | None = None


def run_model(model: Model, model_input: Any, proba: bool) -> RawOutput:
    """Call the model; any exception it raises becomes a PredictionError with a short id to look
    up in the log (the text of foreign exceptions is not sent to clients)."""
    try:
        predictions = model.predict(model_input)
        probabilities = model.predict_proba(model_input) if proba and model.has_predict_proba else None
    except AmmsError:
        raise
    except Exception as exc:
        error_id = uuid.uuid4().hex[:8]
        log.exception("prediction failed [error id %s]", error_id)
        raise PredictionError(
            f"the model raised {type(exc).__name__} while predicting (error id {error_id}; details in the server log)"
        ) from exc
    return RawOutput(predictions, probabilities)


def to_prediction(model: Model, raw: RawOutput) -> Prediction:
    probabilities = jsonable(raw.probabilities) if raw.probabilities is not None else None
    return Prediction(jsonable(raw.predictions), probabilities, model.classes if probabilities else None)


def predict(model: Model, model_input: Any, proba: bool) -> Prediction:
    return to_prediction(model, run_model(model, model_input, proba))
