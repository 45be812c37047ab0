"""Locate the files of ``Resources/`` (vocabulary, terminology, model manifest, bundled model, samples).

The folder is shared with the Slicer extension, so it has three homes:

* a source checkout or an editable install: ``Resources/`` next to the ``mome`` package;
* the Slicer extension: the same, inside ``qt-scripted-modules/`` (top-level ``CMakeLists.txt``);
* a wheel (``pip install .``): the package data ``mome/resources/`` (``pyproject.toml`` maps
  ``Resources/`` onto the ``mome.resources`` package).

This module is deliberately *not* called ``mome/resources.py``: a module of that name shadows the
``mome.resources`` package of the wheel, and ``importlib.resources.files("mome.resources")`` then
fails with "not a package" (``Testing/test_packaging.py`` installs the wheel to check it).
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from pathlib import Path

from .home import default_home

_PACKAGE_DIR = Path(__file__).resolve().parent


def resources_dir() -> Path:
    for candidate in (_PACKAGE_DIR / "resources", _PACKAGE_DIR.parent / "Resources"):
        if (candidate / "Vocabulary").is_dir():
            return candidate
    raise FileNotFoundError(
        f"MoME's resource files are missing: neither {_PACKAGE_DIR / 'resources'} (installed package) nor "
        f"{_PACKAGE_DIR.parent / 'Resources'} (source checkout) exists; reinstall MoME (`pip install .`)"
    )


def resource_path(*parts: str) -> Path:
    path = resources_dir().joinpath(*parts)
    if not path.exists():
        raise FileNotFoundError(
            f"MoME resource {'/'.join(parts)!r} is missing from {resources_dir()}; "
            "reinstall MoME (`pip install .`) or restore the Resources/ folder"
        )
    return path


SAMPLES_FILE = "samples.json"
SAMPLE_CT = "ct.nii.gz"  # a remote sample's folder in the cache: the CT,
SAMPLE_MASKS = "masks"  # its reference masks (<class key>.nii.gz),
SAMPLE_MANIFEST = "manifest.json"  # a manifest of the one case, for `mome evaluate`,
SAMPLE_RECORD = "sample.json"  # and where it came from (URLs, commit, checksums).
_SAMPLE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")  # also a folder name in the cache
_SHA256 = re.compile(r"^[0-9a-f]{64}$")


@dataclass(frozen=True)
class RemoteFile:
    name: str
    size: int
    sha256: str


@dataclass(frozen=True)
class Remote:
    """Where a remote sample's raw files come from, and which converter turns them into a CT.

    ``base_url`` may hold ``{commit}``: the commit is recorded once and pins every file, so the
    checksums can never drift from what the URLs serve.
    """

    base_url: str
    commit: str
    format: str  # converter name, see mome/hub/samples.py
    files: tuple[RemoteFile, ...]

    def url(self, name: str) -> str:
        return self.base_url.format(commit=self.commit) + name

    @property
    def size(self) -> int:
        return sum(f.size for f in self.files)


@dataclass(frozen=True)
class Sample:
    """A CT to try MoME on (``Resources/Samples/samples.json``).

    Either *bundled* (the file ships with MoME: ``path`` lies in ``Resources/Samples``) or *remote*
    (only its description ships, because its licence or size keeps it out of the repository:
    ``mome sample NAME --download`` fetches and converts it, with consent, into
    ``<MOME_HOME>/samples/NAME/``, and ``path`` is where its CT will be). Remote samples come
    with reference masks, so a segmentation can be compared with them (``mome evaluate``).
    """

    name: str
    path: Path
    title: str
    description: str
    license: str
    source: str
    sha256: str | None = None  # of a bundled file (a remote one's files carry their own)
    citation: str = ""
    remote: Remote | None = None

    @property
    def bundled(self) -> bool:
        return self.remote is None

    @property
    def available(self) -> bool:
        """Whether the CT is there to use (a remote sample: downloaded and converted)."""
        return self.path.is_file()

    @property
    def folder(self) -> Path:
        return self.path.parent

    def size_text(self) -> str:
        size = self.remote.size if self.remote else (self.path.stat().st_size if self.available else 0)
        return f"{size / 1e6:.1f} MB"

    def download_command(self) -> str:
        return f"mome sample {self.name} --download"

    def masks(self) -> dict[str, Path]:
        """Reference masks by class key (empty for a sample without any, or not downloaded yet)."""
        folder = self.folder / SAMPLE_MASKS
        if self.bundled or not folder.is_dir():
            return {}
        return {p.name[: -len(".nii.gz")]: p for p in sorted(folder.glob("*.nii.gz"))}

    @property
    def manifest(self) -> Path:
        return self.folder / SAMPLE_MANIFEST


def default_samples_file() -> Path:
    """``$MOME_SAMPLES`` if set (a site's own list, e.g. a sample on an internal mirror; tests),
    else the ``Resources/Samples/samples.json`` that ships with MoME. Bundled files are found next
    to the list."""
    override = os.environ.get("MOME_SAMPLES")
    return Path(override).expanduser() if override else resource_path("Samples", SAMPLES_FILE)


def samples() -> list[Sample]:
    """Every sample of the list, bundled and remote, in file order.

    Read on every call, like ``MOME_HOME``, so a remote sample's ``path`` follows the environment.
    A malformed entry raises ``ValueError`` naming the file and the entry.
    """
    listing = default_samples_file()
    try:
        entries = json.loads(listing.read_text(encoding="utf-8"))["samples"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ValueError(f"the sample list {listing} is unreadable ({exc!r}); reinstall MoME") from exc
    found = []
    for index, e in enumerate(entries):
        try:
            found.append(_parse_sample(e, listing.parent, default_home() / "samples"))
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"the sample list {listing}, entry {index + 1}: {exc!r}") from exc
    return found


def _parse_sample(e: dict, folder: Path, cache: Path) -> Sample:
    name = e["name"]
    if not _SAMPLE_NAME.match(name):
        raise ValueError(f"sample name {name!r} must be letters, digits, '_', '.', '-'")
    common = dict(name=name, title=e["title"], description=e["description"], license=e["license"],
                  source=e["source"], citation=e.get("citation", ""))
    if "remote" not in e:
        return Sample(path=folder / e["file"], sha256=e["sha256"], **common)
    r = e["remote"]
    files = tuple(RemoteFile(n, int(f["size"]), f["sha256"]) for n, f in r["files"].items())
    for f in files:  # a download is never made without a checksum to verify it against
        if not (_SHA256.match(f.sha256) and f.size > 0 and "/" not in f.name):
            raise ValueError(f"remote file {f.name!r} needs a plain name, a size > 0 and a lowercase SHA-256")
    remote = Remote(r["base_url"], r["commit"], r["format"], files)
    return Sample(path=cache / name / SAMPLE_CT, remote=remote, **common)


def find_sample(name: str) -> Sample:
    """The sample called ``name``, whether or not its CT is there; a ``KeyError`` names the ones there are."""
    found = {s.name: s for s in samples()}
    if name not in found:
        raise KeyError(f"no sample named {name!r}; samples: {', '.join(found) or 'none'} (`mome sample --list`)")
    return found[name]


def sample(name: str) -> Sample:
    """The sample called ``name``, ready to use: a ``FileNotFoundError`` says how to get a missing one."""
    found = find_sample(name)
    if not found.available:
        if found.remote:
            raise FileNotFoundError(
                f"sample {name} is not downloaded yet: `{found.download_command()}` fetches it "
                f"({found.size_text()} from {found.remote.url('')}) into {found.folder}"
            )
        raise FileNotFoundError(f"the sample file {found.path} is missing; reinstall MoME")
    return found
