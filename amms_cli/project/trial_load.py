"""Load a model once, in a child process, before it is published: proof that it loads (and predicts
its example), and what its manifest records about it.

`amms add-model` runs `python -m amms_cli.project.trial_load REQUEST.json RESULT.json` on the staged
copy, so a model that crashes, hangs or prints while loading cannot harm the CLI process. The child
answers with a `TrialResult`: framework, class, library versions to pin, input facts and a checked
example.
"""

from __future__ import annotations

import gc
import importlib.metadata
import os
import platform
import subprocess
import sys
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict

from amms_cli.errors import AmmsError, InvalidInput, ModelLoadError
from amms_cli.loaders import LOADERS, LoadOptions, Model, footprint, jsonable
from amms_cli.project.input_facts import default_servable, introspect, read_table, records_of
from amms_cli.repository.manifest import PREDICT, PREDICT_PROBA, InputInfo, OutputInfo
from amms_cli.servables import Servable, make_servable
from amms_cli.servables.tensors import output_spec

# the child's glibc maps large blocks on their own, so a second load cannot reuse the first's freed
# memory and hide its size (a compressed joblib array measured three times its size without this)
CHILD_MALLOC = {"MALLOC_MMAP_THRESHOLD_": str(footprint.LARGE_BLOCK_BYTES)}
LOAD_HINT = "check that the file is complete and loads in this Python environment (pass --format to override)"


class TrialResult(BaseModel):
    """What a trial load learned, as the manifest records it."""

    model_config = ConfigDict(frozen=True)

    framework: str
    model_class: str
    servable_name: str
    python_version: str
    requirements: dict[str, str]  # distribution -> installed version
    imports: list[str]  # installed modules loading it needs (the manifest's `imports`)
    input: InputInfo
    outputs: dict[str, OutputInfo]  # learnt from a real prediction of the example ({} without one)
    memory_bytes: int = 0  # with measure_memory: what a load adds to the process, its libraries imported


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
    example: Any  # JSON, or None
    example_table: Path | None = None  # a data file (CSV) whose first rows are the example
    trusted_types: list[str] = []  # skops: types trusted beyond skops' defaults
    measure_memory: bool = False  # load twice, and measure what the second load adds (for a budget)


def trial_load(request: TrialRequest, timeout_s: float = 300.0) -> TrialResult:
    """Load in a fresh interpreter; raise ModelLoadError with the child's reason on failure."""
    path = request.path
    with tempfile.TemporaryDirectory(prefix="amms-trial-") as tmp:
        asked, answer = Path(tmp) / "request.json", Path(tmp) / "result.json"
        asked.write_text(request.model_dump_json())
        command = [sys.executable, "-m", "amms_cli.project.trial_load", str(asked), str(answer)]
        try:
            # errors="replace": a library may print the bytes of a broken file (LightGBM does)
            child = subprocess.run(
                command,
                capture_output=True,
                text=True,
                errors="replace",
                timeout=timeout_s,
                check=False,
                env=os.environ | CHILD_MALLOC,
            )
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
    """Load, learn the input facts, choose the servable and predict the example (in the child)."""
    facts = LOADERS[request.loader]
    model, memory_bytes = _load(request)
    frame = read_table(request.example_table) if request.example_table is not None else None
    example = records_of(frame) if frame is not None else request.example
    info = introspect(model, frame, example)
    servable_name = request.servable or default_servable(facts, model, info, example)
    servable = make_servable(servable_name, info, request.name)
    outputs = _check_example(model, servable, example)
    modules = facts.modules_named(request.path) | _model_modules(model)
    providers = importlib.metadata.packages_distributions()
    return TrialResult(
        framework=model.framework,
        model_class=_class_name(model),
        servable_name=servable.name,
        python_version=platform.python_version(),
        requirements=requirements_for(modules, providers, (*facts.requirements, *servable.requirements))
        | dict(model.requirements),
        imports=sorted(m for m in modules if m.split(".")[0] in providers and m.split(".")[0] != "amms_cli"),
        input=info.model_copy(update={"example": example, "example_given": example is not None}),
        outputs=outputs,
        memory_bytes=memory_bytes,
    )


