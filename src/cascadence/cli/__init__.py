"""The `cascadence` command line: `init`, `new`, `validate`, `diagram`, `run` and `schema`.

See docs/cli.md for every command, its options and the exit codes.
"""

from cascadence.cli._common import ExitCode
from cascadence.cli.main import app, main

__all__ = ["ExitCode", "app", "main"]
