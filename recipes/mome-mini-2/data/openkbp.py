#!/usr/bin/env python3
"""OpenKBP (sparse CSV, 128³ grid) → NIfTI CT + one binary mask per organ at risk, and manifests.

OpenKBP: Babier A, Zhang B, Mahmood R, et al. "OpenKBP: The open-access knowledge-based planning
grand challenge and dataset." Medical Physics 48(9):5549–5561, 2021. Repository ``ababier/open-kbp``
(MIT), folder ``provided-data/{train,validation,test}-pats/pt_N/``; CT from TCIA collections.

    python recipes/mome-mini-2/data/openkbp.py SOURCE [--out ../data/openkbp] [--workers 1]

``SOURCE`` is the open-kbp git repository (a bare mirror works: files are read with ``git
cat-file``) or any folder that holds ``provided-data/``. Patients whose CT is missing are skipped
and listed. ``--out`` receives ``{train,validation,test}/pt_N/ct.nii.gz`` (int16 HU) and
``<class>.nii.gz`` (uint8 0/1, one per organ at risk the patient has), ``conversion.json`` (per
patient: structures, voxel counts, centroids, anatomical checks) and ``openkbp.yaml`` (a manifest of
every converted patient). The recipe's manifests (``manifest.yaml``, ``eval-openkbp-test.yaml`` in
``recipes/mome-mini-2/``) are rewritten with paths relative to the recipe folder.

The reading of one patient (CSV layout, geometry, structure names → vocabulary keys, cropping to
the body) lives in the engine, ``mome/data/openkbp.py`` (``mome sample`` uses it too); its
docstring says how the geometry was established. This script adds what only training needs:
per-patient statistics and anatomical checks, quality flags and the manifests.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import SimpleITK as sitk
import yaml

from mome.data.openkbp import HU_OFFSET, cropped_images, read_patient, write_images

SPLITS = {"train": "train-pats", "validation": "validation-pats", "test": "test-pats"}
# Validation patients held out as the training run's ``val`` split (the rest of the official
# validation set trains). How many, and how they are chosen: see held_out_val().
N_HELD_OUT_VAL = 6
# Share of training samples drawn from OpenKBP (per-dataset weights: see manifest-abdomen.yaml).
TRAINING_WEIGHT = 0.4

RECIPE = Path(__file__).resolve().parent.parent
DEFAULT_OUT = RECIPE.parent.parent.parent / "data" / "openkbp"  # ../data/openkbp next to the checkout


# ---------------------------------------------------------------------------------------------
# Reading OpenKBP from a git repository or a folder
# ---------------------------------------------------------------------------------------------


class Source:
    """The files of ``provided-data/`` in an open-kbp checkout, bare mirror or extracted folder."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self.git = not (self.path / "provided-data").is_dir()
        self._blobs: dict[str, str] = {}
        if self.git:  # path → blob id, listed once; reading a blob is then one git call
            try:
                out = self._run("ls-tree", "-r", "HEAD", "provided-data").decode()
            except (subprocess.CalledProcessError, FileNotFoundError) as exc:
                raise FileNotFoundError(f"{self.path} is neither a provided-data/ parent nor a git repository") from exc
            for line in out.splitlines():
                meta, name = line.split("\t", 1)
                self._blobs[name] = meta.split()[2]
            if not self._blobs:
                raise FileNotFoundError(f"{self.path} has neither provided-data/ nor a git tree with it")

    def _run(self, *args: str) -> bytes:
        return subprocess.run(["git", "-C", str(self.path), *args], capture_output=True, check=True).stdout

    def describe(self) -> str:
        if self.git:
            return f"git {self.path} @ {self._run('rev-parse', 'HEAD').decode().strip()}"
        return str(self.path)

    def patients(self, split: str) -> list[str]:
        prefix = f"provided-data/{SPLITS[split]}/"
        if self.git:
            names = {p[len(prefix):].split("/")[0] for p in self._blobs if p.startswith(prefix)}
        else:
            names = {p.name for p in (self.path / prefix).iterdir() if p.is_dir()}
        return sorted(names, key=lambda n: int(n.split("_")[1]))

    def read(self, split: str, patient: str, name: str) -> bytes | None:
        """The file's bytes, or None where it is absent (no such file, or its git blob is missing)."""
        rel = f"provided-data/{SPLITS[split]}/{patient}/{name}"
        if not self.git:
            f = self.path / rel
            return f.read_bytes() if f.is_file() else None
        blob = self._blobs.get(rel)
        if blob is None:
            return None
        try:
            return self._run("cat-file", "blob", blob)
        except subprocess.CalledProcessError:  # listed in the tree, but the blob was never fetched
            return None


