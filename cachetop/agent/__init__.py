"""cachetop agent: the engine, headless and long running, serving /metrics and the
snapshot stream."""
