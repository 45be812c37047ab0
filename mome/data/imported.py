"""What an importer returns (one manifest dataset), the steps importers share, and writing manifests."""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from ..training.manifest import load_manifest
from ..vocabulary import Vocabulary, normalize_name
from .names import MappingError, resolve_names
from .presets import DatasetPreset


@dataclass
class ImportedDataset:
    name: str
    cases: list[dict[str, Any]]  # manifest case entries, paths absolute until written
    label_map: dict[int, str | None] = field(default_factory=dict)  # label-map datasets
    label_names: dict[int, str] = field(default_factory=dict)  # the source's name of each value
    unmapped_masks: list[str] = field(default_factory=list)  # mask datasets: masks mapped to no class
    notes: list[str] = field(default_factory=list)  # what was skipped, and why
    source: str = ""  # "FORMAT FOLDER", for the manifest's comment

    @property
    def unmapped(self) -> list[str]:
        named = [f"{v} ({n})" for v, n in sorted(self.label_names.items()) if v and self.label_map.get(v) is None]
        return named + self.unmapped_masks

    def entry(self, base: Path) -> dict[str, Any]:
        """The manifest's dataset entry, paths relative to ``base`` (the manifest's folder) where possible."""
        out: dict[str, Any] = {"name": self.name}
        if self.label_map:
            out["label_map"] = {int(v): k for v, k in sorted(self.label_map.items())}
            out["label_names"] = {int(v): n for v, n in sorted(self.label_names.items())}
        if self.unmapped_masks:
            out["unmapped_masks"] = list(self.unmapped_masks)
        cases = []
        for case in self.cases:
            c = dict(case)
            for key in ("image", "labels"):
                if key in c:
                    c[key] = _relative(c[key], base)
            if "masks" in c:
                c["masks"] = {k: _relative(p, base) for k, p in c["masks"].items()}
            cases.append(c)
        out["cases"] = cases
        return out


def label_map_from_names(names: dict[int, str], vocabulary: Vocabulary, context: str = "",
                         overrides: dict[str, str | None] | None = None) -> dict[int, str | None]:
    """Label value → vocabulary key (None where the name maps to nothing), from the source's names."""
    _check_overrides(names.values(), overrides)
    keys = resolve_names(list(dict.fromkeys(names.values())), vocabulary, context, overrides)
    return {v: keys[n] for v, n in names.items() if v != 0}


def preset_label_map(preset: DatasetPreset, vocabulary: Vocabulary,
                     overrides: dict[str, str | None] | None = None) -> tuple[dict[int, str], dict[int, str | None]]:
    """The preset's names and keys, with ``overrides`` (by the dataset's label name) applied on top."""
    names = {v: n for v, (n, _) in preset.labels.items()}
    label_map = {v: k for v, (_, k) in preset.labels.items()}
    if overrides:
        _check_overrides(names.values(), overrides)
        resolved = resolve_names(list(overrides), vocabulary, overrides=overrides)  # checks the keys
        by_name = {normalize_name(n): k for n, k in resolved.items()}
        label_map.update({v: by_name[normalize_name(n)] for v, n in names.items() if normalize_name(n) in by_name})
    return names, label_map


def _check_overrides(names, overrides: dict[str, str | None] | None) -> None:
    known = {normalize_name(n) for n in names}
    unknown = [n for n in overrides or {} if normalize_name(n) not in known]
    if unknown:
        raise MappingError(f"--map names {unknown}, which this dataset does not have; its labels are: "
                           f"{', '.join(sorted(set(names)))}")


def assign_splits(case_ids: list[str], val_fraction: float) -> dict[str, str]:
    """``val`` for about ``val_fraction`` of the cases, chosen by a hash of the id: the same case stays in
    the same split when the dataset grows or is imported again. At least one when the fraction is > 0."""
    if not case_ids or val_fraction <= 0:
        return {c: "train" for c in case_ids}
    ranked = sorted(case_ids, key=lambda c: hashlib.sha256(c.encode()).hexdigest())
    n_val = min(len(case_ids) - 1, max(1, round(val_fraction * len(case_ids)))) if len(case_ids) > 1 else 0
    val = set(ranked[:n_val])
    return {c: "val" if c in val else "train" for c in case_ids}


