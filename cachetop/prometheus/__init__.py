"""cachetop --prometheus: the fleet read from a Prometheus-compatible HTTP API."""
