"""The allocator setting the CLI applies: it must take effect on glibc and never break elsewhere."""

from __future__ import annotations

import subprocess
import sys

import pytest

from mome.runtime import tune_allocator

# In a fresh process: malloc and free a 16 MiB block, then ask glibc (mallinfo2) how many free bytes
# its heap still holds. By default such a block is mmapped and handed back to the kernel on free;
# tuned, it stays in the heap for the next allocation of that size.
HELD_AFTER_FREE = """
import ctypes, sys
from mome.runtime import tune_allocator
if sys.argv[1] == "tuned":
    assert tune_allocator()
libc = ctypes.CDLL("libc.so.6")
class MallInfo2(ctypes.Structure):
    _fields_ = [(n, ctypes.c_size_t) for n in ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks",
                                               "fsmblks", "uordblks", "fordblks", "keepcost")]
libc.mallinfo2.restype = MallInfo2
libc.malloc.restype = ctypes.c_void_p
libc.free.argtypes = [ctypes.c_void_p]
block = libc.malloc(16 << 20)
ctypes.memset(block, 1, 16 << 20)
libc.free(block)
print(libc.mallinfo2().fordblks)
"""


def _has_mallinfo2() -> bool:
    import ctypes

    try:
        return hasattr(ctypes.CDLL("libc.so.6"), "mallinfo2")
    except OSError:
        return False


@pytest.mark.skipif(not _has_mallinfo2(), reason="needs glibc ≥ 2.33 (mallinfo2) to observe the heap")
def test_freed_blocks_stay_in_the_heap_for_reuse_once_tuned():
    held = {mode: int(subprocess.run([sys.executable, "-c", HELD_AFTER_FREE, mode], capture_output=True,
                                     text=True, check=True).stdout) for mode in ("plain", "tuned")}
    assert held["plain"] < 8 << 20, held  # given back to the kernel
    assert held["tuned"] >= 16 << 20, held  # kept for the next allocation


@pytest.mark.skipif(not _has_mallinfo2(), reason="needs glibc (mallopt) to take effect")
def test_reports_success_on_glibc_and_can_be_called_twice():
    assert tune_allocator() is True
    assert tune_allocator() is True


def test_is_a_no_op_that_says_so_off_linux(monkeypatch):
    monkeypatch.setattr(sys, "platform", "darwin")
    assert tune_allocator() is False


@pytest.mark.parametrize("argv, tuned", [(["classes"], True), (["train", "missing.yaml"], False),
                                         (["finetune", "--data", "missing.yaml"], False)])
def test_training_commands_keep_the_default_allocator(monkeypatch, argv, tuned):
    """Kept blocks fragment the heap: training keeps its peak bounded with glibc's default."""
    import mome.runtime
    from mome.cli.main import main

    calls = []
    monkeypatch.setattr(mome.runtime, "tune_allocator", lambda *a, **k: calls.append(a) or True)
    code = main(argv)
    assert (code == 0) is tuned  # the training commands ran (and failed on the missing file)
    assert bool(calls) is tuned
