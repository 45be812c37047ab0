"""``mome sample``: bundled and remote samples. A remote sample (an OpenKBP head-and-neck patient)
is downloaded only with consent, verified file by file, converted into ``$MOME_HOME/samples/NAME/``
at once or not at all, and then behaves like a bundled one plus reference masks.

Downloads come from a loopback server serving a small synthetic patient in OpenKBP's format, with
a temporary ``MOME_SAMPLES`` list pointing at it, so no test needs the network or OpenKBP. Two
tests check the shipped entry against the real files of a local open-kbp mirror and skip, saying
so, where it is absent.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import subprocess
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk

from mome.cli.main import main
from mome.resource_files import find_sample
from mome.training.manifest import load_manifest

REPO = Path(__file__).resolve().parents[1]
NAME = "openkbp_test_pt_900"
COMMIT = "0123456789abcdef0123456789abcdef01234567"
SPACING_RCS = (2.5, 2.5, 3.0)  # OpenKBP order: row, column, slice (rows and columns equal, as in every patient)
# (row, column, slice) boxes, end exclusive. Row grows toward posterior, column toward the patient's
# left, slice toward inferior (mome/data/openkbp.py): the anatomy below is laid out accordingly.
BODY = ((50, 80), (40, 90), (20, 80))
STRUCTURE_BOXES = {
    "Brainstem": ((64, 70), (62, 67), (24, 30)),  # superior: small slices
    "SpinalCord": ((72, 76), (62, 67), (45, 75)),  # posterior: large rows
    "LeftParotid": ((56, 62), (76, 82), (32, 38)),  # patient's left: large columns
    "RightParotid": ((56, 62), (47, 53), (32, 38)),
    "Mandible": ((51, 55), (55, 75), (40, 45)),  # anterior: small rows
}
BONE_HU, TISSUE_HU = 700, 40


def _flat(box) -> np.ndarray:
    (r0, r1), (c0, c1), (s0, s1) = box
    r, c, s = np.meshgrid(np.arange(r0, r1), np.arange(c0, c1), np.arange(s0, s1), indexing="ij")
    return np.ravel_multi_index((r.ravel(), c.ravel(), s.ravel()), (128, 128, 128))


def synthetic_patient() -> dict[str, bytes]:
    """One patient's files as OpenKBP writes them: sparse ``,data`` CSVs (CT value = HU + 1024,
    listed only inside the body), a mask as indices with an empty value column, spacing one per line.
    The oesophagus file is empty (not drawn) and the larynx file absent."""
    body = np.sort(_flat(BODY))
    hu = np.full(body.shape, TISSUE_HU)
    hu[np.isin(body, _flat(STRUCTURE_BOXES["Mandible"]))] = BONE_HU
    files = {"ct.csv": (",data\n" + "".join(f"{i},{v + 1024:.1f}\n" for i, v in zip(body, hu))).encode()}
    for name, box in STRUCTURE_BOXES.items():
        files[f"{name}.csv"] = (",data\n" + "".join(f"{i},\n" for i in np.sort(_flat(box)))).encode()
    files["Esophagus.csv"] = b",data\n"
    out = io.BytesIO()
    np.savetxt(out, np.asarray(SPACING_RCS))
    files["voxel_dimensions.csv"] = out.getvalue()
    return files


def remote_entry(base_url: str, files: dict[str, bytes]) -> dict:
    return {
        "name": NAME, "title": "Synthetic head and neck", "description": "test patient", "license": "MIT",
        "source": "made by the test", "citation": "nobody",
        "remote": {"format": "openkbp", "commit": COMMIT, "base_url": base_url,
                   "files": {n: {"size": len(d), "sha256": hashlib.sha256(d).hexdigest()} for n, d in files.items()}},
    }


@pytest.fixture(scope="module")
def patient() -> dict[str, bytes]:
    return synthetic_patient()


@pytest.fixture
def home(tmp_path, monkeypatch, server, patient) -> Path:
    """MOME_HOME, and a MOME_SAMPLES list with the bundled example CT and the synthetic patient,
    served by the loopback server at a pinned commit."""
    for name, data in patient.items():
        server.serve(f"open-kbp/{COMMIT}/pt_900/{name}", data)
    bundled = json.loads((REPO / "Resources" / "Samples" / "samples.json").read_text())["samples"][0]
    bundled["file"] = str(REPO / "Resources" / "Samples" / bundled["file"])
    listing = tmp_path / "samples.json"
    listing.write_text(json.dumps({"samples": [bundled, remote_entry(server.url("open-kbp/{commit}/pt_900/"), patient)]}))
    monkeypatch.setenv("MOME_SAMPLES", str(listing))
    monkeypatch.setenv("MOME_HOME", str(tmp_path / "home"))
    return tmp_path / "home"


def cache_entries(home: Path) -> list[str]:
    """Everything in the samples cache, hidden temporary folders included."""
    folder = home / "samples"
    return sorted(p.name for p in folder.iterdir()) if folder.is_dir() else []


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_listing_shows_the_remote_sample_with_its_size_and_download_command(home, server, capsys):
    assert main(["sample"]) == 0
    out = capsys.readouterr().out
    assert "example_ct" in out and "shipped with MoME" in out
    size = sum(len(d) for d in synthetic_patient().values())
    assert f"remote, not downloaded: `mome sample {NAME} --download` fetches {size / 1e6:.1f} MB" in out
    assert "licence MIT" in out and "cite: nobody" in out
    assert server.requests == []


def test_not_downloaded_says_which_command_downloads_it(home, server, capsys):
    assert main(["sample", NAME]) == 2
    err = capsys.readouterr().err
    assert f"`mome sample {NAME} --download`" in err and "MB from http://127.0.0.1" in err and COMMIT in err
    assert server.requests == [] and cache_entries(home) == []


def test_download_off_a_terminal_needs_yes_and_connects_to_nothing(home, server, capsys):
    assert main(["sample", NAME, "--download"]) == 2
    err = capsys.readouterr().err
    assert "needs your consent; nothing was downloaded" in err and f"mome sample {NAME} --download --yes" in err
    assert server.requests == [] and cache_entries(home) == []


@pytest.mark.parametrize("answer", ["\n", "n\n"])
def test_download_asks_on_a_terminal_and_no_means_no(home, server, capsys, monkeypatch, answer):
    monkeypatch.setattr("sys.stdin", Terminal(answer))
    assert main(["sample", NAME, "--download"]) == 2
    err = capsys.readouterr().err
    assert f"Download sample {NAME}" in err and "licence MIT" in err and "[y/N]" in err
    assert server.requests == [] and cache_entries(home) == []


def _centroid(path: Path) -> np.ndarray:
    """LPS centroid in mm, from the voxel indices and the file's own geometry."""
    image = sitk.ReadImage(str(path))
    zyx = np.argwhere(sitk.GetArrayViewFromImage(image) > 0).mean(axis=0)
    return np.asarray(image.TransformContinuousIndexToPhysicalPoint(zyx[::-1].tolist()))