def centroid_lps(mask: sitk.Image) -> np.ndarray:
    """Physical (LPS, mm) centroid of a binary mask, computed by ITK from the image's geometry."""
    stats = sitk.LabelShapeStatisticsImageFilter()
    stats.Execute(mask)
    return np.asarray(stats.GetCentroid(1))


# Relations every head-and-neck patient satisfies, in LPS (x → left, y → posterior, z → superior):
# (name, structure a, structure b, axis, sign): sign * (a - b)[axis] > 0 must hold.
ANATOMY = [
    ("left parotid on the patient's left of the right parotid", "parotid_gland_left", "parotid_gland_right", 0, 1),
    ("mandible anterior to the spinal cord", "mandible", "spinal_cord", 1, -1),
    ("larynx anterior to the spinal cord", "larynx", "spinal_cord", 1, -1),
    ("brainstem superior to the spinal cord", "brainstem", "spinal_cord", 2, 1),
    ("brainstem superior to the larynx", "brainstem", "larynx", 2, 1),
    ("mandible superior to the larynx", "mandible", "larynx", 2, 1),
    ("parotids superior to the oesophagus", "parotid_gland_left", "esophagus", 2, 1),
]


def anatomy_checks(centroids: dict[str, np.ndarray]) -> dict[str, float]:
    """For each relation both of whose structures the patient has: the signed margin in mm
    (positive = anatomically right)."""
    out = {}
    for name, a, b, axis, sign in ANATOMY:
        if a in centroids and b in centroids:
            out[name] = round(float(sign * (centroids[a][axis] - centroids[b][axis])), 1)
    return out


# ---------------------------------------------------------------------------------------------
# Converting one patient
# ---------------------------------------------------------------------------------------------


@dataclass
class Patient:
    split: str
    id: str


def convert_patient(source: Source, patient: Patient, out: Path) -> dict:
    """Write one patient's CT and masks; return its record for ``conversion.json``."""
    try:
        found = read_patient(lambda name: source.read(patient.split, patient.id, name))
    except FileNotFoundError as exc:  # no CT: its file or git blob is missing
        return {"split": patient.split, "id": patient.id, "skipped": str(exc)}
    images, crop = cropped_images(found)
    folder = out / patient.split / patient.id
    write_images(images, folder / "ct.nii.gz", folder)

    masks, centroids = {}, {}
    flat_hu = found.hu.reshape(-1)
    voxel_ml = float(np.prod(found.spacing)) / 1000.0
    for key, indices in found.masks.items():
        inside = flat_hu[indices]
        masks[key] = {
            "voxels": int(indices.size),
            "ml": round(indices.size * voxel_ml, 2),
            # Mean HU inside: the mandible far above soft tissue shows that CT and masks line up.
            "mean_hu": round(float(inside.mean()), 1),
            # Share of the mask where ct.csv has no value (the CT was cut there): see quality_flags().
            "outside_ct": round(float((inside == -HU_OFFSET).mean()), 3),
        }
        centroids[key] = centroid_lps(images[key])
    return {
        "split": patient.split,
        "id": patient.id,
        "spacing_mm": [float(s) for s in found.spacing],
        "ct_voxels_in_csv": found.ct_voxels,
        "crop_xyz": crop,
        "masks": masks,
        "centroids_lps_mm": {k: [round(float(v), 1) for v in c] for k, c in centroids.items()},
        "anatomy_margin_mm": anatomy_checks(centroids),
    }


def _convert_one(args: tuple[str, Patient, str]) -> dict:
    source_path, patient, out = args
    return convert_patient(Source(Path(source_path)), patient, Path(out))


# ---------------------------------------------------------------------------------------------
# Quality control
# ---------------------------------------------------------------------------------------------

# Some clinical contours are not the structure they are named for: four "SpinalCord" masks of
# 420-1360 mL (the cord is ~26 mL) fill the whole posterior neck. A mask this far above the median
# volume of its structure, or one that lies mostly where the CT was cut away, is left out of the
# manifests (the structure is then unknown for that patient, never background). Its file is kept.
MAX_VOLUME_RATIO = 5.0  # the largest plausible masks are ~4x the median (a 92 mL larynx)
MAX_OUTSIDE_CT = 0.5


