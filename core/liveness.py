"""Is the process that wrote a ``running`` summary.json still alive? (standard library only: ``benchmark.py
compare`` imports it without loading the training stack)."""

from __future__ import annotations

import os
import socket
from pathlib import Path

#: statuses of a run summary (``killed`` is never written: it is what a ``running`` summary of a gone process is)
STATUSES = ("running", "finished", "failed", "killed")


def process_start_ticks(pid: int) -> int | None:
    """Start time of process ``pid`` in clock ticks after boot (``/proc/<pid>/stat`` field 22), None if unknown.

    With the pid it identifies a process even after the pid is reused."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        return int(stat.rsplit(")", 1)[1].split()[19])
    except (OSError, ValueError, IndexError):
        return None


def effective_status(summary: dict) -> str:
    """The status to report: ``killed`` for a ``running`` summary whose writer process is gone.

    Decided only on the host that wrote it (``hostname``): the process ``pid`` must exist with the recorded
    start time (``pid_start``). On another host a ``running`` summary stays ``running``.
    """
    status = str(summary.get("status", "running"))
    if status != "running" or summary.get("hostname") != socket.gethostname() or not summary.get("pid"):
        return status
    pid = int(summary["pid"])
    start = process_start_ticks(pid)
    if start is None:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return "killed"
        except PermissionError:
            return status
        return status if summary.get("pid_start") is None else "killed"
    return status if summary.get("pid_start") in (None, start) else "killed"