def _load(request: TrialRequest) -> tuple[Model, int]:
    """The model, and with `measure_memory` what loading it adds to the process: then it is loaded
    twice and the second load measured, as the server measures its loads, with the libraries already
    imported by the first (a compressed file does not say which it needs; scikit-learn alone is 100 MiB)."""
    facts, options = LOADERS[request.loader], LoadOptions(tuple(request.trusted_types))
    if not request.measure_memory:
        return facts.load(request.path, options), 0
    first = facts.load(request.path, options)
    first.close()
    del first
    gc.collect()
    before = footprint.read()
    model = facts.load(request.path, options)
    return model, footprint.growth(before, footprint.read(), fallback=0)


def _check_example(model: Model, servable: Servable, example: Any) -> dict[str, OutputInfo]:
    """Predict the example (an error is fatal: the example is the smoke check of every load) and
    record what each output is; without an example, nothing is known of the outputs."""
    if example is None:
        return {}
    try:
        model_input = servable.model_input(example)
        outputs = {PREDICT: jsonable(model.predict(model_input))}
        if model.has_predict_proba:
            outputs[PREDICT_PROBA] = jsonable(model.predict_proba(model_input))
    except Exception as exc:
        reason = exc.message if isinstance(exc, AmmsError) else describe_exception(exc)
        raise InvalidInput(
            f"the model failed to predict the example: {reason}",
            hint="check --example, or --servable if the input kind is wrong",
        ) from exc
    return {name: _output_info(name, value) for name, value in outputs.items()}


def _output_info(name: str, value: Any) -> OutputInfo:
    spec = output_spec(name, value)
    return OutputInfo(datatype=spec.datatype, shape=spec.shape)


def describe_exception(exc: BaseException) -> str:
    """`Type: message` on one line: a model's own exception text may span several."""
    return f"{type(exc).__name__}: {' '.join(str(exc).split())}"


def _class_name(model: Model) -> str:
    target = getattr(model, "obj", None) or model
    return f"{type(target).__module__}.{type(target).__qualname__}"


def _model_modules(model: Model) -> set[str]:
    """The modules of the model's class and of every class it inherits from: a scikit-learn wrapper
    (XGBClassifier, LGBMClassifier) needs scikit-learn to be imported, though it never names it."""
    target = getattr(model, "obj", None)
    roots = {cls.__module__ for cls in type(target).__mro__} if target is not None else set()
    if "numpy" in sys.modules:
        roots.add("numpy")
    return roots


def requirements_for(modules: set[str], providers: Mapping[str, list[str]], needed: tuple[str, ...]) -> dict[str, str]:
    """Installed distributions (name -> version) that provide the given modules (`providers`: top
    module -> distributions), plus the ones the loader and the servable need themselves. Transitive
    dependencies are left to pip."""
    roots = {m.split(".")[0] for m in modules}
    roots = {r for r in roots if r and not r.startswith("_") and r not in sys.stdlib_module_names}
    names = {dist for root in roots for dist in providers.get(root, [])}
    names.update(needed)
    if "keras" in roots:
        names.update(providers.get(_keras_backend(), []))  # Keras runs on a backend it never names
    names.discard("amms_cli")
    pins = {}
    for name in sorted(names, key=str.lower):
        try:
            pins[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            continue
    return pins


def _keras_backend() -> str:
    """The backend Keras runs on in this process (the model's loader or model.py imported it)."""
    keras = sys.modules.get("keras")
    config = getattr(keras, "config", None)
    if config is not None and callable(getattr(config, "backend", None)):
        return str(config.backend())
    return os.environ.get("KERAS_BACKEND", "tensorflow")


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
