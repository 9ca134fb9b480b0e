"""`python -m cascadence`: the `cascadence` command."""

from cascadence.cli.main import main

__all__: list[str] = []

if __name__ == "__main__":
    raise SystemExit(main())
