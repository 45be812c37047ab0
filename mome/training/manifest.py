"""Dataset manifests: datasets of (image, labels) cases, each with a map to vocabulary classes.

A manifest is JSON or YAML::

    name: my-data
    datasets:
      - name: abdomen
        weight: 2.0                   # sampled twice as often as a weight-1 dataset (default 1)
        label_map: {1: spleen, 2: kidney_right, 5: liver, 9: null}   # value -> class key (null: other)
        label_names: {1: Spleen, 2: Kidney (R), 5: Liver, 9: Lungs}  # optional: the source's own names
        cases:
          - {id: case01, image: img/01.nii.gz, labels: lab/01.nii.gz, split: train}
          - {id: case01-top, image: img/01.nii.gz, labels: lab/01.nii.gz, roi: {z: [80, 112]}, split: val}
      - name: vessels
        unmapped_masks: [lung_vessels]  # optional: source masks that map to no class (not imported)
        cases:                                              # one binary mask per class
          - {id: cta, image: cta.nii.gz, masks: {aorta: aorta.nii.gz}, split: val}
      - name: slicer
        seg_nrrd_folder: segs/        # *.seg.nrrd next to an image of the same stem (*.nrrd/.nii.gz)
        cases:                        # or one Slicer segmentation per case (segments mapped by
          - {id: ct7, image: ct7.nrrd, seg_nrrd: ct7.seg.nrrd, split: val}   # terminology, then name)

**Combining manifests.** An entry ``{include: other.yaml, weight: 2.0}`` in ``datasets`` adds every
dataset of another manifest (``weight``, when given, replaces theirs). That is how several datasets
are trained together: ``mome data import`` writes one manifest per dataset, which can be re-imported
on its own, and one small manifest lists them with their weights (``recipes/paper/manifest.yaml``)::

    name: paper
    datasets:
      - {include: data/btcv.yaml, weight: 1.0}
      - {include: data/abdomenct-1k.yaml, weight: 2.0}

A class a dataset does not annotate is *unknown* for its cases, never background. A label value
mapped to ``null`` is a structure outside the vocabulary of this run (background for the mapped
classes). ``roi`` restricts a case to an index range per axis (x, y, z; start inclusive, end
exclusive), e.g. to hold out a slab of a scan. Relative paths are resolved against the manifest's
folder.

**Sampling.** Each training step picks a dataset with probability proportional to its ``weight``
(a positive number; every dataset 1 by default, i.e. datasets uniformly, however many cases each
has), then one of that dataset's training cases uniformly, then class-balanced crops in it.

``label_names`` and ``unmapped_masks`` are what ``mome data import`` writes so that nothing it could
not map is silently lost: ``mome data check`` lists every named label value mapped to ``null`` and
every unmapped mask.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

SPLITS = ("train", "val", "test")


class ManifestError(ValueError):
    """Every problem found in a manifest, reported at once."""

    def __init__(self, problems: list[str], what: str = "training data", outcome: str = "nothing was trained"):
        self.problems = problems
        lines = "\n".join(f"  - {p}" for p in problems)
        super().__init__(f"the {what} has {len(problems)} problem(s); {outcome}:\n{lines}")


@dataclass
class Case:
    id: str
    dataset: str
    image: Path
    split: str = "train"
    labels: Path | None = None  # integer label map, read through the dataset's label_map
    label_map: dict[int, str | None] = field(default_factory=dict)
    roi: dict[str, tuple[int, int]] = field(default_factory=dict)  # axis name -> (start, end) indices
    masks: dict[str, Path] = field(default_factory=dict)  # class key -> binary mask file
    seg_nrrd: Path | None = None  # Slicer segmentation; segments mapped by terminology, then name
    seg_classes: list[str] = field(default_factory=list)  # classes of seg_nrrd's segments (read on load)

    @property
    def classes(self) -> list[str]:
        """The classes this case annotates (the others are unknown, not background)."""
        keys = list(self.masks) if self.masks else [v for v in self.label_map.values() if v]
        return list(dict.fromkeys([*keys, *self.seg_classes]))


@dataclass
class Dataset:
    name: str
    cases: list[Case]
    weight: float = 1.0  # relative probability of sampling this dataset at a training step
    label_map: dict[int, str | None] = field(default_factory=dict)  # label value -> class key (or None)
    label_names: dict[int, str] = field(default_factory=dict)  # label value -> the source's name
    unmapped_masks: list[str] = field(default_factory=list)  # source masks mapped to no class

    def unmapped_labels(self) -> list[str]:
        """Source labels that reach no class: named values mapped to null, and unmapped masks."""
        named = [f"{value} ({name})" for value, name in sorted(self.label_names.items())
                 if value != 0 and self.label_map.get(value) is None]
        return named + list(self.unmapped_masks)


@dataclass
class Manifest:
    name: str
    datasets: list[Dataset]
    source: Path | None = None

    def cases(self, split: str | None = None) -> list[Case]:
        return [c for d in self.datasets for c in d.cases if split is None or c.split == split]

    @property
    def dataset_weights(self) -> dict[str, float]:
        return {d.name: d.weight for d in self.datasets}

    @property
    def classes(self) -> list[str]:
        return list(dict.fromkeys(k for c in self.cases() for k in c.classes))

    def class_case_counts(self, split: str | None = None) -> dict[str, int]:
        counts: dict[str, int] = {}
        for case in self.cases(split):
            for key in case.classes:
                counts[key] = counts.get(key, 0) + 1
        return counts

    def fingerprint(self) -> str:
        """SHA-256 over the case list and file sizes: recorded in a model's provenance."""
        digest = hashlib.sha256()
        for c in self.cases():
            files = [c.image, c.labels, c.seg_nrrd, *c.masks.values()]
            for f in files:
                if f is not None:
                    size = f.stat().st_size if f.exists() else -1
                    digest.update(f"{c.dataset}/{c.id}/{c.split}/{f.name}/{size}".encode())
        return digest.hexdigest()


