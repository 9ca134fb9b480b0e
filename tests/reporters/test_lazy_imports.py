"""Importing cascadence and its reporters package pulls in no optional dependency."""

from __future__ import annotations

import subprocess
import sys

HEAVY = ("prometheus_client", "opentelemetry", "fastapi", "flask", "starlette", "structlog")


def test_imports_stay_lazy() -> None:
    """`import cascadence, cascadence.reporters, cascadence.integrations` loads no extra."""
    code = (
        "import sys, cascadence, cascadence.reporters, cascadence.integrations\n"
        "cascadence.reporters.Reporter\n"
        f"loaded = [m for m in {HEAVY!r} if m in sys.modules]\n"
        "assert not loaded, loaded\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_reporter_names_resolve_on_first_use() -> None:
    """Each reporter name loads its module on first access; unknown names raise."""
    import pytest

    import cascadence.reporters as reporters

    assert reporters.ConsoleReporter.__module__ == "cascadence.reporters.console"
    assert "PrometheusReporter" in dir(reporters)
    with pytest.raises(AttributeError, match="no attribute 'Nope'"):
        reporters.Nope  # noqa: B018