def test_download_with_consent_verifies_converts_and_installs(home, server, capsys, monkeypatch, patient):
    monkeypatch.setattr("sys.stdin", Terminal("y\n"))
    assert main(["sample", NAME, "--download", "--progress", "none"]) == 0
    ct_path = Path(capsys.readouterr().out.strip())
    folder = home / "samples" / NAME
    assert ct_path == folder / "ct.nii.gz"
    assert sorted(server.requests) == sorted(f"/open-kbp/{COMMIT}/pt_900/{n}" for n in patient)
    assert cache_entries(home) == [NAME]  # no temporary folder left
    assert sorted(p.name for p in folder.iterdir()) == ["ct.nii.gz", "manifest.json", "masks", "sample.json"]

    # Geometry: LPS identity direction, OpenKBP's (row, column, slice) spacing as (x=column, y=row, z=slice).
    ct = sitk.ReadImage(str(ct_path))
    assert ct.GetPixelID() == sitk.sitkInt16 and np.allclose(ct.GetSpacing(), (2.5, 2.5, 3.0))
    assert sitk.DICOMOrientImageFilter.GetOrientationFromDirectionCosines(ct.GetDirection()) == "LPS"
    assert all(s < 128 for s in ct.GetSize())  # cropped to the body
    # One CT voxel followed from its flat index to its physical point on the uncropped grid.
    r, c, s = 60, 70, 50
    point = (c * SPACING_RCS[1], r * SPACING_RCS[0], (127 - s) * SPACING_RCS[2])
    assert ct[ct.TransformPhysicalPointToIndex(point)] == TISSUE_HU
    assert sitk.GetArrayViewFromImage(ct)[0, 0, 0] == -1024  # outside the body: air

    assert main(["sample", NAME, "--masks"]) == 0
    masks = {Path(p).name[: -len(".nii.gz")]: Path(p) for p in capsys.readouterr().out.split()}
    # The empty oesophagus file and the absent larynx file are "not drawn": no mask, never an empty one.
    assert set(masks) == {"brainstem", "spinal_cord", "parotid_gland_left", "parotid_gland_right", "mandible"}
    for path in masks.values():
        mask = sitk.ReadImage(str(path))
        assert mask.GetPixelID() == sitk.sitkUInt8 and mask.GetSize() == ct.GetSize()
        assert np.allclose(mask.GetOrigin(), ct.GetOrigin()) and mask.GetDirection() == ct.GetDirection()
    c = {key: _centroid(path) for key, path in masks.items()}
    assert c["parotid_gland_left"][0] - c["parotid_gland_right"][0] > 50  # LPS x grows toward the patient's left
    assert c["brainstem"][2] - c["spinal_cord"][2] > 30  # head superior
    assert c["spinal_cord"][1] - c["mandible"][1] > 40  # mandible anterior
    bone = sitk.GetArrayFromImage(ct)[sitk.GetArrayFromImage(sitk.ReadImage(str(masks["mandible"]))) > 0]
    assert (bone == BONE_HU).all()  # the masks sit on their CT voxels

    assert main(["sample", NAME, "--manifest"]) == 0
    manifest = load_manifest(capsys.readouterr().out.strip())
    (case,) = manifest.cases("test")
    assert case.image == ct_path and {k: Path(v) for k, v in case.masks.items()} == masks
    record = json.loads((folder / "sample.json").read_text())
    assert record["commit"] == COMMIT and record["files"]["ct.csv"]["sha256"] == hashlib.sha256(patient["ct.csv"]).hexdigest()

    assert main(["sample", NAME]) == 0 and capsys.readouterr().out.strip() == str(ct_path)
    assert main(["sample"]) == 0 and f"downloaded: {ct_path}" in capsys.readouterr().out
    requests = len(server.requests)
    assert main(["sample", NAME, "--download"]) == 0  # already there: no consent needed, nothing fetched
    assert capsys.readouterr().out.strip() == str(ct_path) and len(server.requests) == requests


