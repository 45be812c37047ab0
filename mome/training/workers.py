"""What every worker process of training (DataLoader workers, preparation processes) sets up first."""

from __future__ import annotations

import signal


def ignore_stop_signals(_worker_id: int = 0) -> None:
    """Ctrl-C and SIGTERM (Slicer's Stop, a scheduler) reach the whole process group. The main process
    handles them — it writes a checkpoint (or removes a half-written folder), then stops its workers —
    so a worker that died of them first would turn a clean stop into a "worker killed" error."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
