"""pickle, cloudpickle and joblib artifacts. Unpickling runs code: callers verify checksums first.

The three are told apart without running the file: a pickle's opcodes name the modules it needs
(joblib's array wrapper, cloudpickle's reducers); compressed joblib files start with a codec's magic."""

from __future__ import annotations

import pickle
import pickletools
import sys
from collections import deque
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from amms_cli.loaders.base import LoaderFacts, LoadOptions, Model, ObjectModel

_FRAMEWORKS = {
    "sklearn": "scikit-learn",
    "xgboost": "xgboost",
    "lightgbm": "lightgbm",
    "catboost": "catboost",
    "imblearn": "imbalanced-learn",
    "statsmodels": "statsmodels",
}
_PICKLE_MAGIC = b"\x80"  # protocol 2 and later
# joblib compresses with one of these; its files are otherwise pickles with raw array data inside
_COMPRESSED_MAGIC = (b"\x78", b"\x1f\x8b", b"BZh", b"\xfd7zXZ\x00", b"\x04\x22\x4d\x18", b"\x5d\x00\x00")
_JOBLIB_SUFFIXES = {".joblib", ".jbl"}
_STRING_OPCODES = frozenset({"SHORT_BINUNICODE", "BINUNICODE", "UNICODE", "BINUNICODE8"})
_PUT_OPCODES = frozenset({"PUT", "BINPUT", "LONG_BINPUT"})
_GET_OPCODES = frozenset({"GET", "BINGET", "LONG_BINGET"})


def read_pickle(path: Path) -> Any:
    with path.open("rb") as handle:
        return pickle.load(handle)


def read_cloudpickle(path: Path) -> Any:
    import cloudpickle  # noqa: F401 - objects pickled by value need its reducers importable

    return read_pickle(path)


def read_joblib(path: Path) -> Any:
    import joblib

    return joblib.load(path)


def framework_of(obj: Any) -> str:
    root = type(obj).__module__.split(".")[0]
    return _FRAMEWORKS.get(root, root if root not in {"__main__", "builtins"} else "python")


def _loader(read: Callable[[Path], Any]) -> Callable[[Path, LoadOptions], Model]:
    def load(path: Path, options: LoadOptions) -> Model:
        obj = read(path)
        return ObjectModel(obj, framework_of(obj))

    return load


def _head(path: Path) -> bytes:
    if not path.is_file():
        return b""
    with path.open("rb") as handle:
        return handle.read(8)


def _strings(path: Path) -> Iterator[tuple[str, str]]:
    """(opcode name, argument) of every string argument in a pickle, read without executing it."""
    return ((opcode, argument) for opcode, argument in _opcodes(path) if isinstance(argument, str))


def _names(path: Path, prefix: str) -> bool:
    return any(argument.startswith(prefix) for _, argument in _strings(path))


def _is_joblib(path: Path) -> bool:
    head = _head(path)
    if head.startswith(_PICKLE_MAGIC):
        return _names(path, "joblib.numpy_pickle")
    return bool(head) and (path.suffix.lower() in _JOBLIB_SUFFIXES or head.startswith(_COMPRESSED_MAGIC))


def _is_cloudpickle(path: Path) -> bool:
    return _head(path).startswith(_PICKLE_MAGIC) and _names(path, "cloudpickle")


def _is_pickle(path: Path) -> bool:
    return _head(path).startswith(_PICKLE_MAGIC)


def modules_named(path: Path) -> set[str]:
    """Modules a pickle refers to, read without executing it: its global references (GLOBAL, and the
    module string under each STACK_GLOBAL, followed through the memo), and strings that name an
    imported module."""
    modules: set[str] = set()
    recent: deque[str | None] = deque([None, None], maxlen=2)  # the last two values pushed, if strings
    memo: dict[int, str | None] = {}
    for opcode, argument in _opcodes(path):
        if opcode == "GLOBAL":
            modules.add(str(argument).split(" ")[0])
        elif opcode == "STACK_GLOBAL":
            if recent[0] is not None:
                modules.add(recent[0])
        elif opcode == "MEMOIZE":
            memo[len(memo)] = recent[-1]
            continue
        elif opcode in _PUT_OPCODES:
            memo[int(argument)] = recent[-1]
            continue
        if opcode in _GET_OPCODES:
            recent.append(memo.get(int(argument)))
        elif opcode in _STRING_OPCODES and isinstance(argument, str):
            recent.append(argument)
            if _looks_like_module(argument):
                modules.add(argument)
        else:
            recent.append(None)
    return modules


def _opcodes(path: Path) -> Iterator[tuple[str, Any]]:
    """(opcode name, argument) of a pickle's opcodes, stopping quietly where the data is not a pickle
    any more (joblib's raw arrays follow their pickle)."""
    with path.open("rb") as handle:
        try:
            for opcode, argument, _pos in pickletools.genops(handle):
                yield opcode.name, argument
        except Exception:
            return


def _looks_like_module(text: str) -> bool:
    root = text.split(".")[0]
    return (bool(root) and root.isidentifier() and root in sys.modules and "." in text) or text in sys.modules


def write_pickled(obj: Any, target: Path) -> Path:
    """Any other object, for the Python API: joblib (arrays kept apart from the pickle), or cloudpickle
    when the object refers to code defined in `__main__` (a notebook's own class or function), which
    the server's process could not import by name."""
    import joblib

    path = target.parent / f"{target.name}.joblib"
    joblib.dump(obj, path)
    if "__main__" not in modules_named(path):
        return path
    import cloudpickle

    path.unlink()
    path = target.parent / f"{target.name}.pkl"
    with path.open("wb") as handle:
        cloudpickle.dump(obj, handle)
    return path


def _facts(
    name: str,
    description: str,
    read: Callable[[Path], Any],
    detect: Callable[[Path], bool],
    requirements: tuple[str, ...] = (),
    suffixes: tuple[str, ...] = (),
) -> LoaderFacts:
    """The three formats differ in how they are read and recognised, and in the library reading needs;
    each runs code when loaded, names its modules in its opcodes, and holds the GIL while predicting."""
    return LoaderFacts(
        name=name,
        description=description,
        load=_loader(read),
        detect=detect,
        runs_code=True,
        modules_named=modules_named,
        requirements=requirements,
        predicts_serially=True,
        suffixes=suffixes,
    )


# In detection order: joblib and cloudpickle files are pickles too, so plain pickle comes last.
JOBLIB = _facts(
    "joblib", "joblib.dump files (compressed or not)", read_joblib, _is_joblib, ("joblib",), (".joblib", ".jbl")
)
CLOUDPICKLE = _facts(
    "cloudpickle", "cloudpickle files (lambdas, local classes)", read_cloudpickle, _is_cloudpickle, ("cloudpickle",)
)
PICKLE = _facts("pickle", "pickle files (protocol 2 or later)", read_pickle, _is_pickle, suffixes=(".pkl", ".pickle"))
