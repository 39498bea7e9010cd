"""One-line errors for the entry points: the culprit on stderr, the full traceback in a log file.

* :func:`one_line` turns an exception into one line (Hydra's ``InstantiationException`` wrappers unwrapped,
  multi-line messages joined with ``; ``).
* :func:`report` writes the traceback to a log file (the entry point's own, or
  ``<tmp>/segbench-logs/<entry>-<time>-<pid>.log``) and prints ``<entry>: error: <message> (traceback: <log>)``
  on stderr.
* :func:`command_line` makes the ``entry(argv)`` function of a script that is not a Hydra app (INFO logging to
  stderr, then :func:`run_entry`).
* :func:`unquoted_space` names an override whose value the shell split at a space (``key=/tmp/my data``) and
  shows it quoted; every entry point checks its overrides with it before parsing them.
* :class:`HydraErrors` makes Hydra's own errors (unknown override key, missing config group option), printed
  on several lines before the task runs, one line too: stderr is buffered until the task function starts
  (:meth:`HydraErrors.started`); on failure the buffered text is folded into one line.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import io
import logging
import os
import re
import shlex
import sys
import tempfile
import traceback
from collections.abc import Callable, Sequence
from pathlib import Path

MAX_MESSAGE = 1000  # characters of the message kept on the line


def one_line(exc: BaseException) -> str:
    """``exc``'s message in one line (constructor errors wrapped by Hydra are unwrapped to their cause)."""
    from hydra.errors import InstantiationException

    while isinstance(exc, InstantiationException) and (exc.__cause__ or exc.__context__) is not None:
        exc = exc.__cause__ or exc.__context__
    lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
    text = "; ".join(lines) or type(exc).__name__
    if type(exc).__name__ not in ("ValueError", "FileNotFoundError", "RunFolderError", "DatasetError") and lines:
        text = f"{type(exc).__name__}: {text}"
    return text if len(text) <= MAX_MESSAGE else text[: MAX_MESSAGE - 3] + "..."


def default_log_file(entry: str) -> Path:
    """``<tmp>/segbench-logs/<entry>-<YYYY-mm-dd_HH-MM-SS>-<pid>.log`` (folder created)."""
    folder = Path(tempfile.gettempdir()) / "segbench-logs"
    folder.mkdir(parents=True, exist_ok=True)
    stamp = _dt.datetime.now().strftime("%Y-%m-%d_%H-%M-%S")
    return folder / f"{Path(entry).stem}-{stamp}-{os.getpid()}.log"


def file_handler_path() -> Path | None:
    """The file of the first ``logging.FileHandler`` of the root logger (Hydra's ``main.log``), if any."""
    for h in logging.getLogger().handlers:
        if isinstance(h, logging.FileHandler):
            return Path(h.baseFilename)
    return None


def write_traceback(exc: BaseException, log_file: Path) -> Path:
    """Append ``exc``'s traceback to ``log_file`` (through the root logger's handler of that file when there
    is one, so records stay in order; the console never sees it)."""
    text = "".join(traceback.format_exception(exc))
    for h in logging.getLogger().handlers:
        if isinstance(h, logging.FileHandler) and Path(h.baseFilename) == Path(log_file):
            h.handle(logging.LogRecord("segbench", logging.ERROR, __file__, 0, f"Traceback:\n{text}", None, None))
            h.flush()
            return Path(log_file)
    Path(log_file).parent.mkdir(parents=True, exist_ok=True)
    with open(log_file, "a") as f:
        f.write(text)
    return Path(log_file)


def report(entry: str, exc: BaseException, log_file: str | os.PathLike | None = None) -> str:
    """Write the traceback to ``log_file`` (default :func:`default_log_file`) and print the one line on stderr.

    Returns:
        the line printed.
    """
    path = write_traceback(exc, Path(log_file) if log_file else default_log_file(entry))
    line = f"{entry}: error: {one_line(exc)} (traceback: {path})"
    print(line, file=sys.stderr, flush=True)
    return line


class HydraErrors:
    """Buffer stderr until the Hydra task starts, so that Hydra's multi-line errors come out as one line.

    Usage (entry point's ``__main__``)::

        with HydraErrors("main.py") as guard:
            main()          # the task function calls guard.started() first
    """

    current: HydraErrors | None = None

    def __init__(self, entry: str):
        self.entry = entry
        self._real = sys.stderr
        self._buffer = io.StringIO()

    def __enter__(self) -> HydraErrors:
        HydraErrors.current = self
        sys.stderr = self._buffer
        return self

    def started(self) -> None:
        """The task runs: restore stderr and replay what was buffered (warnings of composition)."""
        if sys.stderr is self._buffer:
            sys.stderr = self._real
            self._real.write(self._buffer.getvalue())
            self._buffer = io.StringIO()

    def __exit__(self, exc_type, exc, tb) -> bool:
        buffered = self._buffer.getvalue() if sys.stderr is self._buffer else ""
        sys.stderr = self._real
        HydraErrors.current = None
        failed = exc_type is SystemExit and exc.code not in (0, None)
        if buffered and failed:
            lines = [ln.strip() for ln in buffered.splitlines() if ln.strip()]
            if "Config search path:" in lines:
                lines = lines[: lines.index("Config search path:")]
            lines = [ln for ln in lines if "HYDRA_FULL_ERROR" not in ln and not ln.startswith(("full_key", "object_"))]
            print(f"{self.entry}: error: {'; '.join(lines)}", file=sys.stderr, flush=True)
        elif buffered:
            self._real.write(buffered)
        return False


