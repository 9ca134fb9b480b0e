"""Where a config comes from: `from_yaml`/`from_json` take a path as well as text, a file that
cannot be read raises the `OSError` `open()` would (and a `ConfigError`), and each loader given
the other kind of input says which one to use."""

from __future__ import annotations

import errno
import os
import pickle
from pathlib import Path

import pytest
from cascade_files import write

import cascadence
from cascadence.cascade import CascadeConfig
from cascadence.cascade.loader import load_text
from cascadence.errors import (
    ConfigError,
    ConfigFileError,
    ConfigFileNotFoundError,
    ConfigIsADirectoryError,
    ConfigIssue,
    ConfigPermissionError,
)

CONFIG = """
name: paths
stages:
  FAST_CHECK:
    timeout_ms: 100
  SLOW_CHECK:
    depends_on: [FAST_CHECK]
"""

BROKEN = """
name: paths
stages:
  FAST_CHECK:
    timout_ms: 100
"""


# -- a path given to from_yaml / from_json -----------------------------------------------------


@pytest.mark.parametrize("method", ["from_yaml", "from_json"])
def test_a_path_object_is_loaded_as_from_file_loads_it(tmp_path: Path, method: str) -> None:
    """`from_yaml(Path(...))` and `from_json(Path(...))` load the file, and remember it."""
    path = write(tmp_path, CONFIG)
    config = getattr(CascadeConfig, method)(path)
    assert config == CascadeConfig.from_file(path)
    assert config.stage_names() == ["FAST_CHECK", "SLOW_CHECK"]
    assert config.source_file == str(path)


def test_a_path_object_to_a_json_file_is_read_as_json(tmp_path: Path) -> None:
    """A `.json` path is read by the JSON reader, which refuses a key written twice."""
    path = write(tmp_path, '{"name": "a", "name": "b", "stages": {"A": {}}}', "c.json")
    with pytest.raises(ConfigError) as info:
        CascadeConfig.from_yaml(path)
    issue = info.value.issues[0]
    assert (issue.file, issue.line, issue.column) == (str(path), 1, 15)
    assert issue.message == "duplicate key 'name' (first on line 1, column 2)"


def test_errors_of_a_path_name_the_file_and_line(tmp_path: Path) -> None:
    """A broken file given to from_yaml as a path is reported at file:line:column, exactly as
    from_file reports it."""
    path = write(tmp_path, BROKEN)
    with pytest.raises(ConfigError) as by_path:
        CascadeConfig.from_yaml(path)
    with pytest.raises(ConfigError) as by_file:
        CascadeConfig.from_file(path)
    assert str(by_path.value) == str(by_file.value)
    issue = by_path.value.issues[0]
    assert (issue.file, issue.line, issue.column) == (str(path), 4, 5)
    assert issue.suggestion == "timeout_ms"


@pytest.mark.parametrize("method", ["from_yaml", "from_json"])
@pytest.mark.parametrize("padding", ["", "  ", "\n"])
def test_a_one_line_file_name_is_loaded(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, method: str, padding: str
) -> None:
    """`from_yaml("cascade_config.yaml")`, as a reader of the spec writes it, loads the file
    named (relative to the working folder), with its name on every error."""
    write(tmp_path, CONFIG, "cascade_config.yaml")
    write(tmp_path, BROKEN, "broken.yaml")
    monkeypatch.chdir(tmp_path)
    config = getattr(CascadeConfig, method)(f"{padding}cascade_config.yaml{padding}")
    assert config.stage_names() == ["FAST_CHECK", "SLOW_CHECK"]
    assert config.source_file == "cascade_config.yaml"
    with pytest.raises(ConfigError) as info:
        getattr(CascadeConfig, method)("broken.yaml")
    assert "broken.yaml:4:5: stages.FAST_CHECK.timout_ms" in str(info.value)


def test_yaml_text_that_ends_like_a_file_name_stays_text(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One line of YAML that is a mapping is read as YAML, even when a file of that name exists
    or the line ends in `.yaml`."""
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError) as info:
        CascadeConfig.from_yaml("name: other.yaml")
    assert "missing required field 'stages'" in str(info.value)
    config = CascadeConfig.from_yaml("{name: t, stages: {A: {}}, description: x.yaml}")
    assert config.description == "x.yaml"
    assert config.source_file is None


def test_with_a_source_one_line_text_is_always_yaml(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Text passed with `source=` is never read as a file name, even when such a file exists."""
    write(tmp_path, CONFIG, "cascade.yaml")
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError) as info:
        CascadeConfig.from_yaml("cascade.yaml", source="request body")
    assert type(info.value) is ConfigError
    assert "request body:1:1: a cascade config must be a mapping, got str 'cascade.yaml'" in str(
        info.value
    )


@pytest.mark.parametrize(("method", "kind"), [("from_yaml", "YAML"), ("from_json", "JSON")])
def test_a_one_line_file_name_that_does_not_exist_says_so(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, method: str, kind: str
) -> None:
    """A missing file named as text is a FileNotFoundError that says the file does not exist,
    where it was looked for, that the method takes text or a path, and that from_file loads
    files."""
    monkeypatch.chdir(tmp_path)
    with pytest.raises(FileNotFoundError) as info:
        getattr(CascadeConfig, method)("cascade_config.yaml")
    error = info.value
    assert isinstance(error, ConfigFileNotFoundError)
    assert (error.errno, error.filename) == (errno.ENOENT, "cascade_config.yaml")
    text = str(error)
    assert "the file does not exist" in text
    assert str(tmp_path / "cascade_config.yaml") in text
    assert f"{kind} text or the path of an existing file" in text
    assert "CascadeConfig.from_file loads a file" in text


