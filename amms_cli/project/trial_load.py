"""Load an artifact once, in a child process, to prove it loads and to learn about it.

`amms add-model` runs `python -m amms_cli.project.trial_load REQUEST.json RESULT.json` on the staged copy, so a
model that crashes, hangs or prints while loading cannot harm the CLI process. The result records
what the manifest needs: framework, class, library versions, input facts and a checked example.
"""

from __future__ import annotations

import ast
import importlib.metadata
import json
import pickletools
import platform
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from amms_cli.errors import AmmsError, InvalidInput, ModelLoadError
from amms_cli.loaders import LOADERS, Model
from amms_cli.repository.manifest import InputInfo
from amms_cli.servables import SERVABLES, jsonable

LOAD_HINT = "check that the file is complete and loads in this Python environment (pass --format to override)"

# Distributions that loading a model needs beside the ones it imports itself.
_LOADER_REQUIREMENTS = {"cloudpickle": ["cloudpickle"], "joblib": ["joblib"], "onnx": ["onnxruntime"]}


def run_probe(path: Path, loader: str, servable: str | None, example: Any, timeout_s: float = 300.0) -> dict[str, Any]:
    """Probe `path` in a fresh interpreter; raise ModelLoadError with the child's reason on failure."""
    with tempfile.TemporaryDirectory(prefix="amms-probe-") as tmp:
        request, result = Path(tmp) / "request.json", Path(tmp) / "result.json"
        request.write_text(json.dumps({"path": str(path), "loader": loader, "servable": servable, "example": example}))
        try:
            child = subprocess.run(
                [sys.executable, "-m", "amms_cli.project.trial_load", str(request), str(result)],
                capture_output=True,
                text=True,
                timeout=timeout_s,
                check=False,
            )
        except subprocess.TimeoutExpired:
            raise ModelLoadError(f"loading {path.name} took longer than {timeout_s:.0f} s") from None
        if not result.exists():
            tail = (child.stderr or child.stdout).strip().splitlines()[-1:] or ["no output"]
            raise ModelLoadError(f"loading {path.name} crashed the loader process: {tail[0]}", hint=LOAD_HINT)
        outcome: dict[str, Any] = json.loads(result.read_text())
    if "error" in outcome:
        raise ModelLoadError(outcome["error"], hint=outcome.get("hint"))
    return outcome


def probe(path: Path, loader: str, servable_name: str | None, example: Any) -> dict[str, Any]:
    model = LOADERS[loader](path)
    info = introspect(model)
    servable_name = servable_name or default_servable(loader, model, info, example)
    servable = SERVABLES[servable_name]
    checked_example = _check_example(model, servable_name, info, example)
    info = info.model_copy(update={"example": checked_example, "example_given": example is not None})
    return {
        "framework": model.framework,
        "model_class": _class_name(model),
        "servable_name": servable.name,
        "python_version": platform.python_version(),
        "requirements": requirements_for(referenced_modules(path, loader) | _model_modules(model), loader),
        "input": info.model_dump(mode="json"),
    }


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
    shape = getattr(model, "input_shape", None)
    if shape is not None:
        facts["shape"] = shape
        facts["dtype"] = np.dtype(model.input_dtype).name  # type: ignore[attr-defined]
        if len(shape) == 2 and isinstance(shape[1], int):
            facts["n_features_in"] = shape[1]
    return InputInfo(**facts)


def default_servable(loader: str, model: Model, info: InputInfo, example: Any) -> str:
    if loader == "custom":
        return "custom"
    if isinstance(example, str) or (isinstance(example, list) and example and isinstance(example[0], str)):
        return "text_input"
    if loader == "onnx":
        if info.dtype == "object":
            return "text_input"
        return "tabular" if info.shape and len(info.shape) == 2 else "ndarray"
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


def _check_example(model: Model, servable_name: str, info: InputInfo, example: Any) -> Any:
    """Run the user's example (errors are fatal) or a synthetic one (dropped if it fails)."""
    servable = SERVABLES[servable_name]
    candidate = example if example is not None else servable.example(info)
    if candidate is None:
        return None
    try:
        jsonable(model.predict(servable.parse(candidate, info)))
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


_STRING_OPCODES = frozenset({"SHORT_BINUNICODE", "BINUNICODE", "UNICODE", "BINUNICODE8"})


def referenced_modules(path: Path, loader: str) -> set[str]:
    """Modules the artifact itself names: a pickle's global references (read without running it),
    or the imports of a custom model's Python files. Transitive dependencies are left to pip."""
    if loader == "custom":
        return {name for source in path.rglob("*.py") for name in _imports_of(source)}
    if loader == "onnx" or not path.is_file():
        return set()
    modules: set[str] = set()
    with path.open("rb") as handle:
        try:
            for opcode, argument, _pos in pickletools.genops(handle):
                if not isinstance(argument, str):
                    continue
                if opcode.name == "GLOBAL":
                    modules.add(argument.split(" ")[0])
                elif opcode.name in _STRING_OPCODES and _looks_like_module(argument):
                    modules.add(argument)
        except Exception:
            pass
    return modules


def _looks_like_module(text: str) -> bool:
    root = text.split(".")[0]
    return (bool(root) and root.isidentifier() and root in sys.modules and "." in text) or text in sys.modules


def _imports_of(source: Path) -> set[str]:
    try:
        tree = ast.parse(source.read_text(encoding="utf-8"))
    except (SyntaxError, UnicodeDecodeError):
        return set()
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def _model_modules(model: Model) -> set[str]:
    target = getattr(model, "obj", None)
    roots = {type(target).__module__} if target is not None else set()
    if "numpy" in sys.modules:
        roots.add("numpy")
    return roots


def requirements_for(modules: set[str], loader: str) -> dict[str, str]:
    """Installed distributions (name -> version) that provide the given modules."""
    providers = importlib.metadata.packages_distributions()
    roots = {m.split(".")[0] for m in modules}
    roots = {r for r in roots if r and not r.startswith("_") and r not in sys.stdlib_module_names}
    names = {dist for root in roots for dist in providers.get(root, [])}
    names.update(_LOADER_REQUIREMENTS.get(loader, []))
    names.discard("amms_cli")
    pins = {}
    for name in sorted(names, key=str.lower):
        try:
            pins[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            continue
    return pins


def _main(request_path: str, result_path: str) -> int:
    request = json.loads(Path(request_path).read_text())
    try:
        outcome = probe(Path(request["path"]), request["loader"], request["servable"], request["example"])
    except AmmsError as exc:
        outcome = {"error": exc.message, "hint": exc.hint}
    except BaseException as exc:
        outcome = {"error": f"{request['loader']} load failed: {describe_exception(exc)}", "hint": LOAD_HINT}
    Path(result_path).write_text(json.dumps(outcome))
    return 0


if __name__ == "__main__":
    raise SystemExit(_main(sys.argv[1], sys.argv[2]))
