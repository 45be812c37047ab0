"""Remote samples: downloaded only with consent, verified file by file, converted, then installed at once.

A remote sample (``Resources/Samples/samples.json`` entry with ``remote``) is a CT whose licence or
size keeps it out of the repository, e.g. an OpenKBP head-and-neck patient. Its raw files are
fetched by the hub's one downloader (``fetch_verified``: size and SHA-256 of every file, at a
pinned commit), converted by the engine's importer for its ``format`` and written to
``<MOME_HOME>/samples/NAME/``: ``ct.nii.gz``, ``masks/<class key>.nii.gz``, ``manifest.json`` (the
one case, for ``mome evaluate``) and ``sample.json`` (where it came from).

Everything is built in a hidden temporary folder next to it and renamed into place only when
complete, so an interrupted or failed download leaves nothing a later ``mome sample NAME`` could
mistake for the sample. The raw files are deleted once converted.
"""

from __future__ import annotations

import json
import os
import shutil
import uuid
from collections.abc import Callable
from pathlib import Path

from .. import __version__
from ..progress import NullProgress, Progress
from ..resource_files import SAMPLE_CT, SAMPLE_MANIFEST, SAMPLE_MASKS, SAMPLE_RECORD, Sample
from .download import Consent, agreed, fetch_verified
from .errors import ConsentRequiredError

RAW_DIR = "raw"


def _convert_openkbp(raw: Path, out: Path) -> dict[str, Path]:
    from ..data.openkbp import cropped_images, read_folder, write_images

    images, _ = cropped_images(read_folder(raw))
    return write_images(images, out / SAMPLE_CT, out / SAMPLE_MASKS)


# format of samples.json → converter: (folder of downloaded files, output folder) → written paths by key
CONVERTERS: dict[str, Callable[[Path, Path], dict[str, Path]]] = {"openkbp": _convert_openkbp}


def download_sample(sample: Sample, consent: Consent = False, progress: Progress | None = None,
                    timeout: float = 60.0) -> Sample:
    """Download, verify and convert the remote ``sample`` unless it is already there; return it.

    ``consent`` as for models (``download.agreed``): without it ``ConsentRequiredError`` is raised
    and no connection is made. A file with the wrong size or checksum raises (naming the file and
    the expected checksum) and leaves nothing behind.
    """
    if sample.remote is None:
        raise ValueError(f"sample {sample.name} ships with MoME; there is nothing to download")
    if sample.available:
        return sample
    remote = sample.remote
    if remote.format not in CONVERTERS:
        raise ValueError(f"sample {sample.name} has format {remote.format!r}, which this MoME cannot convert "
                         f"(known: {', '.join(CONVERTERS)}); update MoME")
    where = remote.url("")
    question = f"Download sample {sample.name} ({sample.size_text()}, licence {sample.license}) from {where}?"
    if not agreed(consent, question):
        raise ConsentRequiredError(
            f"downloading sample {sample.name} ({sample.size_text()} from {where}) needs your consent; nothing "
            f"was downloaded. Run `{sample.download_command()} --yes`"
        )
    progress = progress or NullProgress()
    sample.folder.parent.mkdir(parents=True, exist_ok=True)
    work = sample.folder.parent / f".{sample.name}.{uuid.uuid4().hex[:8]}.part"
    try:
        (work / RAW_DIR).mkdir(parents=True)
        for f in remote.files:
            fetch_verified(remote.url(f.name), work / RAW_DIR / f.name, f.size, f.sha256,
                           f"{f.name} of sample {sample.name}", progress, timeout,
                           otherwise=f"try `{sample.download_command()}` again later")
        progress.update("convert", 0.0, f"converting sample {sample.name}")
        written = CONVERTERS[remote.format](work / RAW_DIR, work)
        shutil.rmtree(work / RAW_DIR)
        _write_record(sample, work, written)
        _install(work, sample.folder)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return sample


def _write_record(sample: Sample, work: Path, written: dict[str, Path]) -> None:
    """``manifest.json`` (the case, masks by class key, relative paths) and ``sample.json``."""
    masks = {key: path.relative_to(work).as_posix() for key, path in written.items() if key != "ct"}
    case = {"id": sample.name, "image": SAMPLE_CT, "masks": masks, "split": "test"}
    manifest = {"name": sample.name, "datasets": [{"name": sample.name, "cases": [case]}]}
    (work / SAMPLE_MANIFEST).write_text(json.dumps(manifest, indent=1) + "\n")
    assert sample.remote is not None
    record = {
        "name": sample.name, "title": sample.title, "license": sample.license, "source": sample.source,
        "citation": sample.citation, "commit": sample.remote.commit, "format": sample.remote.format,
        "files": {f.name: {"url": sample.remote.url(f.name), "size": f.size, "sha256": f.sha256}
                  for f in sample.remote.files},
        "converted_by": f"mome {__version__}",
    }
    (work / SAMPLE_RECORD).write_text(json.dumps(record, indent=1) + "\n")


def _install(work: Path, final: Path) -> None:
    """Rename the finished folder into place. A leftover without a CT (a user deleted it) is
    replaced; if another process installed the sample meanwhile, its copy is kept."""
    if final.exists() and not (final / SAMPLE_CT).is_file():
        shutil.rmtree(final)
    try:
        os.rename(work, final)
    except OSError:
        if not (final / SAMPLE_CT).is_file():
            raise
