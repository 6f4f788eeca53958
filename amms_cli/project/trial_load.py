"""Load a model once, in a child process, before it is published: proof that it loads (and predicts
its example), and what its manifest records about it.

`amms add-model` runs `python -m amms_cli.project.trial_load REQUEST.json RESULT.json` on the staged
copy, so a model that crashes, hangs or prints while loading cannot harm the CLI process. The child
answers with a `TrialResult`: framework, class, library versions to pin, input facts and a checked
example.
"""

from __future__ import annotations

import importlib.metadata
import platform
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict

from amms_cli.errors import AmmsError, InvalidInput, ModelLoadError
from amms_cli.loaders import LOADERS, LoaderFacts, Model, jsonable
from amms_cli.repository.manifest import InputInfo
from amms_cli.servables import Servable, make_servable

LOAD_HINT = "check that the file is complete and loads in this Python environment (pass --format to override)"


class TrialResult(BaseModel):
    """What a trial load learned, as the manifest records it."""

    model_config = ConfigDict(frozen=True)

    framework: str
    model_class: str
    servable_name: str
    python_version: str
    requirements: dict[str, str]  # distribution -> installed version
    input: InputInfo


class TrialOutcome(BaseModel):
    """The child's answer: a result, or the one-line error (and hint) to show."""

    result: TrialResult | None = None
    error: str | None = None
    hint: str | None = None


class TrialRequest(BaseModel):
    path: Path
    loader: str
    name: str  # the model's name, for messages
    servable: str | None  # None: choose one from the model
    example: Any


def trial_load(request: TrialRequest, timeout_s: float = 300.0) -> TrialResult:
    """Load in a fresh interpreter; raise ModelLoadError with the child's reason on failure."""
    path = request.path
    with tempfile.TemporaryDirectory(prefix="amms-trial-") as tmp:
        asked, answer = Path(tmp) / "request.json", Path(tmp) / "result.json"
        asked.write_text(request.model_dump_json())
        command = [sys.executable, "-m", "amms_cli.project.trial_load", str(asked), str(answer)]
        try:
            child = subprocess.run(command, capture_output=True, text=True, timeout=timeout_s, check=False)
        except subprocess.TimeoutExpired:
            raise ModelLoadError(f"loading {path.name} took longer than {timeout_s:.0f} s") from None
        if not answer.exists():
            tail = (child.stderr or child.stdout).strip().splitlines()[-1:] or ["no output"]
            raise ModelLoadError(f"loading {path.name} crashed the loader process: {tail[0]}", hint=LOAD_HINT)
        outcome = TrialOutcome.model_validate_json(answer.read_bytes())
    if outcome.result is None:
        raise ModelLoadError(outcome.error or "the trial load gave no result", hint=outcome.hint)
    return outcome.result


def inspect_model(request: TrialRequest) -> TrialResult:
    """Load, learn the input facts, choose the servable and check the example (in the child)."""
    path, example = request.path, request.example
    facts = LOADERS[request.loader]
    model = facts.load(path)
    info = introspect(model)
    servable_name = request.servable or default_servable(facts, model, info, example)
    servable = make_servable(servable_name, info, request.name)
    checked_example = _check_example(model, servable, example)
    return TrialResult(
        framework=model.framework,
        model_class=_class_name(model),
        servable_name=servable.name,
        python_version=platform.python_version(),
        requirements=requirements_for(facts.modules_named(path) | _model_modules(model), facts),
        input=info.model_copy(update={"example": checked_example, "example_given": example is not None}),
    )


def introspect(model: Model) -> InputInfo:
    obj = getattr(model, "obj", None)
    facts: dict[str, Any] = {"has_predict_proba": model.has_predict_proba, "classes": model.classes}
    if obj is not None:
        try:
            n_features = getattr(obj, "n_features_in_", None)
        except AttributeError:  # pipelines whose first step has no n_features_in_
            n_features = None
        if isinstance(n_features, (int, np.integer)):
            facts["n_features_in"] = int(n_features)
        names = getattr(obj, "feature_names_in_", None)
        if names is not None:
            facts["feature_names_in"] = [str(n) for n in names]
    shape = model.input_shape
    if shape is not None:
        facts["shape"] = shape
        facts["dtype"] = np.dtype(model.input_dtype).name
        if len(shape) == 2 and isinstance(shape[1], int):
            facts["n_features_in"] = shape[1]
    return InputInfo(**facts)


