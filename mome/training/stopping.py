"""Stopping a DDP run cleanly: Ctrl-C / SIGTERM become a request that every rank acts on at the same step.

In one process the CLI turns SIGTERM into ``KeyboardInterrupt`` and the trainer checkpoints the last
completed step at once. Under torchrun that is not safe: the ranks get the signal at different
moments (torchrun forwards it to its own workers; another node's torchrun gets it later, or never),
and a rank that leaves the loop alone strands the others in their next collective, so nobody writes
a consistent checkpoint. So while a DDP run trains, the signal only sets a flag; after each step the
ranks agree on it (``any_rank``), finish that step together, rank 0 writes the checkpoint, and all of
them stop. A step is short, well within torchrun's 30 s grace period before it kills its workers.
"""

from __future__ import annotations

import signal
import threading

from .distributed import DistInfo, any_rank

STOP_SIGNALS = tuple(s for s in (getattr(signal, "SIGINT", None), getattr(signal, "SIGTERM", None),
                                 getattr(signal, "SIGBREAK", None)) if s is not None)


class StopRequests:
    """Between ``install()`` and ``restore()`` the stop signals set ``requested`` instead of interrupting
    (DDP only). Outside DDP, or outside the main thread (where Python cannot install handlers), it
    changes nothing and ``agreed`` reports only what was set by hand."""

    def __init__(self, info: DistInfo):
        self.info = info
        self.requested = False
        self._previous: dict[int, object] = {}

    def _handle(self, signum, frame) -> None:  # noqa: ARG002
        self.requested = True

    def install(self) -> "StopRequests":
        if self.info.enabled and threading.current_thread() is threading.main_thread():
            for sig in STOP_SIGNALS:
                self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def restore(self) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        self._previous.clear()

    def agreed(self) -> bool:
        """Whether any rank was asked to stop (a collective under DDP: every rank calls it each step)."""
        return any_rank(self.requested, self.info)