def quality_flags(records: list[dict]) -> None:
    """Add ``excluded: {key: reason}`` to every converted record (empty when all masks are usable)."""
    converted = [r for r in records if "skipped" not in r]
    volumes: dict[str, list[float]] = {}
    for r in converted:
        for key, m in r["masks"].items():
            volumes.setdefault(key, []).append(m["ml"])
    medians = {key: float(np.median(v)) for key, v in volumes.items()}
    for r in converted:
        r["excluded"] = {}
        for key, m in r["masks"].items():
            if m["ml"] > MAX_VOLUME_RATIO * medians[key]:
                r["excluded"][key] = (f"{m['ml']:.0f} mL, {m['ml'] / medians[key]:.0f}x the median "
                                      f"{medians[key]:.0f} mL: not a {key} contour")
            elif m["outside_ct"] > MAX_OUTSIDE_CT:
                r["excluded"][key] = f"{m['outside_ct']:.0%} of the mask lies where the CT has no values"


def usable_masks(record: dict) -> list[str]:
    return [key for key in record["masks"] if key not in record.get("excluded", {})]


# ---------------------------------------------------------------------------------------------
# Manifests
# ---------------------------------------------------------------------------------------------


def held_out_val(records: list[dict]) -> list[str]:
    """The official validation patients that become the run's ``val`` split: those with the most
    organs at risk (so that every class is validated), ties broken by patient number."""
    validation = [r for r in records if r["split"] == "validation" and "skipped" not in r]
    ranked = sorted(validation, key=lambda r: (-len(usable_masks(r)), int(r["id"].split("_")[1])))
    return sorted((r["id"] for r in ranked[:N_HELD_OUT_VAL]), key=lambda n: int(n.split("_")[1]))


def run_split(record: dict, val_ids: list[str]) -> str:
    """Official split → the run's split: train + validation train (a few validation patients are
    the run's val), test stays test and is only ever reported."""
    if record["split"] == "test":
        return "test"
    return "val" if record["split"] == "validation" and record["id"] in val_ids else "train"


def openkbp_dataset(records: list[dict], data_dir: Path, relative_to: Path, splits: set[str]) -> dict:
    val_ids = held_out_val(records)
    cases = []
    for r in records:
        split = run_split(r, val_ids) if "skipped" not in r else None
        if split not in splits or not usable_masks(r):
            continue
        folder = Path(_relpath(data_dir / r["split"] / r["id"], relative_to))
        cases.append({
            "id": r["id"],
            "image": str(folder / "ct.nii.gz"),
            # Only the structures drawn for this patient: the others are unknown, never background.
            "masks": {key: str(folder / f"{key}.nii.gz") for key in usable_masks(r)},
            "split": split,
        })
    return {"name": "openkbp", "cases": cases}


def _relpath(path: Path, start: Path) -> str:
    return os.path.relpath(path.resolve(), start.resolve())


def _excluded_comment(records: list[dict], splits: set[str]) -> str:
    val_ids = held_out_val(records)
    lines = [f"#   {r['split']}/{r['id']} {key}: {why}" for r in records if "skipped" not in r
             and run_split(r, val_ids) in splits for key, why in r["excluded"].items()]
    if not lines:
        return ""
    return "# Masks left out (quality_flags() in data/openkbp.py; the class is unknown for that patient):\n" + \
        "\n".join(lines) + "\n"


GENERATED = ("# Generated by recipes/mome-mini-2/data/openkbp.py from the converted OpenKBP data; re-run it\n"
             "# rather than editing the OpenKBP part by hand.\n")


def write_manifests(records: list[dict], out: Path, recipe: Path | None = RECIPE) -> None:
    """``out/openkbp.yaml`` (every converted patient) and, unless ``recipe`` is None, the recipe's
    training manifest and OpenKBP test manifest with paths relative to the recipe folder."""
    dump = lambda data: yaml.safe_dump(data, sort_keys=False, width=120)  # noqa: E731
    everything = {"name": "openkbp", "datasets": [openkbp_dataset(records, out, out, {"train", "val", "test"})]}
    (out / "openkbp.yaml").write_text(GENERATED + dump(everything))
    if recipe is None:
        return

    # Training: the abdominal datasets of manifest-abdomen.yaml (hand-written) + OpenKBP train/val.
    abdomen = yaml.safe_load((recipe / "manifest-abdomen.yaml").read_text())
    openkbp = {"name": "openkbp", "weight": TRAINING_WEIGHT, **openkbp_dataset(records, out, recipe, {"train", "val"})}
    train = {"name": "mome-mini-2-data", "datasets": [*abdomen["datasets"], openkbp]}
    header = (GENERATED + "# Training data of mome-mini-2: manifest-abdomen.yaml (abdominal CT, CTA crop, lung\n"
              "# tumour; never ircad_1.1) + OpenKBP train and validation patients (six validation patients are\n"
              "# the run's val split). OpenKBP test patients are in eval-openkbp-test.yaml, for reporting only.\n"
              + _excluded_comment(records, {"train", "val"}))
    (recipe / "manifest.yaml").write_text(header + dump(train))

    test = {"name": "openkbp-test", "datasets": [openkbp_dataset(records, out, recipe, {"test"})]}
    header = (GENERATED + "# OpenKBP official test patients (with a CT): report only, never train or choose on them.\n"
              "#   mome evaluate --model MODEL --data recipes/mome-mini-2/eval-openkbp-test.yaml --split test\n"
              + _excluded_comment(records, {"test"}))
    (recipe / "eval-openkbp-test.yaml").write_text(header + dump(test))


