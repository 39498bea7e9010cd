"""Keep the calling thread's alternate signal stack across NNCF's accuracy control (a shim; seen with openvino
2026.4.1 and nncf 3.4.0 on Linux x86-64).

OpenVINO's CPU plugin installs alternate signal stacks (``sigaltstack(2)``) when it compiles and destroys models.
After ``nncf.quantize``, ``nncf.quantize_with_accuracy_control`` and exports with compiled models dropped, the calling
thread was left with an alternate stack whose memory had been unmapped; the next signal handled on it killed the process with SIGSEGV (``si_code=SI_KERNEL``). Python installs
its handlers with ``SA_ONSTACK`` (SIGINT, and the SIGCHLD handler of PyTorch's multi-worker DataLoader), so a Ctrl+C
or the end of a DataLoader worker after an OpenVINO backend had run crashed the command. No public API of either
library changes this, hence :func:`kept_signal_stack`, a context manager and decorator for every OpenVINO entry point
of :mod:`benchmarking.backends`: it reads the thread's alternate stack before the call and puts it back after.
Elsewhere than Linux it does nothing.
"""

from __future__ import annotations

import contextlib
import ctypes
import gc
import sys
from collections.abc import Iterator


class _StackT(ctypes.Structure):
    """``stack_t`` of ``<signal.h>`` (Linux)."""

    _fields_ = [("ss_sp", ctypes.c_void_p), ("ss_flags", ctypes.c_int), ("ss_size", ctypes.c_size_t)]


def _sigaltstack():
    """libc's ``sigaltstack`` or None where there is none (not Linux)."""
    if not sys.platform.startswith("linux"):
        return None
    return getattr(ctypes.CDLL(None, use_errno=True), "sigaltstack", None)


def current_signal_stack() -> tuple[int, int, int] | None:
    """(ss_sp address, ss_flags, ss_size in bytes) of this thread's alternate signal stack; None where unsupported."""
    call = _sigaltstack()
    if call is None:
        return None
    now = _StackT()
    if call(None, ctypes.byref(now)) != 0:
        return None
    return int(now.ss_sp or 0), int(now.ss_flags), int(now.ss_size)


@contextlib.contextmanager
def kept_signal_stack(collect: bool = True) -> Iterator[None]:
    """Run the body, then (``collect``) collect garbage, so that the body's dropped compiled models are destroyed
    inside, and put this thread's alternate signal stack back as it was before. ``collect=False`` for calls in timed
    loops (two ``sigaltstack`` system calls, about a microsecond each).

    Raises:
        OSError: restoring the stack failed (errno named).
    """
    call = _sigaltstack()
    if call is None:
        yield
        return
    saved = _StackT()
    if call(None, ctypes.byref(saved)) != 0:
        yield
        return
    try:
        yield
    finally:
        if collect:
            gc.collect()
        if saved.ss_flags & 2:  # SS_DISABLE: there was none; turn whatever was installed off
            saved = _StackT(None, 2, 0)
        if call(ctypes.byref(saved), None) != 0:
            raise OSError(ctypes.get_errno(), "sigaltstack: could not restore the alternate signal stack")
