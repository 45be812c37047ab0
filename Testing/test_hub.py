"""Model hub: registry parsing, consented and verified downloads, the versioned store with
activation and rollback, and what a model name resolves to."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from hub_fixtures import LoopbackServer, build_package, registry_item, sha256_bytes, write_registry
from mome.hub import (
    ChecksumMismatchError,
    ConsentRequiredError,
    DownloadError,
    ModelNotFoundError,
    ModelStore,
    RegistryEntry,
    RegistryError,
    SizeMismatchError,
    StoreError,
    default_home,
    download_model,
    find_entry,
    load_registry,
    resolve_model,
)
from mome.package import PackageIntegrityError


@pytest.fixture(scope="module")
def packages(tmp_path_factory) -> dict[str, Path]:
    """tiny-test 1.0.0 as a .zip and as a folder, plus other versions as folders."""
    root = tmp_path_factory.mktemp("packages")
    return {
        "zip": build_package(root / "tiny-1.0.0.zip"),
        "1.0.0": build_package(root / "tiny-1.0.0"),
        "0.9.0": build_package(root / "tiny-0.9.0", version="0.9.0"),
        "0.10.0": build_package(root / "tiny-0.10.0", version="0.10.0",
                                provenance={"base_model": "tiny-test 0.9.0"}, metrics={"validation_mean_dice": 0.5}),
    }


def entry_for(server: LoopbackServer, data: bytes, **changes) -> RegistryEntry:
    url = server.serve("tiny-test-1.0.0.zip", data)
    fields = {"name": "tiny-test", "version": "1.0.0", "url": url, "sha256": sha256_bytes(data), "size": len(data)}
    return RegistryEntry(**{**fields, **changes})


class Recorder:
    def __init__(self):
        self.updates = []

    def update(self, stage, fraction, message="", **extra):
        self.updates.append((stage, fraction, message))

    def done(self, **result):
        pass

    def error(self, message, details=""):
        pass


def leftovers(store: ModelStore) -> list[str]:
    """Temporary files or folders the store's root still holds (downloads, staging, removals)."""
    downloads = store.root / ".downloads"
    hidden = [p.name for p in store.root.iterdir() if p.name.startswith(".") and p.name != ".downloads"]
    return hidden + ([p.name for p in downloads.iterdir()] if downloads.exists() else [])


