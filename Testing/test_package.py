"""Model packages: bit-identical round trip (folder and zip), tamper detection, format errors."""

from __future__ import annotations

import json
import zipfile

import pytest
import torch

from mome.model import MoME, MoMEConfig
from mome.package import (
    ModelPackage,
    PackageClass,
    PackageFormatError,
    PackageInfo,
    PackageIntegrityError,
    Preprocessing,
)
from mome.vocabulary import Code

SCT_ANATOMY = Code("123037004", "SCT", "Anatomical Structure")


def make_package() -> ModelPackage:
    torch.manual_seed(1)
    model = MoME(MoMEConfig.from_size("tiny", text_dim=16))
    classes = [
        PackageClass("liver", "liver", "liver", (221, 130, 101), SCT_ANATOMY, Code("10200004", "SCT", "Liver")),
        PackageClass("spleen", "spleen", "spleen", (157, 108, 162), SCT_ANATOMY, Code("78961009", "SCT", "Spleen")),
    ]
    info = PackageInfo(name="test-model", version="1.0.0", text_encoder="minilm-l6-v2",
                       provenance={"note": "unit test"}, metrics={"dice": {"liver": 0.5}})
    return ModelPackage.from_model(model, info, Preprocessing(), classes, torch.randn(2, 16))


@pytest.fixture(scope="module")
def package() -> ModelPackage:
    return make_package()


@pytest.mark.parametrize("suffix", ["", ".zip"])
def test_round_trip_gives_bit_identical_outputs(package, tmp_path, suffix):
    path = package.save(tmp_path / f"pkg{suffix}")
    loaded = ModelPackage.load(path)
    assert loaded.class_keys == ["liver", "spleen"]
    assert loaded.info.metrics == {"dice": {"liver": 0.5}}
    assert loaded.preprocessing == package.preprocessing
    assert loaded.classes[0].type.value == "10200004"
    x = torch.randn(1, 1, 64, 64, 64)
    with torch.no_grad():
        a = package.build_model()(x, package.embeddings_for(["spleen"]))
        b = loaded.build_model()(x, loaded.embeddings_for(["spleen"]))
    assert torch.equal(a, b)


def test_tampered_weights_are_refused(package, tmp_path):
    path = package.save(tmp_path / "pkg")
    weights = path / "weights.safetensors"
    data = bytearray(weights.read_bytes())
    data[-10] ^= 0xFF
    weights.write_bytes(bytes(data))
    with pytest.raises(PackageIntegrityError, match="weights.safetensors does not match its SHA-256"):
        ModelPackage.load(path)


def test_tampered_zip_is_refused(package, tmp_path):
    path = package.save(tmp_path / "pkg.zip")
    with zipfile.ZipFile(path) as zf:
        members = {n: zf.read(n) for n in zf.namelist()}
    meta = json.loads(members["model.json"])
    meta["classes"][0]["name"] = "kidney"
    members["model.json"] = json.dumps(meta).encode()
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    with pytest.raises(PackageIntegrityError, match="model.json"):
        ModelPackage.load(path)


def test_missing_manifest_and_foreign_files_are_rejected(tmp_path):
    folder = tmp_path / "not-a-package"
    folder.mkdir()
    (folder / "model.json").write_text("{}")
    with pytest.raises(PackageIntegrityError, match="not a MoME model package"):
        ModelPackage.load(folder)
    junk = tmp_path / "junk.zip"
    junk.write_bytes(b"not a zip")
    with pytest.raises(PackageFormatError, match="neither"):
        ModelPackage.load(junk)


def test_save_never_overwrites_silently(package, tmp_path):
    path = package.save(tmp_path / "pkg")
    with pytest.raises(FileExistsError, match="new version"):
        package.save(path)


def test_fp16_package_is_half_the_size_and_close(package, tmp_path):
    full = package.save(tmp_path / "full")
    half = package.save(tmp_path / "half", dtype=torch.float16)
    size = lambda p: (p / "weights.safetensors").stat().st_size  # noqa: E731
    assert size(half) < 0.6 * size(full)
    loaded = ModelPackage.load(half)
    key = "controller.linear.weight"
    torch.testing.assert_close(loaded.state_dict[key].float(), package.state_dict[key], atol=1e-3, rtol=1e-3)
