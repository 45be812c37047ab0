"""Stand-in for PythonQt's ``qt`` module (tests only): every class and call exists and does nothing.

Slicer's released Python layer (``../shared/slicer-python``) imports ``qt`` at module level and uses
it for dialogs, cursors and threads; the tests run that real code with these inert stand-ins, so
what is tested is Slicer's logic and MoME's, never a hand-written copy of either.
"""


class _Inert(type):
    def __getattr__(cls, name):
        if name.startswith("__"):
            raise AttributeError(name)
        return Inert()


class Inert(metaclass=_Inert):
    def __init__(self, *args, **kwargs):
        pass

    def __getattr__(self, name):
        if name.startswith("__"):
            raise AttributeError(name)
        return Inert()

    def __call__(self, *args, **kwargs):
        return Inert()

    def __eq__(self, other):  # e.g. QThread.currentThread() == app.thread(): one GUI thread here
        return isinstance(other, Inert)

    __hash__ = object.__hash__

    def _combine(self, *other):  # flags: Ok | Cancel, flags & ~hint
        return Inert()

    __or__ = __ror__ = __and__ = __rand__ = __invert__ = _combine

    def __iter__(self):
        return iter(())


class QTimer(Inert):
    """``singleShot`` callbacks run when the stand-in application processes events, as in Qt."""

    pending: list = []

    @staticmethod
    def singleShot(msec, callback):  # noqa: N802 - Qt's name
        import time

        QTimer.pending.append((time.monotonic() + msec / 1000.0, callback))


def process_events() -> None:
    """Run the timer callbacks that are due (what ``QApplication.processEvents`` does for them)."""
    import time

    now = time.monotonic()
    due = [entry for entry in QTimer.pending if entry[0] <= now]
    QTimer.pending[:] = [entry for entry in QTimer.pending if entry[0] > now]
    for _, callback in due:
        callback()


class QThread(Inert):
    @staticmethod
    def msleep(msec):
        import time

        time.sleep(msec / 1000.0)


_classes: dict[str, type] = {}


def __getattr__(name):
    if name.startswith("__"):
        raise AttributeError(name)
    if name not in _classes:
        _classes[name] = type(name, (Inert,), {})
    return _classes[name]
