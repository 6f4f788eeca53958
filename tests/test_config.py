"""amms.json: every problem is one ConfigError line naming the file, the entry and the field."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from projects import Project, error_of

from amms_cli.errors import ConfigError
from amms_cli.project.config import ModelEntry, load_config, new_entry, parse_config, render_config

CONFIG = Path("/project/amms.json")
PATTERN_HELP = "(use 1.x, 1.2.x, 1.2.3 or latest)"


def config_error(text: str) -> ConfigError:
    with pytest.raises(ConfigError) as caught:
        parse_config(text, CONFIG)
    return caught.value


def entries_error(entries: Any) -> str:
    return config_error(json.dumps(entries)).message


def test_minimal_entry_gets_the_defaults() -> None:
    config = parse_config('[{"model_name": "simple_text"}]', CONFIG)
    (entry,) = config.models
    assert (entry.aspired_version, entry.load_type, entry.load_url, entry.servable_name) == (
        "latest",
        "SHARE",
        "models",
        None,
    )
    assert config.model_dir(entry) == Path("/project/models/simple_text")


def test_empty_list_is_a_valid_config() -> None:
    assert parse_config("[]", CONFIG).models == ()


def test_relative_load_url_resolves_against_the_config_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "conf").mkdir()
    (tmp_path / "conf" / "amms.json").write_text(
        json.dumps(
            [
                {"model_name": "rel", "load_url": "../repo"},
                {"model_name": "abs", "load_url": str(tmp_path / "elsewhere")},
                {"model_name": "home", "load_url": "~/repo"},
            ]
        )
    )
    monkeypatch.chdir(tmp_path)
    config = load_config(Path("conf/amms.json"))
    rel, absolute, home = config.models
    assert config.model_dir(rel) == tmp_path / "conf" / ".." / "repo" / "rel"
    assert config.model_dir(absolute) == tmp_path / "elsewhere" / "abs"
    assert config.model_dir(home) == Path.home() / "repo" / "home"


def test_malformed_json_reports_line_and_column() -> None:
    error = config_error('[\n  {"model_name": "a",}\n]')
    assert (
        error.message
        == "amms.json: invalid JSON at line 2, column 22: Expecting property name enclosed in double quotes"
    )
    assert error.hint


def test_bad_aspired_version_names_file_entry_model_and_field() -> None:
    message = entries_error([{"model_name": "iris"}, {"model_name": "simple_text", "aspired_version": "1.y"}])
    assert message == (
        "amms.json: entry 2 (model 'simple_text'): aspired_version '1.y' is not a version pattern "
        "(use 1.x, 1.2.x, 1.2.3 or latest)"
    )


def test_unknown_key_suggests_the_close_one() -> None:
    message = entries_error([{"model_name": "iris", "aspired_verison": "1.x"}])
    assert message.startswith("amms.json: entry 1 (model 'iris'): unknown key 'aspired_verison'; ")
    assert "did you mean 'aspired_version'?" in message


@pytest.mark.parametrize(
    ("entries", "expected"),
    [
        ({"model_name": "a"}, "amms.json: expected a JSON list of model entries, got an object"),
        (["a"], "amms.json: entry 1: expected an object with model_name, got a string"),
        ([{}], "amms.json: entry 1: missing required key 'model_name'"),
        ([{"model_name": 5}], "amms.json: entry 1: model_name: Input should be a valid string (got 5)"),
        (
            [{"model_name": "a"}, {"model_name": "a"}],
            "amms.json: entry 2 (model 'a'): model_name is used twice",
        ),
        (
            [{"model_name": "a", "load_type": "S3"}],
            "amms.json: entry 1 (model 'a'): load_type 'S3' is not supported (known: SHARE)",
        ),
        (
            [{"model_name": "a", "servable_name": "images"}],
            "amms.json: entry 1 (model 'a'): servable_name 'images' is not a servable "
            "(known: text_input, tabular, ndarray, custom, dataframe)",
        ),
        (
            [{"model_name": "a", "pinned_versions": ["1.x"]}],
            "amms.json: entry 1 (model 'a'): pinned_versions '1.x' is not an exact version like 1.2.3",
        ),
        ([{"model_name": "a", "load_url": " "}], "amms.json: entry 1 (model 'a'): load_url must not be empty"),
        (
            [{"model_name": "a", "max_batch_size": 0}],
            "amms.json: entry 1 (model 'a'): max_batch_size: Input should be greater than or equal to 1 (got 0)",
        ),
        (
            [{"model_name": "a", "max_batch_size": True}],
            "amms.json: entry 1 (model 'a'): max_batch_size: Input should be a valid integer (got True)",
        ),
    ],
    ids=lambda value: str(value)[:40],
)
def test_entry_errors(entries: Any, expected: str) -> None:
    assert entries_error(entries) == expected


@pytest.mark.parametrize("name", ["../x", "a/b", "..", ".", "a..b", "/abs", "Upper", "-x", "", "a b", "x" * 65])
def test_names_that_could_leave_the_repository_are_refused(name: str) -> None:
    message = entries_error([{"model_name": name}])
    assert f"model_name {name!r} is not a valid name (use lowercase letters" in message


def test_user_text_with_newlines_stays_on_one_line() -> None:
    message = entries_error([{"model_name": "a\nb", "aspired_version": "1.x\n"}])
    assert "\n" not in message
    assert "'a\\nb'" in message


def test_json_that_python_cannot_hold_is_a_config_error() -> None:
    assert "nested too deeply" in config_error("[" * 100_000).message
    assert config_error("[" + "1" * 5000 + "]").message.startswith("amms.json: invalid JSON: ")


def test_a_huge_bad_value_is_shortened() -> None:
    message = entries_error([{"model_name": ["x"] * 10_000}])
    assert len(message) < 200


def test_missing_config_file_points_to_init(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        load_config(tmp_path / "amms.json")
    assert caught.value.message == f"{tmp_path / 'amms.json'}: no such config file"
    assert "amms init" in (caught.value.hint or "")


def test_command_line_values_are_validated_like_the_file() -> None:
    with pytest.raises(ConfigError) as caught:
        new_entry(model_name="iris", aspired_version="1.y")
    assert caught.value.message == f"aspired_version '1.y' is not a version pattern {PATTERN_HELP}"


def test_render_keeps_the_seed_fields_and_drops_other_defaults() -> None:
    rendered = json.loads(render_config([ModelEntry(model_name="a"), ModelEntry(model_name="b", max_batch_size=8)]))
    seed = ["model_name", "aspired_version", "load_type", "load_url", "servable_name"]
    assert list(rendered[0]) == seed
    assert list(rendered[1]) == [*seed, "max_batch_size"]


# --- the real CLI renders config errors as one line plus a hint ---------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('[\n  {"model_name": "a",}\n]', "amms.json: invalid JSON at line 2, column 22: Expecting property name"),
        (
            '[{"model_name": "iris"}, {"model_name": "simple_text", "aspired_version": "1.y"}]',
            f"amms.json: entry 2 (model 'simple_text'): aspired_version '1.y' is not a version pattern {PATTERN_HELP}",
        ),
        ('[{"model_name": "iris", "laod_url": "m"}]', "amms.json: entry 1 (model 'iris'): unknown key 'laod_url'"),
        ('[{"model_name": "iris"}, {"model_name": "iris"}]', "amms.json: entry 2 (model 'iris'): model_name is used"),
    ],
    ids=["malformed-json", "bad-field", "unknown-key", "duplicate-entry"],
)
def test_cli_shows_config_errors_as_one_line(project: Project, text: str, expected: str) -> None:
    project.config.write_text(text)
    message, hint = error_of(project.run("list"))
    assert message.startswith(expected)
    assert hint


def test_cli_without_a_config_points_to_init(tmp_path: Path) -> None:
    message, hint = error_of(Project(tmp_path).run("list"))
    assert message.endswith("amms.json: no such config file")
    assert hint == "run `amms init` here, or pass --config PATH"


# --- properties -----------------------------------------------------------------------------------

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=10),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=12,
)
field_values = {
    "model_name": st.from_regex(r"[a-z0-9][a-z0-9_.-]{0,10}", fullmatch=True) | json_values,
    "aspired_version": st.sampled_from(["latest", "1.x", "1.2.x", "1.2.3", "1.y", ""]) | json_values,
    "load_type": st.sampled_from(["SHARE", "S3"]) | json_values,
    "load_url": st.sampled_from(["models", "/srv/models", "", "\0"]) | json_values,
    "servable_name": st.sampled_from(["text_input", "tabular", "ndarray", "custom", None]) | json_values,
    "pinned_versions": st.lists(st.sampled_from(["1.0.0", "1.x"])) | json_values,
    "max_batch_size": st.integers(-2, 5000) | json_values,
    "max_wait_ms": st.floats() | json_values,
    "load_timeout_s": st.floats() | json_values,
    "model_nmae": json_values,
}
entries = st.lists(
    st.fixed_dictionaries({}, optional=field_values) | json_values,
    max_size=4,
)


def assert_config_or_config_error(text: str) -> None:
    try:
        parse_config(text, CONFIG)
    except ConfigError as exc:
        assert "\n" not in exc.message
        assert exc.message.startswith("amms.json: ")


@given(st.text())
def test_any_text_parses_or_raises_config_error(text: str) -> None:
    assert_config_or_config_error(text)


@given(json_values | entries)
def test_any_json_parses_or_raises_config_error(value: Any) -> None:
    assert_config_or_config_error(json.dumps(value))


valid_entries = st.builds(
    ModelEntry,
    model_name=st.from_regex(r"[a-z0-9][a-z0-9_-]{0,10}", fullmatch=True),
    aspired_version=st.sampled_from(["latest", "1.x", "1.2.x", "1.2.3"]),
    servable_name=st.sampled_from(["text_input", "tabular", None]),
    pinned_versions=st.lists(st.sampled_from(["1.0.0", "2.1.3"]), unique=True),
    max_batch_size=st.integers(1, 4096),
    max_wait_ms=st.floats(0, 1000),
)


@given(st.lists(valid_entries, max_size=4, unique_by=lambda entry: entry.model_name))
def test_render_then_parse_round_trips(models: list[ModelEntry]) -> None:
    assert parse_config(render_config(models), CONFIG).models == tuple(models)
