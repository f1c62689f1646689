"""alertscaler: Prometheus signals in, safe and durable scaling / healing actions out."""

__version__ = "0.1.0"
