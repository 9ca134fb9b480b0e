"""The web console: see cascades and flows, inspect runs, approve or reject APLS proposals.

```python
from cascadence.console import create_console

app = create_console(
    ["cascade.yaml", checkout_flow],
    runs="sqlite:///runs.db",
    proposals="sqlite:///proposals.db",
)
# uvicorn.run(app)  -- or, from a shell: cascadence console cascade.yaml --runs ... --proposals ...
```

Needs the `console` extra (FastAPI, Jinja2 and uvicorn): `pip install "cascadence[console]"`.
"""

from __future__ import annotations

from cascadence.console.app import MERMAID_URL, create_console
from cascadence.console.catalog import Catalog, CatalogEntry, UnknownEntryError

__all__ = ["MERMAID_URL", "Catalog", "CatalogEntry", "UnknownEntryError", "create_console"]
