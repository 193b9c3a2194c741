"""Provides ConfigError and RecordingError: problems reported as one line that never holds a
secret. Here, not beside their code, so a caller can catch them without importing that code
(the recorder pulls in sqlite3 and the codec; the first frame waits for neither)."""

from __future__ import annotations


class ConfigError(Exception):
    """A bad config file, environment variable, CLI argument or target URL.

    `problem` says what is wrong; `where` says where (a file and key, or a redacted URL), so a
    caller that knows better context can re-raise with its own `where` and the same `problem`.
    The message is one line, and callers build it only from redacted text.
    """

    def __init__(self, problem: str, *, where: str | None = None) -> None:
        self.problem = problem
        self.where = where
        super().__init__(f"{where}: {problem}" if where else problem)


class RecordingError(Exception):
    """A file that is not a cachetop recording, or a time it does not cover: one line."""
