"""Preparing a manifest for a run: every case onto the model grid, into a prepared folder, one at a time.

Cases are prepared and written one after the other — or by ``workers`` processes, each holding one
case — so memory holds at most ``workers`` cases however many the manifest lists. The folder appears
only when complete (``PreparedWriter``). A run that trains straight from a manifest prepares into
``<output>/prepared`` and reuses that folder while the manifest, its files and the preprocessing are
unchanged (``preparation_key``), so ``--resume`` and repeated runs skip the work.
"""

from __future__ import annotations

import hashlib
import json
import logging
import multiprocessing
import shutil
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from .data import prepare_case
from .manifest import Case, Manifest
from .prepared import INDEX, PREPARED_VERSION, CaseEntry, PreparedWriter, write_case
from .workers import ignore_stop_signals

log = logging.getLogger(__name__)


def preparation_key(manifest: Manifest, classes: list[str], spacing, hu_window, parents: dict | None,
                    text_encoder: str) -> str:
    """What a prepared folder was made from: the cases, their files (size and modification time),
    the classes and the preprocessing. A different key means the folder is stale. (Dataset weights
    are not part of it: a run from a manifest takes them from the manifest.)"""
    digest = hashlib.sha256(json.dumps({
        "format": PREPARED_VERSION, "classes": list(classes), "spacing": [float(s) for s in spacing],
        "hu_window": [float(h) for h in hu_window], "parents": parents or {}, "text_encoder": text_encoder,
    }, sort_keys=True).encode())
    for c in manifest.cases():
        digest.update(json.dumps([c.dataset, c.id, c.split, c.roi, {str(k): v for k, v in c.label_map.items()}],
                                 sort_keys=True).encode())
        for f in (c.image, c.labels, c.seg_nrrd, *c.masks.values()):
            if f is not None:
                stat = f.stat() if f.exists() else None
                digest.update(f"{f}:{stat.st_size if stat else -1}:{stat.st_mtime_ns if stat else -1}".encode())
    return digest.hexdigest()


def _prepare_one(folder: Path, n: int, case: Case, split: str, classes, spacing, hu_window, parents) -> CaseEntry:
    # A top-level function: worker processes receive it by name.
    return write_case(folder, n, prepare_case(case, classes, spacing, hu_window, parents=parents), split)


def prepare_folder(manifest: Manifest, classes: list[str], embeddings, text_encoder: str, spacing, hu_window,
                   folder: str | Path, parents: dict[str, list[str]] | None = None, with_val: bool = True,
                   on_case: Callable[[Case], None] | None = None, workers: int = 1, key: str | None = None) -> Path:
    """Prepare every train (and val) case of ``manifest`` for a run over ``classes`` into ``folder``."""
    jobs = [(case, split) for split in ("train", "val") if split == "train" or with_val
            for case in manifest.cases(split)]
    writer = PreparedWriter(
        folder, classes=classes, embeddings=embeddings, text_encoder=text_encoder, spacing=spacing,
        hu_window=hu_window, dataset_weights=manifest.dataset_weights, key=key,
        provenance={
            "manifest": str(manifest.source) if manifest.source else None,
            "sha256": manifest.fingerprint(),
            "train_cases": [f"{c.dataset}/{c.id}" for c in manifest.cases("train")],
            "val_cases": [f"{c.dataset}/{c.id}" for c in manifest.cases("val")],
            "class_case_counts": manifest.class_case_counts("train"),
        },
    )
    args = [(writer.tmp, n, case, split, classes, spacing, hu_window, parents) for n, (case, split) in enumerate(jobs)]
    try:
        if workers <= 1:
            for a in args:
                writer.add(_prepare_one(*a))
                if on_case is not None:
                    on_case(a[2])
        else:
            # "spawn": SimpleITK's thread pool does not survive a fork. Workers write their case's
            # files themselves and send back only the small index entry.
            with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"),
                                     initializer=ignore_stop_signals) as pool:
                for a, entry in zip(args, pool.map(_prepare_one, *zip(*args))):
                    writer.add(entry)
                    if on_case is not None:
                        on_case(a[2])
        return writer.finish()
    except BaseException:
        writer.abort()
        raise


def folder_key(folder: Path) -> str | None:
    """The key a prepared folder was made with (None: no folder, or an older format)."""
    try:
        index = json.loads((folder / INDEX).read_text())
    except (OSError, ValueError):
        return None
    return index.get("key") if index.get("format_version") == PREPARED_VERSION else None


def ensure_prepared(folder: Path, key: str, prepare: Callable[[Path], Path], is_main: bool,
                    poll_s: float = 5.0) -> Path:
    """``folder`` prepared with ``key``: reused if it is, (re)made by the main process otherwise.

    Under DDP the other ranks wait for the folder (it must lie on storage they share) by watching the
    file system rather than in a collective, which would time out during a long preparation.
    """
    if folder_key(folder) == key:
        log.info("reusing the prepared data in %s", folder)
        return folder
    if is_main:
        if folder.exists():
            log.info("the prepared data in %s is stale (the manifest, its files or the settings changed); "
                     "preparing again", folder)
            shutil.rmtree(folder)
        return prepare(folder)
    waited = 0.0
    while folder_key(folder) != key:
        if waited % 60 < poll_s:
            log.info("waiting for rank 0 to prepare the data in %s (it must be on storage every node shares; "
                     "or prepare once with --prepare-only and train with --prepared)", folder)
        time.sleep(poll_s)
        waited += poll_s
    return folder
