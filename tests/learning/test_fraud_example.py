"""examples/fraud/run.py: APLS cuts the fraud cascade's cost by 40% or more at 99% agreement."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[2]


@pytest.mark.slow
def test_fraud_example_meets_its_targets() -> None:
    """The example learns, reviews, shadow-tests and activates rules that cut the cost per
    decision by at least 40% while agreeing with the original cascade on 99% of decisions."""
    out = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "fraud" / "run.py")],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
        check=True,
    ).stdout
    match = re.search(r"cost reduction ([\d.]+)%\s+decision agreement ([\d.]+)%", out)
    assert match is not None, out
    reduction, agreement = float(match.group(1)), float(match.group(2))
    assert reduction >= 40.0
    assert agreement >= 99.0
    assert "activated after shadow testing" in out
    assert re.search(r"config v1\.0 -> v1\.1: \d+ learned routing rules", out)