def load_manifest(path: str | Path) -> Manifest:
    path = Path(path)
    if not path.is_file():
        raise ManifestError([f"manifest {path} does not exist"])
    try:
        data = yaml.safe_load(path.read_text()) if path.suffix in (".yaml", ".yml") else json.loads(path.read_text())
    except (json.JSONDecodeError, yaml.YAMLError) as exc:
        raise ManifestError([f"manifest {path} is not valid {path.suffix[1:].upper()}: {exc}"]) from exc
    return manifest_from_dict(data, path.parent, source=path)


def manifest_from_dict(data: dict[str, Any], root: Path, source: Path | None = None,
                       _including: tuple[Path, ...] = ()) -> Manifest:
    problems: list[str] = []
    datasets = []
    if not isinstance(data, dict) or not data.get("datasets"):
        raise ManifestError(["the manifest needs a non-empty 'datasets' list"])
    for i, d in enumerate(data["datasets"]):
        if isinstance(d, dict) and "include" in d:
            datasets += _included(d, root, problems, (*_including, *([source.resolve()] if source else [])))
            continue
        name = d.get("name") or f"dataset{i + 1}"
        try:
            label_map = {int(k): (str(v) if v else None) for k, v in (d.get("label_map") or {}).items()}
        except (TypeError, ValueError):
            problems.append(f"{name}: label_map keys must be integer label values")
            label_map = {}
        weight = _weight(d.get("weight", 1.0), name, problems)
        try:
            label_names = {int(k): str(v) for k, v in (d.get("label_names") or {}).items()}
        except (TypeError, ValueError):
            problems.append(f"{name}: label_names keys must be integer label values")
            label_names = {}
        cases = []
        for j, c in enumerate(d.get("cases") or []):
            cid = str(c.get("id") or f"{name}-{j + 1}")
            if "image" not in c:
                problems.append(f"{name}/{cid}: no 'image'")
                continue
            split = c.get("split", "train")
            if split not in SPLITS:
                problems.append(f"{name}/{cid}: split {split!r} is not one of {SPLITS}")
            case = Case(
                id=cid,
                dataset=name,
                image=_resolve(root, c["image"]),
                split=split,
                labels=_resolve(root, c["labels"]) if c.get("labels") else None,
                label_map=label_map,
                masks={k: _resolve(root, v) for k, v in (c.get("masks") or {}).items()},
                roi=_roi(c.get("roi"), f"{name}/{cid}", problems),
                seg_nrrd=_resolve(root, c["seg_nrrd"]) if c.get("seg_nrrd") else None,
            )
            if case.seg_nrrd is not None:
                case.seg_classes = _seg_nrrd_classes(case.seg_nrrd, f"{name}/{cid}", problems)
            if case.labels is None and not case.masks and case.seg_nrrd is None:
                problems.append(f"{name}/{cid}: give 'labels' (with the dataset's label_map), 'masks' or 'seg_nrrd'")
            if case.labels is not None and not label_map:
                problems.append(f"{name}/{cid}: has 'labels' but dataset {name} has no label_map")
            cases.append(case)
        if d.get("seg_nrrd_folder"):
            cases += _cases_from_seg_nrrd_folder(name, _resolve(root, d["seg_nrrd_folder"]), problems)
        if not cases:
            problems.append(f"dataset {name} has no cases")
        datasets.append(Dataset(name, cases, weight, label_map, label_names,
                                [str(m) for m in d.get("unmapped_masks") or []]))
    names = [d.name for d in datasets]
    for dup in sorted({n for n in names if names.count(n) > 1}):
        problems.append(f"dataset name {dup!r} is used more than once; datasets are sampled by name, so give each its own")
    if problems:
        raise ManifestError(problems)
    return Manifest(str(data.get("name", "dataset")), datasets, source)