def test_a_one_line_word_that_is_no_file_name_points_to_from_file() -> None:
    """One word that is neither a config nor a file name is not a mapping: the error shows the
    word and says how to load a file."""
    with pytest.raises(ConfigError) as info:
        CascadeConfig.from_yaml("cascade_config")
    issue = info.value.issues[0]
    assert issue.message == "a cascade config must be a mapping, got str 'cascade_config'"
    assert issue.expected is not None
    assert "CascadeConfig.from_file" in issue.expected


def test_load_text_takes_a_path_too(tmp_path: Path) -> None:
    """The loader function behind from_yaml takes a path as the method does."""
    path = write(tmp_path, CONFIG)
    assert load_text(CascadeConfig, path) == CascadeConfig.from_file(path)


# -- from_file and from_dict given the wrong kind of input -------------------------------------


def test_from_file_given_yaml_text_points_to_from_yaml() -> None:
    """YAML text given to from_file is refused as text, naming from_yaml."""
    for text in (CONFIG, "{name: t, stages: {A: {}}}"):
        with pytest.raises(ConfigError) as info:
            CascadeConfig.from_file(text)
        issue = info.value.issues[0]
        assert issue.message == "from_file takes the path of a file, got text"
        assert issue.expected is not None
        assert "CascadeConfig.from_yaml" in issue.expected


@pytest.mark.parametrize("given", [Path("cascade.yaml"), "cascade.yaml"])
def test_from_dict_given_a_path_points_to_from_file(given: object) -> None:
    """A path given to from_dict is refused naming the path and from_file."""
    with pytest.raises(ConfigError) as info:
        CascadeConfig.from_dict(given)  # type: ignore[arg-type]
    issue = info.value.issues[0]
    assert "must be a mapping, got" in issue.message
    assert "'cascade.yaml'" in issue.message
    assert issue.expected is not None
    assert "CascadeConfig.from_file" in issue.expected


# -- a file that cannot be read ----------------------------------------------------------------


def test_a_missing_file_is_a_file_not_found_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """from_file of a missing file raises what `pytest.raises(FileNotFoundError)` and
    `except ConfigError` both catch, with errno and filename as `open()` sets them."""
    monkeypatch.chdir(tmp_path)
    with pytest.raises(FileNotFoundError) as info:
        CascadeConfig.from_file("nope.yaml")
    error = info.value
    assert isinstance(error, ConfigFileNotFoundError)
    assert isinstance(error, ConfigError)
    assert isinstance(error, ValueError)
    assert (error.errno, error.filename) == (errno.ENOENT, "nope.yaml")
    assert error.strerror == os.strerror(errno.ENOENT)
    assert str(error).startswith("1 problem in the cascade configuration:\n  nope.yaml: ")
    issue = error.issues[0]
    assert issue.file == "nope.yaml"
    assert issue.message == f"the file does not exist (looked for {str(tmp_path / 'nope.yaml')!r})"


def test_a_missing_file_given_by_absolute_path(tmp_path: Path) -> None:
    """An absolute path is named as given, with nothing to add about where it was looked for."""
    path = tmp_path / "nope.json"
    with pytest.raises(ConfigFileNotFoundError) as info:
        CascadeConfig.from_file(path)
    assert info.value.filename == str(path)
    assert info.value.issues[0].message == "the file does not exist"


def test_a_folder_is_an_is_a_directory_error(tmp_path: Path) -> None:
    """A folder named like a config file raises an IsADirectoryError that is a ConfigError."""
    folder = tmp_path / "configs.yaml"
    folder.mkdir()
    with pytest.raises(IsADirectoryError) as info:
        CascadeConfig.from_file(folder)
    assert isinstance(info.value, ConfigIsADirectoryError)
    assert isinstance(info.value, ConfigError)
    assert info.value.errno == errno.EISDIR
    assert "the path is a folder, not a file" in str(info.value)


@pytest.mark.skipif(
    not hasattr(os, "geteuid") or os.geteuid() == 0, reason="root may read any file"
)
def test_an_unreadable_file_is_a_permission_error(tmp_path: Path) -> None:
    """A file the process may not read raises a PermissionError that is a ConfigError."""
    path = write(tmp_path, CONFIG)
    path.chmod(0)
    with pytest.raises(PermissionError) as info:
        CascadeConfig.from_file(path)
    assert isinstance(info.value, ConfigPermissionError)
    assert "permission denied" in str(info.value)


def test_file_errors_keep_the_message_errno_and_issues_through_pickle() -> None:
    """The file errors keep the ConfigError message (not OSError's `[Errno n]` form), their
    errno, strerror, filename and issues, also when pickled."""
    issue = ConfigIssue(path="", message="cannot read the file: permission denied", file="c.yaml")
    error = ConfigPermissionError([issue], errno.EACCES, os.strerror(errno.EACCES), "c.yaml")
    assert isinstance(error, PermissionError)
    assert isinstance(error, ConfigFileError)
    assert isinstance(error, OSError)
    assert str(error) == (
        "1 problem in the cascade configuration:\n  c.yaml: cannot read the file: permission denied"
    )
    copy = pickle.loads(pickle.dumps(error))
    assert type(copy) is ConfigPermissionError
    assert str(copy) == str(error)
    assert (copy.errno, copy.strerror, copy.filename) == (
        errno.EACCES,
        os.strerror(errno.EACCES),
        "c.yaml",
    )
    assert copy.issues == [issue]


def test_file_errors_are_exported() -> None:
    """The file errors are importable from the package, as ConfigError is."""
    assert cascadence.ConfigFileError is ConfigFileError
    assert cascadence.ConfigFileNotFoundError is ConfigFileNotFoundError
    assert {"ConfigFileError", "ConfigFileNotFoundError"} <= set(cascadence.__all__)
