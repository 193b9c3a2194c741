"""Recording and replay: snapshots and events in a compressed, seekable SQLite file."""