def _included(entry: dict[str, Any], root: Path, problems: list[str], including: tuple[Path, ...]) -> list[Dataset]:
    """The datasets of an ``{include: FILE, weight: W}`` entry; what is wrong with it goes to ``problems``."""
    path = _resolve(root, str(entry["include"]))
    extra = sorted(set(entry) - {"include", "weight"})
    if extra:
        problems.append(f"include {entry['include']}: unknown keys {extra}; an include takes 'include' and 'weight'")
    if path.resolve() in including:
        problems.append(f"include {entry['include']}: {path} includes itself (through {len(including)} file(s))")
        return []
    if not path.is_file():
        problems.append(f"include {entry['include']}: {path} does not exist (write it with `mome data import`)")
        return []
    try:
        text = path.read_text()
        sub = yaml.safe_load(text) if path.suffix in (".yaml", ".yml") else json.loads(text)
        datasets = manifest_from_dict(sub, path.parent, source=path, _including=including).datasets
    except (json.JSONDecodeError, yaml.YAMLError) as exc:
        problems.append(f"include {entry['include']}: not valid {path.suffix[1:].upper()}: {exc}")
        return []
    except ManifestError as exc:
        problems += [f"{path.name}: {p}" for p in exc.problems]
        return []
    if "weight" in entry:
        weight = _weight(entry["weight"], f"include {entry['include']}", problems)
        for d in datasets:
            d.weight = weight
    return datasets


def _weight(value, name: str, problems: list[str]) -> float:
    try:
        weight = float(value)
    except (TypeError, ValueError):
        weight = float("nan")
    if not (math.isfinite(weight) and weight > 0):
        problems.append(f"{name}: weight must be a positive number (relative sampling probability), got {value!r}; "
                        "to leave a dataset out of training, give its cases split: val or test")
        return 1.0
    return weight


def _roi(value, where: str, problems: list[str]) -> dict[str, tuple[int, int]]:
    if not value:
        return {}
    roi = {}
    for axis, rng in dict(value).items():
        if axis not in ("x", "y", "z") or len(rng) != 2 or int(rng[0]) >= int(rng[1]):
            problems.append(f"{where}: roi must map x/y/z to [start, end) with start < end, got {axis}: {rng}")
            continue
        roi[axis] = (int(rng[0]), int(rng[1]))
    return roi


def _resolve(root: Path, value: str) -> Path:
    p = Path(value).expanduser()
    return p if p.is_absolute() else (root / p)


def _cases_from_seg_nrrd_folder(name: str, folder: Path, problems: list[str]) -> list[Case]:
    if not folder.is_dir():
        problems.append(f"{name}: seg_nrrd_folder {folder} does not exist")
        return []
    cases = []
    for seg in sorted(folder.glob("*.seg.nrrd")):
        stem = seg.name[: -len(".seg.nrrd")]
        images = [p for ext in (".nrrd", ".nii.gz", ".nii", ".mha") if (p := folder / f"{stem}{ext}").is_file()]
        if not images:
            problems.append(f"{name}/{stem}: no image {stem}.nrrd / .nii.gz next to {seg.name}")
            continue
        cases.append(Case(id=stem, dataset=name, image=images[0], seg_nrrd=seg,
                          seg_classes=_seg_nrrd_classes(seg, f"{name}/{stem}", problems)))
    return cases


def _seg_nrrd_classes(path: Path, where: str, problems: list[str]) -> list[str]:
    """Vocabulary classes of a .seg.nrrd's segments, from its header only (the voxels are read later)."""
    from ..io.seg_nrrd import read_seg_nrrd_segments
    from ..vocabulary import load_vocabulary
    from .segment_mapping import segment_class_key

    if not path.is_file():
        return []  # reported by validate_manifest with the other missing files
    try:
        segments = read_seg_nrrd_segments(path)
    except ValueError as exc:
        problems.append(f"{where}: {exc}")
        return []
    vocabulary = load_vocabulary()
    keys = [segment_class_key(segment, vocabulary) for segment in segments]
    return list(dict.fromkeys(k for k in keys if k is not None))
