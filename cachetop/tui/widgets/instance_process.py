"""Provides process_text(): the local process behind a target, and the host's memory, as Text."""

from __future__ import annotations

import time

from rich.text import Text

from cachetop.formatting import DASH, age, size
from cachetop.host_process import HostMemory, ProcessInfo
from cachetop.text_safety import plain

DIM = "grey50"


def _pair(text: Text, label: str, value: str, end: str = "   ") -> None:
    text.append(f"{label} ", style="cyan")
    text.append(value, style="bold")
    text.append(end)


def process_text(info: ProcessInfo | None, memory: HostMemory | None, *, why_none: str = "",
                 reading: bool = False) -> Text:
    """Pid, name, CPU, RSS, threads and connections of the process, then the host's memory."""
    text = Text("process on this host\n", style="bold")
    if info is not None:
        text.append(plain(info.name, 40) + "\n", style="bold")
        _pair(text, "pid", str(info.pid))
        _pair(text, "CPU", DASH if info.cpu_percent is None else f"{info.cpu_percent:.1f}%", "\n")
        _pair(text, "RSS", size(info.rss_bytes))
        _pair(text, "threads", str(info.threads), "\n")
        _pair(text, "conns", str(info.connections))
        _pair(text, "up", age(time.time() - info.started_at), "\n")
    elif reading:
        text.append("reading…\n", style=DIM)
    else:
        text.append(f"{why_none}\n", style=DIM)
    if memory is not None:
        _pair(text, "host mem", f"{size(memory.total_bytes - memory.available_bytes)}/"
                               f"{size(memory.total_bytes)}", "\n")
        _pair(text, "free", size(memory.available_bytes))
        _pair(text, "used", f"{memory.used_ratio * 100:.0f}%")
        if memory.swap_used_bytes:
            _pair(text, "swap", size(memory.swap_used_bytes))
    text.rstrip()
    return text


def remote_text(host: str | None, socket_path: str | None) -> Text:
    """Why there is no process panel: the target is not on this host, or has no TCP port."""
    text = Text("process\n", style="bold")
    if socket_path:
        text.append("unix socket target: psutil looks processes up by TCP port", style=DIM)
    else:
        text.append(f"{plain(host or '?', 80)} is not this host: psutil sees local processes "
                    "only", style=DIM)
    return text
