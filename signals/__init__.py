"""tapewatch signal engine: pure computation (no Kafka, Redis or Prometheus imports)."""

__version__ = "0.1.0"