def test_a_corrupted_file_names_itself_and_leaves_nothing(home, server, capsys, patient):
    good = patient["LeftParotid.csv"]
    bad = good.replace(b"\n927264,", b"\n927265,", 1)  # one voxel index changed, same size: only the checksum tells
    assert bad != good and len(bad) == len(good)
    server.serve(f"open-kbp/{COMMIT}/pt_900/LeftParotid.csv", bad)
    assert main(["sample", NAME, "--download", "--yes", "--progress", "none"]) == 2
    err = capsys.readouterr().err
    assert "LeftParotid.csv of sample" in err and hashlib.sha256(good).hexdigest() in err
    assert hashlib.sha256(bad).hexdigest() in err and "deleted" in err
    assert cache_entries(home) == []  # neither the sample nor a temporary folder
    assert main(["sample", NAME]) == 2 and "not downloaded yet" in capsys.readouterr().err


def test_a_truncated_file_is_refused(home, server, capsys, patient):
    server.serve(f"open-kbp/{COMMIT}/pt_900/ct.csv", patient["ct.csv"][:-10])
    assert main(["sample", NAME, "--download", "--yes", "--progress", "none"]) == 2
    err = capsys.readouterr().err
    assert "ct.csv of sample" in err and f"expected {len(patient['ct.csv'])} bytes" in err
    assert cache_entries(home) == []


def test_bundled_samples_have_no_masks_and_nothing_to_download(home, server, capsys):
    assert main(["sample", "example_ct", "--masks"]) == 2
    assert "has no reference masks" in capsys.readouterr().err
    assert main(["sample", "example_ct", "--download", "--yes"]) == 2
    assert "ships with MoME" in capsys.readouterr().err and server.requests == []


def test_a_remote_entry_without_checksum_is_refused(tmp_path, monkeypatch):
    entry = remote_entry("http://127.0.0.1:9/{commit}/", {"ct.csv": b"x"})
    entry["remote"]["files"]["ct.csv"]["sha256"] = "unknown"
    (tmp_path / "s.json").write_text(json.dumps({"samples": [entry]}))
    monkeypatch.setenv("MOME_SAMPLES", str(tmp_path / "s.json"))
    with pytest.raises(ValueError, match=r"s\.json, entry 1: .*SHA-256"):
        find_sample(NAME)


# -- the shipped entry against the real OpenKBP files (a local open-kbp mirror; skipped without one) --

def _shipped_remote() -> dict:
    entries = json.loads((REPO / "Resources" / "Samples" / "samples.json").read_text())["samples"]
    (entry,) = [e for e in entries if e["name"].startswith("openkbp_test_")]
    return entry