def default_servable(facts: LoaderFacts, model: Model, info: InputInfo, example: Any) -> str:
    if facts.servable is not None:
        return facts.servable
    if isinstance(example, str) or (isinstance(example, list) and example and isinstance(example[0], str)):
        return "text_input"
    if info.shape is not None:  # the model declares its input tensor (ONNX)
        if info.dtype == "object":
            return "text_input"
        return "tabular" if len(info.shape) == 2 else "ndarray"
    if info.n_features_in is not None:
        return "tabular"
    if _is_text_pipeline(getattr(model, "obj", None)):
        return "text_input"
    if example is not None and np.asarray(example, dtype=object).ndim > 2:
        return "ndarray"
    return "tabular"


def _is_text_pipeline(obj: Any) -> bool:
    """A text vectorizer anywhere in the pipeline (preprocessing steps such as lowercasing may come first)."""
    steps = [step for _, step in obj.steps] if hasattr(obj, "steps") and obj.steps else [obj]
    return any(callable(getattr(step, "build_analyzer", None)) or hasattr(step, "vocabulary_") for step in steps)


def _check_example(model: Model, servable: Servable, example: Any) -> Any:
    """Run the user's example (errors are fatal) or a synthetic one (dropped if it fails)."""
    candidate = example if example is not None else servable.example()
    if candidate is None:
        return None
    try:
        jsonable(model.predict(servable.parse(candidate)))
    except Exception as exc:
        if example is None:
            return None
        reason = exc.message if isinstance(exc, AmmsError) else describe_exception(exc)
        raise InvalidInput(
            f"the model failed to predict the example: {reason}",
            hint="check --example, or --servable if the input kind is wrong",
        ) from exc
    return candidate


def describe_exception(exc: BaseException) -> str:
    """`Type: message` on one line: a model's own exception text may span several."""
    return f"{type(exc).__name__}: {' '.join(str(exc).split())}"


def _class_name(model: Model) -> str:
    target = getattr(model, "obj", None) or model
    return f"{type(target).__module__}.{type(target).__qualname__}"


def _model_modules(model: Model) -> set[str]:
    target = getattr(model, "obj", None)
    roots = {type(target).__module__} if target is not None else set()
    if "numpy" in sys.modules:
        roots.add("numpy")
    return roots


def requirements_for(modules: set[str], facts: LoaderFacts) -> dict[str, str]:
    """Installed distributions (name -> version) that provide the given modules, plus what the loader
    itself needs. Transitive dependencies are left to pip."""
    providers = importlib.metadata.packages_distributions()
    roots = {m.split(".")[0] for m in modules}
    roots = {r for r in roots if r and not r.startswith("_") and r not in sys.stdlib_module_names}
    names = {dist for root in roots for dist in providers.get(root, [])}
    names.update(facts.requirements)
    names.discard("amms_cli")
    pins = {}
    for name in sorted(names, key=str.lower):
        try:
            pins[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            continue
    return pins


def _main(request_path: str, result_path: str) -> int:
    request = TrialRequest.model_validate_json(Path(request_path).read_bytes())
    try:
        outcome = TrialOutcome(result=inspect_model(request))
    except AmmsError as exc:
        outcome = TrialOutcome(error=exc.message, hint=exc.hint)
    except BaseException as exc:
        outcome = TrialOutcome(error=f"{request.loader} load failed: {describe_exception(exc)}", hint=LOAD_HINT)
    Path(result_path).write_text(outcome.model_dump_json())
    return 0


if __name__ == "__main__":
    raise SystemExit(_main(sys.argv[1], sys.argv[2]))