def _relative(path: str | Path, base: Path) -> str:
    path = Path(path).resolve()
    try:
        return os.path.relpath(path, base.resolve())
    except ValueError:  # another drive (Windows)
        return str(path)


def write_manifest(datasets: list[ImportedDataset], path: str | Path, name: str | None = None,
                   append: bool = False) -> Path:
    """Write (or, with ``append``, extend) a YAML manifest with ``datasets``; it must then load."""
    path = Path(path)
    base = path.parent
    if path.exists() and not append:
        raise FileExistsError(f"{path} already exists; use --append to add the dataset to it, or choose another file")
    data: dict[str, Any] = {"name": name or path.stem, "datasets": []}
    header = ""
    if path.exists():
        text = path.read_text()
        header = "".join(line + "\n" for line in text.splitlines() if line.startswith("#"))
        data = (json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)) or data
        data.setdefault("datasets", [])
        taken = {d.get("name") for d in data["datasets"]}
        clash = [d.name for d in datasets if d.name in taken]
        if clash:
            raise ValueError(f"{path} already has dataset(s) {clash}; give the new one another --name")
    for d in datasets:
        header += f"# {d.name}: imported by `mome data import {d.source}`\n"
        for note in d.notes:
            header += f"#   {note}\n"
        if d.unmapped:
            header += f"#   mapped to no class (see `mome data check`): {', '.join(d.unmapped)}\n"
        data["datasets"].append(d.entry(base))
    base.mkdir(parents=True, exist_ok=True)
    # Checked by loading before it replaces anything: a manifest that does not load is never written.
    tmp = path.with_name(f".{path.stem}.tmp{path.suffix}")
    if path.suffix == ".json":
        tmp.write_text(json.dumps(data, indent=1))
    else:
        tmp.write_text(header + yaml.safe_dump(data, sort_keys=False, allow_unicode=True, width=120))
    try:
        load_manifest(tmp)
    except Exception:
        tmp.unlink()
        raise
    os.replace(tmp, path)
    return path


def check_ct(modalities: dict, where: Path) -> None:
    """MoME segments single-channel CT; anything else is refused with what the file says."""
    values = [str(v) for v in modalities.values()]
    if len(values) > 1:
        raise ValueError(f"{where} describes {len(values)} channels ({', '.join(values)}); MoME trains on "
                         "single-channel CT")
    if values and values[0].strip().upper() != "CT":
        raise ValueError(f"{where} says the images are {values[0]}; MoME trains on CT")


def case_id(path: Path) -> str:
    name = path.name
    for ext in (".nii.gz", ".nii", ".nrrd", ".mha"):
        if name.endswith(ext):
            return name[: -len(ext)]
    return path.stem


def finish_pairs(imported: ImportedDataset, found: list[tuple[str, Path, Path, str]],
                 preset: DatasetPreset | None, val_fraction: float) -> None:
    """Filter by the preset, decide splits, and add the cases (shared by the label-map layouts)."""
    if preset is not None and preset.keep is not None:
        kept = [f for f in found if preset.keep(f[0])]
        if len(kept) < len(found):
            imported.notes.append(f"skipped {len(found) - len(kept)} case(s) that preset {preset.key} excludes "
                                  f"({preset.note or 'see the preset'})")
        found = kept
    has_val = any(split == "val" for *_, split in found)
    fixed = {cid: preset.split(cid) for cid, *_ in found} if preset is not None and preset.split else {}
    free = [cid for cid, *_, split in found if split == "train" and not fixed.get(cid)]
    chosen = assign_splits(free, 0.0 if has_val else val_fraction)
    for cid, image, label, split in found:
        split = fixed.get(cid) or (chosen.get(cid, split) if split == "train" else split)
        imported.cases.append({"id": cid, "image": str(image), "labels": str(label), "split": split})
