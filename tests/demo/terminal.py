"""A program in a pseudo-terminal of a fixed size, and the text of its screen.

Screen understands what a Textual app draws with: cursor addressing and moves, erases, and
text; colours, modes and queries are skipped. Enough to read a dashboard, not a full VT100.
"""

from __future__ import annotations

import codecs
import contextlib
import fcntl
import os
import pty
import re
import struct
import subprocess
import termios
import threading
import time
from collections.abc import Callable, Mapping, Sequence

_CSI = re.compile(r"\x1b\[([?>=<]?)([0-9;:]*)([ -/]*)([@-~])")
_OSC = re.compile(r"\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)")
_DCS = re.compile(r"\x1b[P_^][^\x1b]*\x1b\\")


class Screen:
    def __init__(self, rows: int, cols: int) -> None:
        self.rows, self.cols = rows, cols
        self.grid = [[" "] * cols for _ in range(rows)]
        self.y = self.x = 0
        self._pending = ""

    def feed(self, data: str) -> None:
        data, self._pending = self._pending + data, ""
        i = 0
        while i < len(data):
            ch = data[i]
            if ch == "\x1b":
                match = _CSI.match(data, i) or _OSC.match(data, i) or _DCS.match(data, i)
                if match is None:
                    if len(data) - i < 256 and data[i + 1:i + 2] in ("[", "]", "P", "_", "^", ""):
                        self._pending = data[i:]  # an escape split across reads
                        return
                    i += 2  # ESC and one character: keypad modes, save/restore cursor
                    continue
                if match.re is _CSI and not match.group(1):
                    self._csi(match.group(2), match.group(4))
                i = match.end()
                continue
            if ch == "\r":
                self.x = 0
            elif ch == "\n":
                self.y = min(self.y + 1, self.rows - 1)
            elif ch == "\b":
                self.x = max(0, self.x - 1)
            elif ch >= " ":
                if self.x < self.cols:
                    self.grid[self.y][self.x] = ch
                self.x += 1
            i += 1

    def _csi(self, params: str, final: str) -> None:
        nums = [int(p) if p.isdigit() else 0 for p in params.replace(":", ";").split(";")]
        first = nums[0] if nums else 0
        n = max(1, first)
        if final in "Hf":
            self.y = min(self.rows - 1, max(1, first) - 1)
            self.x = min(self.cols - 1, max(1, nums[1] if len(nums) > 1 else 1) - 1)
        elif final == "A":
            self.y = max(0, self.y - n)
        elif final == "B":
            self.y = min(self.rows - 1, self.y + n)
        elif final == "C":
            self.x = min(self.cols - 1, self.x + n)
        elif final == "D":
            self.x = max(0, self.x - n)
        elif final == "G":
            self.x = min(self.cols - 1, n - 1)
        elif final == "d":
            self.y = min(self.rows - 1, n - 1)
        elif final == "X":
            self._blank(self.y, self.x, self.x + n)
        elif final == "K":
            start, end = {0: (self.x, self.cols), 1: (0, self.x + 1)}.get(first, (0, self.cols))
            self._blank(self.y, start, end)
        elif final == "J":
            if first == 0:
                self._blank(self.y, self.x, self.cols)
                rows = range(self.y + 1, self.rows)
            else:
                rows = range(self.rows) if first >= 2 else range(self.y)
            for row in rows:
                self._blank(row, 0, self.cols)

    def _blank(self, row: int, start: int, end: int) -> None:
        for col in range(max(0, start), min(self.cols, end)):
            self.grid[row][col] = " "

    def lines(self) -> list[str]:
        return ["".join(row).rstrip() for row in self.grid]

    def text(self) -> str:
        return "\n".join(self.lines())


class PtyProgram:
    """A subprocess whose stdin/stdout/stderr are a rows x cols pseudo-terminal; a thread
    keeps reading it (a program whose terminal is not read blocks) into a Screen."""

    def __init__(self, argv: Sequence[str], env: Mapping[str, str], rows: int = 45,
                 cols: int = 140) -> None:
        master, slave = pty.openpty()
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))
        self.master = master
        self.screen = Screen(rows, cols)
        self._written: list[str] = []  # everything the program wrote, escapes and all
        self._lock = threading.Lock()
        self.proc = subprocess.Popen(list(argv), stdin=slave, stdout=slave, stderr=slave,
                                     env=dict(env), start_new_session=True, close_fds=True)
        os.close(slave)
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        decoder = codecs.getincrementaldecoder("utf-8")("replace")
        while True:
            try:
                data = os.read(self.master, 65536)
            except OSError:
                return
            if not data:
                return
            text = decoder.decode(data)
            with self._lock:
                self._written.append(text)
                self.screen.feed(text)

    def text(self) -> str:
        with self._lock:
            return self.screen.text()

    def written(self) -> str:
        """Everything written so far, what the screen shows now or showed before."""
        with self._lock:
            return "".join(self._written)

    def wait_for(self, ready: Callable[[str], bool], timeout_s: float) -> str:
        """Poll the screen until `ready(text)`; returns the last text either way."""
        deadline = time.monotonic() + timeout_s
        text = self.text()
        while time.monotonic() < deadline and self.proc.poll() is None:
            if ready(text):
                return text
            time.sleep(0.5)
            text = self.text()
        return text

    def send(self, keys: bytes) -> None:
        os.write(self.master, keys)

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)
        self._reader.join(2)
        with contextlib.suppress(OSError):
            os.close(self.master)
