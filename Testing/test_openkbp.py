"""The OpenKBP converter (``mome/data/openkbp.py``, driven by ``recipes/mome-mini-2/data/openkbp.py``):
geometry established from anatomy, quality flags, and the recipe's manifests (official split kept,
evaluation-only data never trained).

The anatomy tests read a few real patients from the open-kbp repository (a git mirror or a folder
with ``provided-data/``: ``$MOME_OPENKBP_SOURCE``, else ``../.mirror/ababier+open-kbp/repo`` or
``../data/openkbp-src`` next to the checkout) and skip, saying so, where it is absent.
"""

from __future__ import annotations

import importlib.util
import io
import os
import sys
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk
import yaml

from mome.training.manifest import load_manifest

REPO = Path(__file__).resolve().parents[1]
RECIPE = REPO / "recipes" / "mome-mini-2"

_spec = importlib.util.spec_from_file_location("openkbp_converter", RECIPE / "data" / "openkbp.py")
openkbp = importlib.util.module_from_spec(_spec)
sys.modules[_spec.name] = openkbp  # its dataclasses look their module up while being defined
_spec.loader.exec_module(openkbp)

# A few patients of each official split, with different voxel sizes (3.906/2.5, 4.625/3.0,
# 5.422/3.0 mm) and every structure between them.
PATIENTS = [("train", "pt_1"), ("train", "pt_2"), ("validation", "pt_201"), ("test", "pt_243")]


@pytest.fixture(scope="module")
def source() -> "openkbp.Source":
    env = os.environ.get("MOME_OPENKBP_SOURCE")
    candidates = [Path(env)] if env else [REPO.parent / ".mirror" / "ababier+open-kbp" / "repo",
                                          REPO.parent / "data" / "openkbp-src"]
    for path in candidates:
        if (path / "provided-data").is_dir() or (path / "HEAD").is_file() or (path / ".git").exists():
            try:
                return openkbp.Source(path)
            except (FileNotFoundError, OSError, ValueError) as exc:
                pytest.skip(f"OpenKBP source {path} is not readable: {exc}")
    pytest.skip(f"OpenKBP repository not found at {', '.join(map(str, candidates))} "
                "(set MOME_OPENKBP_SOURCE to an open-kbp checkout, mirror or provided-data parent)")


@pytest.fixture(scope="module")
def converted(source, tmp_path_factory) -> tuple[Path, dict[str, dict]]:
    out = tmp_path_factory.mktemp("openkbp")
    records = {p: openkbp.convert_patient(source, openkbp.Patient(*p), out) for p in PATIENTS}
    return out, records


def _centroid(path: Path) -> np.ndarray:
    """LPS centroid in mm, from the voxel indices and the file's own geometry (not the converter's)."""
    image = sitk.ReadImage(str(path))
    zyx = np.argwhere(sitk.GetArrayViewFromImage(image) > 0).mean(axis=0)
    return np.asarray(image.TransformContinuousIndexToPhysicalPoint(zyx[::-1].tolist()))


@pytest.mark.parametrize("patient", PATIENTS, ids=lambda p: "/".join(p))
def test_anatomy_lands_where_it_belongs(converted, patient) -> None:
    out, _ = converted
    folder = out / patient[0] / patient[1]
    c = {f.name[: -len(".nii.gz")]: _centroid(f) for f in folder.glob("*.nii.gz") if f.name != "ct.nii.gz"}
    ras = {k: v * [-1, -1, 1] for k, v in c.items()}  # the same relations, stated in RAS
    # LPS: x grows toward the patient's left, y toward posterior, z toward superior.
    assert c["parotid_gland_left"][0] - c["parotid_gland_right"][0] > 50  # parotids ~10 cm apart
    assert ras["parotid_gland_left"][0] < ras["parotid_gland_right"][0]  # RAS x grows toward the right
    assert c["brainstem"][2] - c["spinal_cord"][2] > 30  # head superior
    if "mandible" in c:
        assert c["spinal_cord"][1] - c["mandible"][1] > 40  # mandible anterior, cord posterior
        assert ras["mandible"][1] > ras["spinal_cord"][1]
    if "larynx" in c:
        assert c["spinal_cord"][1] - c["larynx"][1] > 20 and c["brainstem"][2] > c["larynx"][2]
    if "esophagus" in c:
        assert c["parotid_gland_left"][2] > c["esophagus"][2]


