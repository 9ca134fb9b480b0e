"""An in-memory span collector for reporter tests."""

from __future__ import annotations

from typing import Any

from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter


class Spans:
    """Finished spans of one tracer provider, with lookups by name and parent."""

    def __init__(self) -> None:
        self.exporter = InMemorySpanExporter()
        self.provider = TracerProvider()
        self.provider.add_span_processor(SimpleSpanProcessor(self.exporter))

    @property
    def all(self) -> list[ReadableSpan]:
        """Every finished span, in the order they ended."""
        return list(self.exporter.get_finished_spans())

    def named(self, name: str) -> list[ReadableSpan]:
        """The finished spans called `name`."""
        return [s for s in self.all if s.name == name]

    def one(self, name: str) -> ReadableSpan:
        """The only finished span called `name`."""
        found = self.named(name)
        assert len(found) == 1, f"{len(found)} spans named {name!r}: {[s.name for s in self.all]}"
        return found[0]

    def parent_of(self, span: ReadableSpan) -> ReadableSpan | None:
        """The finished span that is `span`'s parent."""
        if span.parent is None:
            return None
        for candidate in self.all:
            assert candidate.context is not None
            if candidate.context.span_id == span.parent.span_id:
                return candidate
        return None

    def children(self, span: ReadableSpan) -> list[ReadableSpan]:
        """The finished spans whose parent is `span`."""
        assert span.context is not None
        sid = span.context.span_id
        return [s for s in self.all if s.parent is not None and s.parent.span_id == sid]

    def attrs(self, span: ReadableSpan) -> dict[str, Any]:
        """The span's attributes as a plain dict."""
        return dict(span.attributes or {})
