"""Version of the cascadence package."""

__version__ = "0.1.0"
