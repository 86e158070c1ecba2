"""Signals while a checkpoint is written: an interrupted write cleans up after itself.

Guarantees: SIGTERM and SIGHUP (and SIGINT, where it is Python's KeyboardInterrupt)
raise KeyboardInterrupt while writing, so every `finally` runs and the write removes
what it made; `step`, called between two steps of a write, raises it again if Python
swallowed it (in a weakref callback or __del__). While the new checkpoint is put in
place (signals_deferred) the signals wait, then CommittedInterrupt says the new
checkpoint is complete. `step_hook` is the tests' view of every step.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

# Test hook: called as step_hook(step, path) at every step of a write and its commit.
step_hook: Callable[[str, Path | None], None] | None = None

_signalled: list[int] = []  # the signal whose KeyboardInterrupt was raised while writing


def step(name: str, path: Path | None = None) -> None:
    """Between two steps: raises a signal's KeyboardInterrupt that Python swallowed (it
    drops exceptions raised in a weakref callback or __del__), then calls the test hook."""
    if _signalled and threading.current_thread() is threading.main_thread():
        signum = _signalled.pop()
        raise KeyboardInterrupt(f"signal {signum}")
    if step_hook is not None:
        step_hook(name, path)


class CommittedInterrupt(KeyboardInterrupt):
    """A signal arrived while the new checkpoint was being put in place: it is complete."""


@contextlib.contextmanager
def terminate_as_interrupt() -> Iterator[None]:
    """SIGTERM and SIGHUP (and SIGINT, where it is Python's KeyboardInterrupt) raise
    KeyboardInterrupt while writing, so cleanup runs; the next step raises it again if
    Python swallowed it."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def interrupt(signum: int, frame: Any) -> None:
        _signalled[:] = [signum]
        raise KeyboardInterrupt(f"signal {signum}")

    numbers = [signal.SIGTERM, signal.SIGHUP]
    if signal.getsignal(signal.SIGINT) is signal.default_int_handler:
        numbers.append(signal.SIGINT)
    _signalled.clear()
    previous = {s: signal.signal(s, interrupt) for s in numbers}
    try:
        yield
    finally:
        _signalled.clear()
        for s, handler in previous.items():
            signal.signal(s, handler)


@contextlib.contextmanager
def signals_deferred() -> Iterator[None]:
    """SIGINT, SIGTERM and SIGHUP wait while the commit runs; then CommittedInterrupt."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    if _signalled:  # one Python swallowed, before the commit: it still stops the write
        raise KeyboardInterrupt(f"signal {_signalled.pop()}")
    pending: list[int] = []
    previous = {}
    for number in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        if signal.getsignal(number) not in (signal.SIG_IGN, None):
            previous[number] = signal.signal(number, lambda signum, _: pending.append(signum))
    try:
        yield
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)
    if pending:
        raise CommittedInterrupt(f"signal {pending[0]} (the new checkpoint is complete)")
