"""Downloading a registry model: only with consent, always verified, then installed in the store.

Nothing here runs implicitly: resolving a model name never downloads (it says which command
would), so MoME sends nothing over the network unless the user asked for this download
(ExtensionsIndex tier-1 rule). The file is streamed to a temporary file inside the store, its
size and SHA-256 are checked against the registry, and only then is it installed (which verifies
the package's own manifest as well). Any failure deletes the partial file.

``fetch_verified`` and ``agreed`` are shared with the remote samples (``samples.py``): one
downloader, one meaning of consent.
"""

from __future__ import annotations

import hashlib
import urllib.error
import urllib.request
import uuid
import zipfile
from collections.abc import Callable
from pathlib import Path

from .. import __version__
from ..package import PackageFormatError, read_package_json
from ..progress import NullProgress, Progress
from .errors import ChecksumMismatchError, ConsentRequiredError, DownloadError, ModelNotFoundError, SizeMismatchError
from .registry import RegistryEntry
from .store import InstalledModel, ModelStore

Consent = bool | Callable[[str], bool]
CHUNK = 1 << 20
DOWNLOADS_DIR = ".downloads"


def download_model(entry: RegistryEntry, store: ModelStore | None = None, consent: Consent = False,
                   progress: Progress | None = None, activate: bool = False,
                   timeout: float = 60.0) -> InstalledModel:
    """Install ``entry`` into ``store``, downloading it if it is not installed yet.

    ``consent`` is True (the user already agreed, e.g. ``--yes``), False, or a function that asks
    the user: it gets the question and returns the answer. Without consent
    ``ConsentRequiredError`` is raised and no connection is made.
    """
    store = store or ModelStore()
    try:
        installed = store.get(entry.name, entry.version)
        return store.activate(entry.name, entry.version) if activate else installed
    except ModelNotFoundError:
        pass  # not installed yet: download it
    if not entry.downloadable:
        raise ModelNotFoundError(
            f"model {entry.spec} has no download URL in the registry"
            + (" (it is bundled with MoME; reinstall MoME if it is missing)" if entry.bundled else "")
        )
    question = f"Download model {entry.spec} ({entry.size_text()}) from {entry.url}?"
    if not agreed(consent, question):
        raise ConsentRequiredError(
            f"downloading {entry.spec} ({entry.size_text()} from {entry.url}) needs your consent; nothing was "
            f"downloaded. Run `mome models download {entry.spec} --yes`, or download the .zip yourself and "
            "run `mome models import FILE`"
        )
    progress = progress or NullProgress()
    folder = store.root / DOWNLOADS_DIR
    folder.mkdir(parents=True, exist_ok=True)
    part = folder / f"{entry.name}-{entry.version}.{uuid.uuid4().hex[:8]}.zip.part"
    try:
        fetch(entry, part, progress, timeout)
        meta = _package_json(part, entry)
        if (meta.get("name"), meta.get("version")) != (entry.name, entry.version):
            raise DownloadError(
                f"{entry.url} holds model {meta.get('name')}@{meta.get('version')}, not {entry.spec}; "
                "the registry entry is wrong, please report it"
            )
        progress.update("download", 1.0, f"installing {entry.spec}")
        return store.install(part, activate=activate)
    finally:
        part.unlink(missing_ok=True)


def fetch(entry: RegistryEntry, dest: Path, progress: Progress, timeout: float = 60.0) -> Path:
    """Stream a registry model's .zip to ``dest``, verified against the registry (``fetch_verified``)."""
    assert entry.url and entry.sha256 and entry.size, "fetch needs a downloadable entry"
    return fetch_verified(entry.url, dest, entry.size, entry.sha256, entry.spec, progress, timeout,
                          otherwise="download the .zip another way and run `mome models import FILE`")


def fetch_verified(url: str, dest: Path, size: int, sha256: str, what: str, progress: Progress,
                   timeout: float = 60.0, otherwise: str = "download it another way") -> Path:
    """Stream ``url`` to ``dest`` and check it has ``size`` bytes and SHA-256 ``sha256``.

    The one downloader of MoME (models and remote samples alike), so that every download is
    streamed, bounded and verified the same way. Reading stops as soon as more than the expected
    size arrived, so a wrong URL cannot fill the disk. On any failure ``dest`` is deleted before
    the error is raised. ``what`` names the file in messages and progress; ``otherwise`` is the
    alternative offered when the network fails. Call it only after the user agreed (``agreed``).
    """
    digest = hashlib.sha256()
    received = 0
    request = urllib.request.Request(url, headers={"User-Agent": f"mome/{__version__}"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response, open(dest, "wb") as out:
            while received <= size and (block := response.read(CHUNK)):
                out.write(block)
                digest.update(block)
                received += len(block)
                progress.update("download", min(received / size, 1.0),
                                f"{what}: {received / 1e6:.1f} of {size / 1e6:.1f} MB")
    except (urllib.error.URLError, TimeoutError, ConnectionError) as exc:
        dest.unlink(missing_ok=True)
        reason = exc if isinstance(exc, urllib.error.HTTPError) else getattr(exc, "reason", exc)
        raise DownloadError(
            f"could not download {what} from {url}: {reason}. Check the network (or proxy: HTTPS_PROXY), "
            f"or {otherwise}"
        ) from exc
    except BaseException:
        dest.unlink(missing_ok=True)
        raise
    if received != size:
        dest.unlink(missing_ok=True)
        got = f"more than {size}" if received > size else str(received)
        raise SizeMismatchError(
            f"download of {what} from {url} has the wrong size (expected {size} bytes, got {got}); the file "
            "was deleted. Try again; if it persists, the file on the server differs from what MoME expects",
            size, received,
        )
    actual = digest.hexdigest()
    if actual != sha256:
        dest.unlink(missing_ok=True)
        raise ChecksumMismatchError(
            f"download of {what} from {url} does not match its SHA-256 checksum (expected {sha256}, got "
            f"{actual}); the file was deleted and nothing was installed. Try again; if it persists, the "
            "file was changed on the server or in transit: do not use it, report it",
            sha256, actual,
        )
    return dest


def agreed(consent: Consent, question: str) -> bool:
    """Whether the user agreed to a download: ``consent`` is the answer already given (``--yes``:
    True; no terminal to ask on: False) or a function that asks ``question`` and returns the answer."""
    return bool(consent(question)) if callable(consent) else bool(consent)


def _package_json(path: Path, entry: RegistryEntry) -> dict:
    """model.json of the downloaded zip, to check it is the model the registry promised."""
    try:
        return read_package_json(path)
    except (zipfile.BadZipFile, StopIteration, KeyError, ValueError) as exc:
        raise PackageFormatError(
            f"{entry.url} is not a MoME model package .zip ({exc or type(exc).__name__}); the registry entry "
            f"for {entry.spec} is wrong, please report it"
        ) from exc
