"""Write-then-rename so that a cancelled or failed run never leaves a partial output file.

Callers stage outputs with :func:`atomic_write` (``mome segment`` stages all of its outputs at once):
the writer fills a temporary file in the destination folder (same file system, so the final rename
is atomic) and only a complete file is moved onto the requested name.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

# Suffixes made of two parts that writers must see whole: SimpleITK picks its ImageIO from the
# file name, so ".gz" alone would not select the NIfTI writer, and Slicer recognises ".seg.nrrd".
_COMPOUND_SUFFIXES = (".nii.gz", ".seg.nrrd", ".seg.nhdr", ".tar.gz")


def full_suffix(path: str | os.PathLike[str]) -> str:
    """The file-type suffix of ``path`` including known double suffixes (``.nii.gz``, ``.seg.nrrd``)."""
    name = Path(path).name
    lowered = name.lower()
    for compound in _COMPOUND_SUFFIXES:
        if lowered.endswith(compound) and len(name) > len(compound):
            return name[-len(compound) :]
    return Path(name).suffix


@contextmanager
def atomic_write(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; move it onto ``path`` only if the block succeeds.

    The temporary name keeps the full suffix (``.out.tmp1a2b3c.seg.nrrd`` for ``out.seg.nrrd``) so
    that extension-driven writers (SimpleITK, PIL) choose the right format. It starts with a dot so
    file browsers hide it while it is being written. On any exception, including
    ``KeyboardInterrupt``, the temporary file is removed and the exception propagates; an existing
    file at ``path`` is then left untouched.
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    suffix = full_suffix(target)
    stem = target.name[: len(target.name) - len(suffix)] if suffix else target.name
    # The file is not pre-created (unlike tempfile.mkstemp) so the writer creates it with the
    # user's normal permissions instead of mkstemp's owner-only 0600.
    tmp = target.with_name(f".{stem}.tmp{uuid.uuid4().hex[:8]}{suffix}")
    try:
        yield tmp
        if not tmp.exists():
            raise FileNotFoundError(f"the writer did not create {tmp} for {target}")
        os.replace(tmp, target)
    except BaseException:
        # BaseException on purpose: Ctrl+C (KeyboardInterrupt) and SystemExit must clean up too.
        try:
            tmp.unlink(missing_ok=True)
        except OSError:
            pass  # nothing more we can do; never hide the original error
        raise
