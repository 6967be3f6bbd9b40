"""Child processes that never outlive the command that started them.

The development commands (``demo``, ``embedded``, ``bench``) start a broker, a
``redis-server`` and workers as child processes. Two mechanisms make sure none is left
running:

- **Signals.** :func:`raising_stopped` turns SIGINT, SIGTERM and SIGHUP into a
  :class:`Stopped` exception in the main thread, so the ``with`` blocks that own the
  children unwind and stop them in order (each within a bounded time). Only the first
  signal raises: later ones arrive while the children are being stopped and are ignored.
  :func:`on_stop_signals` calls a function instead (the demo's event loop sets an event).
- **Death of the parent.** SIGKILL cannot be caught, so each child asks the kernel to
  kill it when its parent dies: :func:`die_with_parent` is a ``preexec_fn`` that calls
  Linux's ``prctl(PR_SET_PDEATHSIG, SIGKILL)`` in the child between fork and exec. The
  kernel sends the signal when the *thread* that forked the child exits, so children are
  started from the main thread (all commands do); a child started from a short-lived
  thread would be killed when that thread ends.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import sys
from collections.abc import Callable, Iterator
from types import FrameType

#: What stops a development command: Ctrl-C, ``kill``, and a closed terminal.
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)

_PR_SET_PDEATHSIG = 1


class Stopped(KeyboardInterrupt):
    """The command was told to stop by a signal (a ``KeyboardInterrupt`` for Ctrl-C's
    sake: code that cleans up after Ctrl-C cleans up after this too)."""

    def __init__(self, signum: int) -> None:
        self.signum = signum
        super().__init__(signal.Signals(signum).name)


def _load_prctl() -> Callable[..., int] | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        prctl: Callable[..., int] = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None
    return prctl


_PRCTL = _load_prctl()  # looked up once, in the parent: the child only calls it


def die_with_parent(sig: int = signal.SIGKILL) -> Callable[[], None] | None:
    """Return a ``preexec_fn`` that makes the child receive ``sig`` when this process
    dies, whatever kills it (``None`` where Linux's ``prctl`` is not available).

    Call it, and start the child, from the main thread (see the module's docstring).
    """
    prctl = _PRCTL
    if prctl is None:
        return None
    parent = os.getpid()

    def preexec() -> None:
        if prctl(_PR_SET_PDEATHSIG, int(sig), 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), "prctl(PR_SET_PDEATHSIG) failed")
        if os.getppid() != parent:  # the parent died before the request took effect
            os.kill(os.getpid(), sig)

    return preexec


@contextlib.contextmanager
def on_stop_signals(handler: Callable[[int], None]) -> Iterator[None]:
    """Call ``handler(signum)`` on SIGINT, SIGTERM or SIGHUP inside the block; restore the
    previous handlers after it. Main thread only (Python's rule for signal handlers)."""

    def handle(signum: int, frame: FrameType | None) -> None:
        handler(signum)

    previous = {sig: signal.signal(sig, handle) for sig in STOP_SIGNALS}
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, signal.SIG_DFL if old is None else old)


def ignore_stop_signals() -> None:
    """Ignore SIGINT, SIGTERM and SIGHUP from now on (until an enclosing
    :func:`on_stop_signals` block restores what was before it): for the shutdown that a
    first signal started."""
    for sig in STOP_SIGNALS:
        signal.signal(sig, signal.SIG_IGN)


def raising_stopped() -> contextlib.AbstractContextManager[None]:
    """Raise :class:`Stopped` on the first SIGINT, SIGTERM or SIGHUP inside the block;
    ignore the ones after it, which arrive while the children are being stopped."""
    stopping = False

    def handler(signum: int) -> None:
        nonlocal stopping
        if not stopping:
            stopping = True
            raise Stopped(signum)

    return on_stop_signals(handler)