# ---------------------------------------------------------------------- paths and registry
def test_default_home_prefers_mome_home_then_xdg_then_home(monkeypatch, tmp_path):
    monkeypatch.setenv("MOME_HOME", str(tmp_path / "mh"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert default_home() == tmp_path / "mh"
    monkeypatch.delenv("MOME_HOME")
    assert default_home() == tmp_path / "xdg" / "mome"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert default_home() == tmp_path / "home" / ".cache" / "mome"
    assert ModelStore().root == tmp_path / "home" / ".cache" / "mome" / "models"


def test_shipped_registry_has_the_bundled_default_model():
    entries = load_registry()
    mini = find_entry(entries, "mome-mini")
    assert mini is not None and mini.bundled == "Models/mome-mini"
    assert not mini.downloadable or (mini.sha256 and mini.size)  # placeholders only without a URL


@pytest.mark.parametrize("content, complaint", [
    ("{not json", "not readable JSON"),
    ('{"name": "x"}', "JSON list"),
    ('[{"name": "x", "version": "1", "url": "https://e.org/x.zip", "sha256": null, "size": null}]',
     "needs both sha256 and size"),
    ('[{"name": "x", "version": "1", "sha256": null, "size": null}]', "neither a url nor a bundled"),
    ('[{"name": "x", "version": "1", "url": "https://e.org/x.zip", "sha256": "abc", "size": 3}]', "64 lower-case"),
    ('[{"name": "x", "version": "1", "bundled": "M/x", "sha": 1}]', "unknown field"),
    ('[{"name": "../x", "version": "1", "bundled": "M/x"}]', "not allowed"),
    ('[{"name": "x", "version": "1", "bundled": "../x"}]', "relative path"),
    ('[{"name": "x", "version": "1", "url": "ftp://e.org/x", "sha256": "' + "0" * 64 + '", "size": 3}]', "http"),
    ('[{"name": "x", "version": "1", "bundled": "M/x"}, {"name": "x", "version": "1", "bundled": "M/y"}]',
     "listed twice"),
])
def test_malformed_registry_is_a_clear_error(tmp_path, content, complaint):
    path = tmp_path / "Models.json"
    path.write_text(content)
    with pytest.raises(RegistryError, match=complaint) as caught:
        load_registry(path)
    assert str(path) in str(caught.value)


def test_find_entry_picks_the_newest_version_in_release_order(tmp_path):
    items = [{"name": "m", "version": v, "bundled": f"Models/m-{v}"} for v in ("0.9.0", "0.10.0", "0.2.0")]
    entries = load_registry(write_registry(tmp_path / "r.json", items))
    assert find_entry(entries, "m").version == "0.10.0"
    assert find_entry(entries, "m", "0.9.0").bundled == "Models/m-0.9.0"
    assert find_entry(entries, "other") is None


# ---------------------------------------------------------------------- download
def test_download_installs_a_verified_package_and_reports_progress(tmp_path, server, packages):
    data = packages["zip"].read_bytes()
    store = ModelStore(tmp_path / "models")
    progress = Recorder()
    model = download_model(entry_for(server, data), store, consent=True, progress=progress)
    assert (model.name, model.version, model.active) == ("tiny-test", "1.0.0", False)
    assert model.path == store.path("tiny-test", "1.0.0") and (model.path / "weights.safetensors").is_file()
    assert model.classes == ("liver", "spleen")
    assert server.requests == ["/tiny-test-1.0.0.zip"]
    fractions = [f for stage, f, _ in progress.updates if stage == "download"]
    assert fractions == sorted(fractions) and fractions[-1] == 1.0 and len(fractions) >= 2
    assert leftovers(store) == []
    # Asking again finds it installed: no second request.
    assert download_model(entry_for(server, data), store, consent=False).path == model.path
    assert len(server.requests) == 1


def test_no_consent_sends_nothing(tmp_path, server, packages):
    entry = entry_for(server, packages["zip"].read_bytes())
    store = ModelStore(tmp_path / "models")
    questions = []

    def refuse(question):
        questions.append(question)
        return False

    for consent in (False, refuse):
        with pytest.raises(ConsentRequiredError, match="nothing was downloaded"):
            download_model(entry, store, consent=consent)
    assert server.requests == []
    assert len(questions) == 1 and entry.url in questions[0] and f"{entry.size / 1e6:.1f} MB" in questions[0]
    assert store.installed() == []


def test_checksum_mismatch_deletes_the_download(tmp_path, server, packages):
    data = packages["zip"].read_bytes()
    wrong = "0" * 64
    store = ModelStore(tmp_path / "models")
    with pytest.raises(ChecksumMismatchError) as caught:
        download_model(entry_for(server, data, sha256=wrong), store, consent=True)
    message = str(caught.value)
    assert wrong in message and sha256_bytes(data) in message and "deleted" in message
    assert len(server.requests) == 1
    assert leftovers(store) == [] and store.installed() == []


@pytest.mark.parametrize("delta", [-10, 10])
def test_size_mismatch_deletes_the_download(tmp_path, server, packages, delta):
    data = packages["zip"].read_bytes()
    store = ModelStore(tmp_path / "models")
    with pytest.raises(SizeMismatchError, match=f"expected {len(data) + delta} bytes") as caught:
        download_model(entry_for(server, data, size=len(data) + delta), store, consent=True)
    assert caught.value.expected == len(data) + delta
    assert leftovers(store) == [] and store.installed() == []


def test_http_error_is_a_download_error(tmp_path, server, packages):
    entry = entry_for(server, packages["zip"].read_bytes(), url=server.url("missing.zip"))
    with pytest.raises(DownloadError, match="404"):
        download_model(entry, ModelStore(tmp_path / "models"), consent=True)
    assert leftovers(ModelStore(tmp_path / "models")) == []


# ---------------------------------------------------------------------- store
def test_install_activate_rollback_remove_export_round_trip(tmp_path, packages):
    store = ModelStore(tmp_path / "models")
    assert store.active() is None
    first = store.install(packages["zip"], activate=True)
    assert first.active and store.active().spec == "tiny-test@1.0.0"
    second = store.install(packages["0.10.0"])
    assert not second.active and second.base_model == "tiny-test 0.9.0"
    assert second.metrics == {"validation_mean_dice": 0.5}
    store.install(packages["0.9.0"])
    assert [m.version for m in store.installed()] == ["0.9.0", "0.10.0", "1.0.0"]

    assert store.activate("tiny-test", "0.10.0").active
    assert ModelStore(store.root).active().version == "0.10.0"  # persisted in state.json
    assert store.path("tiny-test") == second.path  # the active version of that name
    with pytest.raises(StoreError, match="active model"):
        store.remove("tiny-test", "0.10.0")

    assert store.rollback().version == "1.0.0"
    with pytest.raises(StoreError, match="no earlier active model"):
        store.rollback()

    store.remove("tiny-test", "0.10.0")
    assert not second.path.exists()
    assert [m.version for m in store.installed()] == ["0.9.0", "1.0.0"]
    with pytest.raises(ModelNotFoundError, match="installed versions: 0.9.0, 1.0.0"):
        store.path("tiny-test", "0.10.0")

    exported = store.export("tiny-test", "1.0.0", tmp_path / "out" / "tiny.zip")
    with pytest.raises(FileExistsError):
        store.export("tiny-test", "1.0.0", exported)
    other = ModelStore(tmp_path / "other").install(exported)
    assert (other.path / "SHA256SUMS.json").read_text() == (first.path / "SHA256SUMS.json").read_text()
    assert leftovers(store) == []


def test_path_without_version_is_the_newest_in_release_order(tmp_path, packages):
    store = ModelStore(tmp_path / "models")
    store.install(packages["0.9.0"])
    store.install(packages["0.10.0"])
    assert store.path("tiny-test").name == "0.10.0"
    with pytest.raises(ModelNotFoundError, match="not installed"):
        store.path("nothing")


def test_rollback_skips_models_that_were_removed(tmp_path, packages):
    store = ModelStore(tmp_path / "models")
    for version in ("0.9.0", "0.10.0", "1.0.0"):
        store.install(packages[version], activate=True)
    store.remove("tiny-test", "0.10.0")
    assert store.rollback().version == "0.9.0"


def test_reinstall_identical_is_a_no_op_but_a_different_package_is_refused(tmp_path, packages):
    store = ModelStore(tmp_path / "models")
    first = store.install(packages["1.0.0"])
    assert store.install(packages["zip"]).path == first.path  # same content, folder or zip
    different = build_package(tmp_path / "different", version="1.0.0", description="changed")
    with pytest.raises(FileExistsError, match="already installed"):
        store.install(different)
    assert json.loads((first.path / "model.json").read_text())["description"] != "changed"


def test_tampered_package_is_refused(tmp_path, packages):
    tampered = tmp_path / "tampered"
    shutil.copytree(packages["1.0.0"], tampered)
    weights = tampered / "weights.safetensors"
    blob = bytearray(weights.read_bytes())
    blob[-1] ^= 0xFF
    weights.write_bytes(bytes(blob))
    store = ModelStore(tmp_path / "models")
    with pytest.raises(PackageIntegrityError, match="weights.safetensors"):
        store.install(tampered)
    assert store.installed() == [] and leftovers(store) == []


def test_a_damaged_installed_copy_is_repaired_by_importing_it_again(tmp_path, packages):
    store = ModelStore(tmp_path / "models")
    model = store.install(packages["1.0.0"])
    (model.path / "weights.safetensors").write_bytes(b"broken")
    store.install(packages["zip"])
    assert (model.path / "weights.safetensors").read_bytes() == (packages["1.0.0"] / "weights.safetensors").read_bytes()


# ---------------------------------------------------------------------- resolve
@pytest.fixture
def bundled(tmp_path, monkeypatch, packages):
    """A Resources/ folder with tiny-test 0.9.0 bundled as Models/tiny-test and mome-mini as a zip."""
    resources = tmp_path / "Resources"
    shutil.copytree(packages["0.9.0"], resources / "Models" / "tiny-test")
    shutil.copy(packages["zip"], resources / "Models" / "mome-mini.zip")
    monkeypatch.setattr("mome.hub.resolve.resources_dir", lambda: resources)
    return resources / "Models"


def test_resolve_order_path_then_store_then_bundled(tmp_path, packages, bundled):
    store = ModelStore(tmp_path / "models")
    assert resolve_model(str(packages["0.10.0"]), store, []) == packages["0.10.0"]
    assert resolve_model("tiny-test", store, []) == bundled / "tiny-test"
    assert resolve_model("tiny-test@0.9.0", store, []) == bundled / "tiny-test"
    installed = store.install(packages["1.0.0"])
    assert resolve_model("tiny-test", store, []) == installed.path
    assert resolve_model("tiny-test@0.9.0", store, []) == bundled / "tiny-test"  # not in the store
    with pytest.raises(ModelNotFoundError, match="unknown model 'tiny-test@2.0.0'"):
        resolve_model("tiny-test@2.0.0", store, [])
    with pytest.raises(ModelNotFoundError, match="does not exist"):
        resolve_model(str(tmp_path / "missing.zip"), store, [])


def test_several_bundled_versions_newest_by_default_older_by_version(tmp_path, packages, bundled):
    """The default model and the version it replaced both ship; a bare name means the newest,
    whatever order the registry lists them in (0.10.0 is newer than 0.9.0: numeric, not text)."""
    shutil.copytree(packages["0.10.0"], bundled / "tiny-test-0.10.0")
    registry = [RegistryEntry(name="tiny-test", version=v, url=None, sha256=None, size=None, description="",
                              license="Apache-2.0", classes=(), bundled=path)
                for v, path in (("0.9.0", "Models/tiny-test"), ("0.10.0", "Models/tiny-test-0.10.0"))]
    store = ModelStore(tmp_path / "models")
    assert resolve_model("tiny-test", store, registry) == bundled / "tiny-test-0.10.0"
    assert resolve_model("tiny-test@0.9.0", store, registry) == bundled / "tiny-test"
    assert resolve_model("tiny-test@0.10.0", store, list(reversed(registry))) == bundled / "tiny-test-0.10.0"


def test_no_name_means_the_active_model_else_the_bundled_default(tmp_path, packages, bundled):
    store = ModelStore(tmp_path / "models")
    assert resolve_model(None, store, []) == bundled / "mome-mini.zip"
    store.install(packages["0.10.0"], activate=True)
    assert resolve_model(None, store, []) == store.path("tiny-test", "0.10.0")


def test_known_but_not_downloaded_says_how_to_download_without_downloading(tmp_path, server, packages, bundled):
    data = packages["zip"].read_bytes()
    url = server.serve("far.zip", data)
    registry = load_registry(write_registry(tmp_path / "r.json", [registry_item("far-model", "2.0.0", url, data)]))
    store = ModelStore(tmp_path / "models")
    with pytest.raises(ModelNotFoundError) as caught:
        resolve_model("far-model", store, registry)
    assert f"run: mome models download far-model@2.0.0 ({len(data) / 1e6:.1f} MB from {url})" in str(caught.value)
    assert server.requests == []
    store.install(packages["1.0.0"])
    with pytest.raises(ModelNotFoundError) as caught:
        resolve_model("nope", store, registry)
    assert "Installed: tiny-test@1.0.0" in str(caught.value) and "far-model" in str(caught.value)


def test_resolve_model_uses_the_default_store(tmp_path, monkeypatch, packages):
    monkeypatch.setenv("MOME_HOME", str(tmp_path / "home"))
    installed = ModelStore().install(packages["0.9.0"], activate=True)
    assert resolve_model("tiny-test") == installed.path
    assert resolve_model(None) == installed.path
    assert resolve_model(packages["1.0.0"]) == packages["1.0.0"]  # an existing path wins


def test_the_hub_imports_without_torch_or_the_engine():
    # The Slicer panel lists models through mome.hub before (or without) loading torch.
    script = (
        "import sys\n"
        "import mome.hub\n"
        "print(sorted(m for m in ('torch', 'SimpleITK', 'mome.inference') if m in sys.modules))\n"
    )
    run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    assert run.stdout.strip() == "[]"