def task_started() -> None:
    """Called first by a Hydra task function: see :class:`HydraErrors`."""
    if HydraErrors.current is not None:
        HydraErrors.current.started()


#: ``key=`` at the start of a command-line override (``+``/``++``/``~`` prefixes, config groups with ``/``)
_OVERRIDE_KEY = re.compile(r"^(?:\+\+|\+|~)?[A-Za-z_][\w.\-/@]*=")


def shell_quoted_override(key: str, value: str) -> str:
    """``key=value`` quoted for Hydra's override grammar and then for a POSIX shell, as a user would type it.

    Args:
        key: the override key (with any ``+`` prefix).
        value: its value, spaces included.

    Returns:
        e.g. ``"environment.data_root='/tmp/my data'"``.
    """
    hydra_arg = f"{key}='{value}'" if "'" not in value else f'{key}="{value}"'
    return f'"{hydra_arg}"' if not any(c in hydra_arg for c in '"$`\\!') else shlex.quote(hydra_arg)


def unquoted_space(args: Sequence[str], literal: Callable[[str], bool] = lambda a: False) -> str | None:
    """The error for a ``key=value`` override whose value the shell split at a space, or None.

    ``environment.data_root=/tmp/my data`` reaches the program as ``environment.data_root=/tmp/my`` and
    ``data``; Hydra then reports ``data`` as an override without ``=``. Words without ``=`` that follow an override
    (not an option, nor accepted by ``literal``) are taken as the rest of its value.

    Args:
        args: the command-line arguments (or the positional ones, in order).
        literal: arguments that stand for themselves, never part of a value (predict.py: existing image paths).

    Returns:
        one line naming the override and the quoting to use, or None when no override was split.
    """
    for i, arg in enumerate(args):
        if not _OVERRIDE_KEY.match(arg) or literal(arg):
            continue
        words = []
        for nxt in args[i + 1 :]:
            if "=" in nxt or nxt.startswith("-") or literal(nxt):
                break
            words.append(nxt)
        if words:
            key, _, value = arg.partition("=")
            full = " ".join([value, *words])
            return (
                f"override {key}: the value {full!r} holds a space and must be quoted, e.g. "
                f"{shell_quoted_override(key, full)} (unquoted, the shell splits it into "
                f"{' '.join(repr(a) for a in [arg, *words])})"
            )
    return None


class OneLineArgumentParser(argparse.ArgumentParser):
    """``argparse.ArgumentParser`` whose usage errors are one line (``<prog>: error: <message> (see --help)``)."""

    def error(self, message: str):
        print(f"{self.prog}: error: {message} (see --help)", file=sys.stderr, flush=True)
        sys.exit(2)


def run_entry(entry: str, main, argv=None) -> int:
    """Run ``main(argv)`` of an entry point that is not a Hydra app (validation.py, predict.py): 0 on success; any exception -> :func:`report` and 1."""
    try:
        main(argv)
    except Exception as e:
        report(entry, e)
        return 1
    return 0


def command_line(entry: str, main: Callable[[Sequence[str] | None], object], console_script: str) -> Callable:
    """The ``entry(argv=None) -> int`` function of a script that is not a Hydra app (validation.py, predict.py):
    INFO logging to stderr, then ``main(argv)`` under :func:`run_entry`; it returns the exit status (1 with one line
    on error)."""

    def run(argv: Sequence[str] | None = None) -> int:
        logging.basicConfig(level=logging.INFO, format="[%(asctime)s][%(name)s][%(levelname)s] - %(message)s")
        return run_entry(entry, main, argv)

    run.__doc__ = (
        f"The command line (``python {entry} ARGS``, ``{console_script} ARGS``): logging to stderr, then "
        f":func:`main` under :func:`core.errors.run_entry`; returns the exit status (1 with one line on error)."
    )
    return run


def print_written(prog: str, make: Callable[[], Sequence], error_status: int = 1) -> int:
    """Run ``make`` (which returns the files it wrote) and print each file, one per line; a ``ValueError`` (bad
    input) becomes one line ``<prog>: <message>`` on stderr instead.

    Returns:
        the exit status: 0, or ``error_status`` after a ``ValueError``.
    """
    try:
        paths = make()
    except ValueError as e:
        print(f"{prog}: {e}", file=sys.stderr)
        return error_status
    for path in paths:
        print(path)
    return 0
