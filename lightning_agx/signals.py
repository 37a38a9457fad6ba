"""Stops are not successes: SIGINT and SIGTERM end a run after saving what finished, with exit code 130 / 143.

`stop_requests()` installs handlers for both signals inside the ``with`` block; the first signal only records
itself, and `StopOnSignal` (a Lightning callback, after the writer) ends the fit at the next step boundary,
so every finished explanation is on disk. A second signal interrupts at once. The runner then raises
`lightning_agx.errors.RunStopped`, which the command line turns into its exit code.
"""
from __future__ import annotations

import contextlib
import signal
import threading

import lightning as L

SIGNALS = (signal.SIGINT, signal.SIGTERM)


class StopRequest:
    """The first stop signal received (None while running)."""

    def __init__(self):
        self.signum: int | None = None

    @property
    def name(self) -> str:
        return signal.Signals(self.signum).name if self.signum else ""

    def handle(self, signum, frame) -> None:
        if self.signum is not None:  # a second signal: stop now
            raise KeyboardInterrupt
        self.signum = signum


@contextlib.contextmanager
def stop_requests():
    request = StopRequest()
    if threading.current_thread() is not threading.main_thread():  # signals reach the main thread only
        yield request
        return
    previous = {s: signal.getsignal(s) for s in SIGNALS}
    for s in SIGNALS:
        signal.signal(s, request.handle)
    try:
        yield request
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)


class StopOnSignal(L.Callback):
    """Ends the fit after the current step once a stop was requested (the writer has saved its results)."""

    def __init__(self, request: StopRequest):
        self.request = request

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if self.request.signum is not None:
            trainer.should_stop = True


__all__ = ["StopOnSignal", "StopRequest", "stop_requests"]
