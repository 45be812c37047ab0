"""Process-level settings for the engine's command-line processes.

* **Allocator** (:func:`tune_allocator`). glibc returns large freed blocks to the kernel straight away
  (``M_MMAP_THRESHOLD``/``M_TRIM_THRESHOLD``); a 3D network on the CPU frees and re-allocates tens of
  MB per layer, so the process spends ~40 % of its time in page faults. Keeping up to 1 GiB of freed
  memory for re-use roughly halves CPU inference time (measured in benchmarks/; see the issue notes).
  The price is fragmentation: blocks kept in the heap are not always the right size for the next
  request, so the peak grows by up to the amount kept. Inference commands take that trade (their
  peak is bounded by the window batch); ``mome train`` and ``mome finetune`` keep glibc's default,
  because a training run's memory must stay bounded (24 cases, tiny model: 1.9 GB instead of 2.6 GB
  peak RSS, for ~10–20 % slower CPU steps; ``benchmarks/training_data.py``).
* **Thread waiting** (:func:`prefer_passive_waiting`). PyTorch's OpenMP threads spin-wait for work
  between operations by default. When the machine has other work (a Slicer session, other jobs), a
  spinning thread takes the core from the thread that has work, and each of the network's thousands
  of operations waits for a descheduled partner: on 2 shared cores mome-mini ran ~2× slower
  (benchmarks/README.md). ``OMP_WAIT_POLICY=PASSIVE`` makes idle threads sleep instead.
* **MONAI's import** (:func:`import_monai_lean`). ``import monai`` imports every MONAI submodule, and
  those import every optional package they know of that happens to be installed (torchvision,
  transformers, matplotlib, scikit-learn, scipy.signal, …): 5-10 s per process on 2 shared cores,
  most of a click's start-up. The segmentation process uses only Swin UNETR and the sliding window,
  so it hides those packages while MONAI loads (MONAI's import then takes ~0.4 s).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import importlib
import importlib.abc
import importlib.machinery
import os
import sys
import threading
from pathlib import Path

_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
KEEP_BYTES = 1 << 30

#: MONAI modules the segmentation path uses (the network and the sliding window).
MONAI_MODULES_FOR_SEGMENTATION = ("monai.networks.nets.swin_unetr", "monai.inferers.utils", "monai.data.utils")
#: Third-party packages MONAI may import while those load: its hard requirements (torch, numpy),
#: torch's own, and the optional ones the segmentation path uses at run time (einops in Swin UNETR,
#: tqdm in the sliding window, packaging for MONAI's version checks, pyyaml). Every other package,
#: scipy included (MONAI uses it only in transforms), looks absent to MONAI.
MONAI_ALLOWED_PACKAGES = frozenset({
    "monai", "torch", "numpy", "einops", "tqdm", "packaging", "yaml", "_yaml",
    "typing_extensions", "sympy", "mpmath", "networkx", "jinja2", "markupsafe", "filelock", "fsspec",
    "triton", "nvidia", "functorch", "torchgen", "setuptools", "pkg_resources", "_distutils_hack",
})


def tune_allocator(keep_bytes: int = KEEP_BYTES) -> bool:
    """Ask glibc to keep freed blocks up to ``keep_bytes`` for re-use; False where that is not glibc."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False  # musl or another libc without mallopt
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    return bool(mallopt(_M_MMAP_THRESHOLD, keep_bytes)) and bool(mallopt(_M_TRIM_THRESHOLD, keep_bytes))


def prefer_passive_waiting() -> bool:
    """Set ``OMP_WAIT_POLICY=PASSIVE`` unless the user chose a policy. OpenMP reads it when torch
    loads its library, so this must run before ``import torch``; False (and nothing changed) after."""
    if "torch" in sys.modules or "OMP_WAIT_POLICY" in os.environ:
        return False
    os.environ["OMP_WAIT_POLICY"] = "PASSIVE"
    return True


class _HideOtherPackages(importlib.abc.MetaPathFinder):
    """Makes modules of installed packages (found in a site-packages folder) outside ``allowed``
    that are not imported yet look absent to the thread that created it, submodules included: a
    package imported earlier (scipy, for ``scipy.ndimage``) must not let MONAI pull in the rest of it
    (``scipy.signal``, ``scipy.stats``). The standard library, every module already imported and
    other threads' imports (``mome segment`` reads its input CT meanwhile) are untouched."""

    def __init__(self, allowed: frozenset[str]):
        self.allowed = allowed
        self.thread = threading.get_ident()

    def find_spec(self, name, path=None, target=None):  # noqa: ARG002 - the finder protocol
        if name.partition(".")[0] in self.allowed or name in sys.modules or threading.get_ident() != self.thread:
            return None  # the normal finders decide
        spec = importlib.machinery.PathFinder.find_spec(name, path)
        origin = (spec.origin or next(iter(spec.submodule_search_locations or []), "")) if spec else ""
        if any(part in ("site-packages", "dist-packages") for part in Path(origin or "").parts):
            raise ModuleNotFoundError(f"{name} is hidden while MONAI loads (mome.runtime.import_monai_lean)",
                                      name=name)
        return None


def import_monai_lean(modules=MONAI_MODULES_FOR_SEGMENTATION, allowed=MONAI_ALLOWED_PACKAGES) -> bool:
    """Import ``modules`` of MONAI with every third-party package outside ``allowed`` hidden, so that
    MONAI's module-level ``optional_import`` probes find them absent instead of importing them.

    For processes that use MONAI only through ``modules`` (``mome segment``): the hidden packages
    stay importable for everything else afterwards, but the MONAI modules loaded here keep seeing
    them as absent. True when MONAI was imported this way; False when it had been imported already
    or when this MONAI needs a hidden package at import time, in which case it is imported the
    normal way.
    """
    if "monai" in sys.modules:
        return False
    finder = _HideOtherPackages(allowed)
    sys.meta_path.insert(0, finder)
    try:
        for name in modules:
            importlib.import_module(name)
        return True
    except ImportError:
        lean = False
    finally:
        sys.meta_path.remove(finder)
    # A MONAI that imports one of the hidden packages unconditionally: start again, normally.
    for name in [n for n in sys.modules if n == "monai" or n.startswith("monai.")]:
        del sys.modules[name]
    for name in modules:
        importlib.import_module(name)
    return lean