# ---------------------------------------------------------------------------------------------
# Summary
# ---------------------------------------------------------------------------------------------


def summarise(records: list[dict], source: str) -> dict:
    converted = [r for r in records if "skipped" not in r]
    val_ids = held_out_val(records)
    counts: dict[str, dict[str, int]] = {}
    for r in converted:
        for split in (r["split"], f"run:{run_split(r, val_ids)}"):
            row = counts.setdefault(split, {"patients": 0})
            row["patients"] += 1
            for key in usable_masks(r):
                row[key] = row.get(key, 0) + 1
    margins: dict[str, list[float]] = {}
    for r in converted:
        for name, margin in r["anatomy_margin_mm"].items():
            margins.setdefault(name, []).append(margin)
    anatomy = {name: {"patients": len(m), "violations": int(sum(x <= 0 for x in m)),
                      "min_mm": min(m), "median_mm": float(np.median(m))} for name, m in margins.items()}
    spacings = sorted({tuple(r["spacing_mm"]) for r in converted})
    return {
        "source": source,
        "citation": "Babier et al., OpenKBP, Medical Physics 48:5549-5561, 2021",
        "geometry": ("LPS, identity direction, synthetic origin (0 at the 128^3 grid's first voxel), cropped to "
                     "the body; x = OpenKBP column, y = row, z = reversed slice"),
        "held_out_val": val_ids,
        "counts": counts,
        "skipped": [f"{r['split']}/{r['id']}: {r['skipped']}" for r in records if "skipped" in r],
        "excluded_masks": [f"{r['split']}/{r['id']} {k}: {why}" for r in converted for k, why in r["excluded"].items()],
        "anatomy": anatomy,
        "spacings_mm": [list(s) for s in spacings[:20]],
        "in_plane_spacing_equal_in_every_patient": all(r["spacing_mm"][0] == r["spacing_mm"][1] for r in converted),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("source", type=Path, help="open-kbp git repository/mirror, or a folder holding provided-data/")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help=f"output folder (default {DEFAULT_OUT})")
    parser.add_argument("--workers", type=int, default=1, help="processes (default 1: the machine may be shared)")
    parser.add_argument("--limit", type=int, default=0, help="convert only the first N patients of each split (tests)")
    parser.add_argument("--no-recipe-manifests", action="store_true",
                        help="do not rewrite the recipe's manifest.yaml / eval-openkbp-test.yaml")
    args = parser.parse_args(argv)

    source = Source(args.source)
    patients = [Patient(split, p) for split in SPLITS for p in source.patients(split)[: args.limit or None]]
    args.out.mkdir(parents=True, exist_ok=True)
    jobs = [(str(args.source), p, str(args.out)) for p in patients]
    records = []
    with ProcessPoolExecutor(max_workers=args.workers) as pool:
        for n, record in enumerate(pool.map(_convert_one, jobs, chunksize=4), start=1):
            records.append(record)
            if n % 20 == 0 or n == len(jobs):
                print(f"{n}/{len(jobs)} patients", file=sys.stderr, flush=True)
    quality_flags(records)
    summary = summarise(records, source.describe())
    report = {"summary": summary, "patients": records}
    (args.out / "conversion.json").write_text(json.dumps(report, indent=1) + "\n")
    (args.out / "CITATION.md").write_text(
        "OpenKBP data converted to NIfTI by recipes/mome-mini-2/data/openkbp.py. Cite: Babier A, Zhang B,\n"
        "Mahmood R, et al. OpenKBP: The open-access knowledge-based planning grand challenge and dataset.\n"
        "Medical Physics 48(9):5549-5561, 2021. Source: github.com/ababier/open-kbp (MIT); CT from TCIA.\n")
    write_manifests(records, args.out, None if args.no_recipe_manifests else RECIPE)
    print(json.dumps({k: summary[k] for k in ("counts", "anatomy", "excluded_masks")}, indent=1))
    bad = {k: v for k, v in summary["anatomy"].items() if v["violations"]}
    if bad:
        print(f"WARNING: anatomical relations violated: {bad}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