def _mirror_files(entry: dict) -> dict[str, bytes]:
    """The entry's files as the open-kbp repository holds them at the entry's commit."""
    env = os.environ.get("MOME_OPENKBP_SOURCE")
    mirror = Path(env) if env else REPO.parent / ".mirror" / "ababier+open-kbp" / "repo"
    if not mirror.exists():
        pytest.skip(f"no open-kbp git mirror at {mirror} (set MOME_OPENKBP_SOURCE to a clone of ababier/open-kbp)")
    remote = entry["remote"]
    folder = remote["base_url"].split("/{commit}/", 1)[1]  # provided-data/test-pats/pt_N/
    files = {}
    for name in remote["files"]:
        show = subprocess.run(["git", "-C", str(mirror), "show", f"{remote['commit']}:{folder}{name}"],
                              capture_output=True)
        if show.returncode:
            pytest.skip(f"the mirror {mirror} lacks {folder}{name} at {remote['commit']}: {show.stderr.decode().strip()}")
        files[name] = show.stdout
    return files


def test_the_shipped_openkbp_entry_matches_the_repository_at_its_commit():
    entry = _shipped_remote()
    assert entry["license"] == "MIT" and "Babier" in entry["citation"] and "ababier/open-kbp" in entry["source"]
    remote = entry["remote"]
    assert remote["base_url"].startswith("https://raw.githubusercontent.com/ababier/open-kbp/{commit}/provided-data/test-pats/")
    assert len(remote["commit"]) == 40
    assert not list((REPO / "Resources" / "Samples").glob("*.csv"))  # nothing of OpenKBP is shipped
    files = _mirror_files(entry)
    for name, data in files.items():
        expected = remote["files"][name]
        assert (len(data), hashlib.sha256(data).hexdigest()) == (expected["size"], expected["sha256"]), name
    assert set(files) >= {"ct.csv", "voxel_dimensions.csv", "Brainstem.csv", "SpinalCord.csv", "LeftParotid.csv",
                          "RightParotid.csv", "Esophagus.csv", "Larynx.csv", "Mandible.csv"}


def test_the_shipped_openkbp_patient_converts_with_its_anatomy_in_place(tmp_path, monkeypatch, server, capsys):
    """The real patient, served from the mirror under the shipped checksums: every organ lands where it belongs."""
    entry = _shipped_remote()
    for name, data in _mirror_files(entry).items():
        server.serve(f"pt/{name}", data)
    entry["remote"]["base_url"] = server.url("pt/")
    (tmp_path / "s.json").write_text(json.dumps({"samples": [entry]}))
    monkeypatch.setenv("MOME_SAMPLES", str(tmp_path / "s.json"))
    monkeypatch.setenv("MOME_HOME", str(tmp_path / "home"))
    assert main(["sample", entry["name"], "--download", "--yes", "--progress", "none"]) == 0
    ct = sitk.ReadImage(capsys.readouterr().out.strip())
    assert main(["sample", entry["name"], "--masks"]) == 0
    c = {Path(p).name[: -len(".nii.gz")]: _centroid(Path(p)) for p in capsys.readouterr().out.split()}
    assert len(c) == 7 and sitk.DICOMOrientImageFilter.GetOrientationFromDirectionCosines(ct.GetDirection()) == "LPS"
    assert c["parotid_gland_left"][0] - c["parotid_gland_right"][0] > 50
    assert c["brainstem"][2] - c["spinal_cord"][2] > 30 and c["brainstem"][2] > c["larynx"][2]
    assert c["spinal_cord"][1] - c["mandible"][1] > 40 and c["spinal_cord"][1] - c["larynx"][1] > 20
    assert c["parotid_gland_left"][2] > c["esophagus"][2]


def test_the_downloaded_sample_is_a_case_mome_evaluate_accepts(home, tmp_path, capsys):
    """``--manifest`` is what ``mome evaluate`` reads: a (random) model with two of the organs scores them."""
    from mome.package import Preprocessing
    from stand_ins import random_package

    assert main(["sample", NAME, "--download", "--yes", "--progress", "none"]) == 0
    assert main(["sample", NAME, "--manifest"]) == 0
    manifest = capsys.readouterr().out.strip().splitlines()[-1]
    package = random_package(preprocessing=Preprocessing(spacing=(3.0, 3.0, 3.0), patch_size=(64, 64, 64)),
                             class_keys=["brainstem", "mandible"]).save(tmp_path / "pkg")
    out = tmp_path / "metrics.json"
    assert main(["evaluate", "--model", str(package), "--data", manifest, "--split", "test", "--progress", "none",
                 "--out", str(out)]) == 0
    metrics = json.loads(out.read_text())
    assert set(metrics["per_class"]) == {"brainstem", "mandible"}
    assert [row["case"] for row in metrics["per_case"]] == [f"{NAME}/{NAME}"]
