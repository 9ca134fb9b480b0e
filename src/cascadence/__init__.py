"""cascadence: cost-aware decision cascades and resilient flows on one async runtime."""
