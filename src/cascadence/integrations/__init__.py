"""Web integrations: serve flows and cascades over HTTP.

- `cascadence.integrations.fastapi`: `CadenceRouter` (flows, as in the spec), `CascadeRouter`
  (a cascade as a decision endpoint), `create_app` (with `/healthz` and `/metrics`).
- `cascadence.integrations.flask`: `CadenceBlueprint` (flows and decisions) and `create_app`.

Importing this package imports no web framework; each submodule imports its own.
"""

from __future__ import annotations

from cascadence.integrations._decision import RETRY_AFTER, RUN_ID_HEADER

__all__ = ["RETRY_AFTER", "RUN_ID_HEADER"]
