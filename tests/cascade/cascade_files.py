"""Helpers of the load tests: write a cascade file, load it expecting an error, find lines and
issues."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from cascadence.cascade import CascadeConfig
from cascadence.errors import ConfigError, ConfigIssue


def write(tmp_path: Path, text: str, name: str = "cascade.yaml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
    return path


def load_error(tmp_path: Path, text: str, name: str = "cascade.yaml") -> tuple[ConfigError, Path]:
    path = write(tmp_path, text, name)
    with pytest.raises(ConfigError) as info:
        CascadeConfig.from_file(path)
    return info.value, path


def line_of(path: Path, marker: str, occurrence: int = 1) -> int:
    """1-based line of the `occurrence`-th line of the file containing `marker`."""
    found = [n for n, line in enumerate(path.read_text().splitlines(), 1) if marker in line]
    return found[occurrence - 1]


def issue_at(error: ConfigError, path: str) -> ConfigIssue:
    matches = [issue for issue in error.issues if issue.path == path]
    assert matches, f"no issue at {path!r}; issues: {[i.path for i in error.issues]}"
    return matches[0]
