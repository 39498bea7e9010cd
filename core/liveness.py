"""Is the process that wrote a ``running`` summary.json (or owns an Optuna trial) still alive? Decided with
psutil from the process id and its start time, so a reused pid is not mistaken for the writer."""

from __future__ import annotations

import socket

import psutil

#: statuses of a run summary (``killed`` is never written: it is what a ``running`` summary of a gone process is)
STATUSES = ("running", "finished", "failed", "killed")


def process_start(pid: int) -> float | None:
    """Start time of process ``pid`` (s since the epoch, 10 ms resolution: ``psutil.Process.create_time``), None if
    no such process. With the pid it identifies a process even after the pid is reused."""
    try:
        return round(psutil.Process(pid).create_time(), 2)
    except (psutil.NoSuchProcess, psutil.AccessDenied, ValueError):
        return None


def effective_status(summary: dict) -> str:
    """The status to report: ``killed`` for a ``running`` summary whose writer process is gone.

    Decided only on the host that wrote it (``hostname``): the process ``pid`` must exist with the recorded
    start time (``pid_start``, :func:`process_start`). On another host a ``running`` summary stays ``running``.
    """
    status = str(summary.get("status", "running"))
    if status != "running" or summary.get("hostname") != socket.gethostname() or not summary.get("pid"):
        return status
    start = process_start(int(summary["pid"]))
    if start is None:
        return "killed"
    recorded = summary.get("pid_start")
    return status if recorded is None or abs(float(recorded) - start) < 0.05 else "killed"
