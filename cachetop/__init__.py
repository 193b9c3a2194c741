"""cachetop: a terminal dashboard for cache fleets."""

__version__ = "0.1.0"