def test_geometry_and_values_follow_the_csv(source, converted) -> None:
    """One voxel of each file, followed from the CSV's flat index to the NIfTI's physical point."""
    out, records = converted
    split, pid = PATIENTS[0]
    ct = sitk.ReadImage(str(out / split / pid / "ct.nii.gz"))
    mandible = sitk.ReadImage(str(out / split / pid / "mandible.nii.gz"))
    spacing = np.loadtxt(io.BytesIO(source.read(split, pid, "voxel_dimensions.csv")))  # row, column, slice
    assert ct.GetPixelID() == sitk.sitkInt16 and mandible.GetPixelID() == sitk.sitkUInt8
    assert np.allclose(ct.GetSpacing(), [spacing[1], spacing[0], spacing[2]])
    assert sitk.DICOMOrientImageFilter.GetOrientationFromDirectionCosines(ct.GetDirection()) == "LPS"
    assert np.allclose(mandible.GetOrigin(), ct.GetOrigin()) and mandible.GetSize() == ct.GetSize()
    assert all(s < 128 for s in ct.GetSize())  # cropped to the body

    def where(flat: int) -> tuple[int, ...]:
        """The converted image index of a CSV flat index: x = column, y = row, z = reversed slice,
        on the uncropped grid whose first voxel lies at (0, 0, 0); then found by physical point."""
        r, c, s = np.unravel_index(flat, (128, 128, 128))
        point = (c * spacing[1], r * spacing[0], (127 - s) * spacing[2])
        return ct.TransformPhysicalPointToIndex([float(v) for v in point])

    rows = np.loadtxt(io.BytesIO(source.read(split, pid, "ct.csv")), delimiter=",", skiprows=1)
    flat, value = int(rows[len(rows) // 2, 0]), rows[len(rows) // 2, 1]
    assert ct[where(flat)] == value - 1024
    mask_index = np.loadtxt(io.BytesIO(source.read(split, pid, "Mandible.csv")), delimiter=",",
                            skiprows=1, usecols=0, ndmin=1).astype(int)
    assert all(mandible[where(int(i))] == 1 for i in mask_index[:: max(1, len(mask_index) // 20)])

    hu = sitk.GetArrayViewFromImage(ct)
    assert hu[0, 0, 0] == -1024  # a corner is air (the crop margin), filled where ct.csv has no value
    m = records[PATIENTS[0]]["masks"]
    assert m["mandible"]["mean_hu"] > 300  # bone: the masks sit on the right CT voxels
    assert -100 < m["brainstem"]["mean_hu"] < 100  # soft tissue


def test_patient_without_ct_is_skipped(source, tmp_path) -> None:
    record = openkbp.convert_patient(source, openkbp.Patient("test", "pt_241"), tmp_path)  # its CT blob is absent
    if "skipped" not in record:
        pytest.skip("this copy of OpenKBP has pt_241's CT (the stored mirror lacks it)")
    assert not (tmp_path / "test" / "pt_241" / "ct.nii.gz").exists()


# -- quality flags and manifests (synthetic records; no data needed) ------------------------------


def _record(split: str, pid: str, masks: dict[str, float], outside: float = 0.0) -> dict:
    return {"split": split, "id": pid, "spacing_mm": [4.0, 4.0, 2.5], "anatomy_margin_mm": {},
            "masks": {k: {"ml": ml, "voxels": 1, "mean_hu": 0.0, "outside_ct": outside} for k, ml in masks.items()}}


def test_implausible_masks_left_out_of_manifests(tmp_path) -> None:
    records = [_record("train", f"pt_{i}", {"spinal_cord": 25.0 + i, "brainstem": 26.0}) for i in range(1, 9)]
    records.append(_record("train", "pt_9", {"spinal_cord": 500.0, "brainstem": 27.0}))  # a filled neck
    records.append(_record("validation", "pt_201", {"brainstem": 25.0}, outside=0.8))  # CT cut away
    records.append(_record("test", "pt_241", {"spinal_cord": 24.0, "brainstem": 25.0}))
    records.append({"split": "test", "id": "pt_242", "skipped": "no CT"})
    openkbp.quality_flags(records)
    assert list(records[8]["excluded"]) == ["spinal_cord"] and "17x the median" in records[8]["excluded"]["spinal_cord"]
    assert list(records[9]["excluded"]) == ["brainstem"] and records[0]["excluded"] == {}

    openkbp.write_manifests(records, tmp_path, recipe=None)
    cases = {c.id: c for c in load_manifest(tmp_path / "openkbp.yaml").cases()}
    assert set(cases["pt_9"].masks) == {"brainstem"}  # the cord is unknown there, not background
    assert "pt_201" not in cases  # nothing usable left
    assert "pt_242" not in cases and cases["pt_241"].split == "test"


def test_official_split_is_kept() -> None:
    records = [_record("train", "pt_1", {"brainstem": 25.0}), _record("test", "pt_241", {"brainstem": 25.0})]
    records += [_record("validation", f"pt_{200 + i}", {"brainstem": 25.0, "larynx": 20.0}) for i in range(1, 11)]
    records[-1]["masks"]["mandible"] = {"ml": 60.0, "voxels": 1, "mean_hu": 700.0, "outside_ct": 0.0}
    openkbp.quality_flags(records)
    val = openkbp.held_out_val(records)
    assert len(val) == openkbp.N_HELD_OUT_VAL and "pt_210" in val  # the patient with the most classes
    splits = {r["id"]: openkbp.run_split(r, val) for r in records}
    assert splits["pt_1"] == "train" and splits["pt_241"] == "test"
    assert {splits[f"pt_{200 + i}"] for i in range(1, 11)} == {"train", "val"}


def test_recipe_manifests_keep_test_and_evaluation_only_data_apart() -> None:
    """The committed manifests: OpenKBP test patients and ircad_1.1 (CC BY-NC-ND) never train."""
    train = load_manifest(RECIPE / "manifest.yaml")  # parsing needs no data files
    assert not train.cases("test")
    assert all("ircad" not in str(c.image) for c in train.cases())
    openkbp_train = {c.id for c in train.cases() if c.dataset == "openkbp"}
    test = load_manifest(RECIPE / "eval-openkbp-test.yaml")
    assert {c.split for c in test.cases()} == {"test"} and not openkbp_train & {c.id for c in test.cases()}
    assert all(int(c.id.split("_")[1]) > 240 for c in test.cases())  # OpenKBP test = pt_241..pt_340
    assert all(int(pid.split("_")[1]) <= 240 for pid in openkbp_train)
    ircad = yaml.safe_load((RECIPE / "eval-ircad.yaml").read_text())
    assert {c["split"] for d in ircad["datasets"] for c in d["cases"]} == {"test"}
