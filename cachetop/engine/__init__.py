"""The engine: collection in its own process, and the channel fronts read it through."""
