"""The engine's behaviour: windows and progress, cancellation, GPU fallbacks, class resolution and
embeddings. The network is the ``ThresholdModel`` stand-in (fast, known output)."""

from __future__ import annotations

import threading

import numpy as np
import pytest
import SimpleITK as sitk
import torch
from stand_ins import ThresholdModel, random_package

from mome.inference import (
    Cancelled,
    ClassNotSupportedError,
    DeviceUnavailableError,
    Segmenter,
    resolve_device,
)
from mome.inference.device import run_with_oom_fallback
from mome.inference.preprocess import prepare_image
from mome.inference.sliding import FAST_OVERLAP, FULL_OVERLAP, sliding_window_probabilities, window_count
from mome.inference.targets import text_cache_dir
from mome.package import Preprocessing
from mome.vocabulary import free_text_class, load_vocabulary

PREP = Preprocessing(spacing=(4.0, 4.0, 4.0), fast_spacing=(8.0, 8.0, 8.0), patch_size=(32, 32, 32))


class RecordingProgress:
    def __init__(self, on_update=None):
        self.events: list[tuple[str, float, dict]] = []
        self.on_update = on_update

    def update(self, stage, fraction, message="", **extra):
        self.events.append((stage, fraction, extra))
        if self.on_update:
            self.on_update(stage, fraction, extra)

    def done(self, **result):
        pass

    def error(self, message, details=""):
        pass


class FakeEncoder:
    """Deterministic embeddings from the text, counting what it was asked to embed."""

    def __init__(self, dim: int = 384):
        self.dim = dim
        self.asked: list[str] = []

    def embed_names(self, names):
        self.asked += names
        return torch.stack([torch.full((self.dim,), float(len(n))) for n in names])


@pytest.fixture(scope="module")
def ct(shared_data) -> sitk.Image:
    return sitk.ReadImage(str(shared_data / "totalseg_example" / "example_ct_sm.nii.gz"))


@pytest.fixture(scope="module")
def package():
    return random_package(preprocessing=PREP)


def segmenter(package, **kwargs) -> Segmenter:
    kwargs.setdefault("model", ThresholdModel((37.5, 200.0)))
    return Segmenter(package, device="cpu", **kwargs)


@pytest.mark.parametrize("size,overlap", [((40, 33, 20), 0.5), ((70, 64, 31), 0.25), ((32, 32, 32), 0.5)])
def test_window_count_matches_the_windows_monai_visits(size, overlap):
    model = ThresholdModel()
    image = torch.rand(1, 1, *size).half()
    seen = []
    out = sliding_window_probabilities(model, image, torch.zeros(2, 4), (32, 32, 32), overlap,
                                       on_window=lambda done, total: seen.append((done, total)))
    assert out.shape == (2, *size) and out.dtype == torch.float16
    assert model.calls == window_count(size, (32, 32, 32), overlap) == seen[-1][1] == seen[-1][0]
    # Gaussian blending of a voxel-wise function gives the function back (up to float16 stitching).
    expected = torch.sigmoid(50 * (image[0, 0].float() - model.levels[0]))
    assert torch.allclose(out[0].float(), expected, atol=4e-3)


@pytest.mark.parametrize("fast,overlap,expected", [(False, None, FULL_OVERLAP), (True, None, FAST_OVERLAP),
                                                   (True, 0.5, 0.5), (False, 0.0, 0.0)])
def test_fast_mode_overlaps_windows_by_a_quarter_unless_told_otherwise(ct, fast, overlap, expected):
    # fast_spacing equal to spacing (as in mome-mini): only the overlap tells the two modes apart.
    same_grid = Preprocessing(spacing=(4.0, 4.0, 4.0), fast_spacing=(4.0, 4.0, 4.0), patch_size=(32, 32, 32))
    progress = RecordingProgress()
    segmenter(random_package(preprocessing=same_grid), fast=fast, overlap=overlap).segment(ct, ["liver"], progress=progress)
    visited = [e[2]["windows"] for e in progress.events if "windows" in e[2]][-1]
    size = prepare_image(ct, same_grid, fast=fast).tensor.shape[2:]
    assert visited == window_count(size, (32, 32, 32), expected)
    assert window_count(size, (32, 32, 32), FAST_OVERLAP) < window_count(size, (32, 32, 32), FULL_OVERLAP)


def test_progress_runs_through_the_stages_in_order_and_ends_at_one(package, ct):
    progress = RecordingProgress()
    result = segmenter(package).segment(ct, ["liver", "spleen"], progress=progress)
    stages = [e[0] for e in progress.events]
    assert stages[0] == "prepare" and stages[-1] == "resample"
    assert [s for i, s in enumerate(stages) if i == 0 or s != stages[i - 1]] == [
        "prepare", "inference", "postprocess", "resample"
    ]
    fractions = [e[1] for e in progress.events]
    assert fractions == sorted(fractions) and fractions[-1] == pytest.approx(1.0)
    windows = [e[2]["windows"] for e in progress.events if "windows" in e[2]]
    assert windows and windows[0] > 1
    assert set(result.timings) >= {"prepare", "inference", "postprocess", "resample", "total"}
    assert result.device_used == "cpu"


def test_result_describes_each_class_with_vocabulary_names_and_colours(package, ct):
    result = segmenter(package, keep_probabilities=True).segment(ct, ["liver", "liver_tumor"])
    assert result.keys == ["liver", "liver_tumor"]
    vocab = load_vocabulary()
    assert [d.name for d in result.descriptors] == ["liver", "liver tumor"]
    assert result.descriptors[0].color == vocab.get("liver").color
    assert result.descriptors[1].anatomic_region is not None  # lesions say which organ they lie in
    shape = sitk.GetArrayViewFromImage(ct).shape
    assert all(m.shape == shape and m.dtype == bool for m in result.masks)
    assert result.probabilities is not None and result.probabilities[0].dtype == np.uint8
    # Masks are the thresholded probabilities (up to the half-step rounding of the threshold).
    assert np.array_equal(result.masks[0], result.probabilities[0] >= 128)


def test_setting_cancel_after_the_first_window_stops_the_run(package, ct):
    cancel = threading.Event()

    def on_update(stage, fraction, extra):
        if extra.get("window") == 1:
            cancel.set()

    progress = RecordingProgress(on_update)
    with pytest.raises(Cancelled):
        segmenter(package).segment(ct, ["liver"], progress=progress, cancel=cancel)
    windows = [e[2]["window"] for e in progress.events if "window" in e[2]]
    assert windows == [1]  # no second window ran
    assert issubclass(Cancelled, KeyboardInterrupt)


def test_fast_mode_runs_on_the_coarser_grid(package, ct):
    full = RecordingProgress()
    segmenter(package).segment(ct, ["liver"], progress=full)
    fast = RecordingProgress()
    result = segmenter(package, fast=True).segment(ct, ["liver"], progress=fast)
    count = lambda p: max(e[2].get("windows", 0) for e in p.events)  # noqa: E731
    assert count(fast) < count(full)
    assert result.masks[0].shape == sitk.GetArrayViewFromImage(ct).shape


def test_untrained_classes_are_embedded_from_text_with_a_warning(package, ct):
    encoder = FakeEncoder()
    pancreas = load_vocabulary().get("pancreas")  # in the vocabulary, not in the package
    free = free_text_class("left psoas minor")
    result = segmenter(package, text_encoder=encoder).segment(ct, ["liver", pancreas, free])
    assert encoder.asked == ["pancreas", "left psoas minor"]
    assert [c.trained for c in result.classes] == [True, False, False]
    zero_shot = [w for w in result.warnings if "never trained on" in w]  # one line, naming each
    assert len(zero_shot) == 1 and "'pancreas'" in zero_shot[0] and "'left psoas minor'" in zero_shot[0]
    assert result.classes[2].free_text


def test_models_without_free_text_refuse_untrained_classes(ct):
    closed = random_package(preprocessing=PREP, allows_free_text=False)
    with pytest.raises(ClassNotSupportedError, match="not trained on 'pancreas'"):
        segmenter(closed, text_encoder=FakeEncoder()).segment(ct, ["liver", "pancreas"])


def test_text_encoder_width_must_match_the_model(package, ct):
    with pytest.raises(ClassNotSupportedError, match="384-d"):
        segmenter(package, text_encoder=FakeEncoder(dim=16)).segment(ct, ["pancreas"])


def test_unknown_keys_are_reported_with_suggestions(package, ct):
    with pytest.raises(ClassNotSupportedError, match="Did you mean"):
        segmenter(package).segment(ct, ["livr"])


def test_text_cache_follows_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("MOME_CACHE_DIR", str(tmp_path))
    assert text_cache_dir() == tmp_path / "text"
    monkeypatch.delenv("MOME_CACHE_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert text_cache_dir() == tmp_path / "xdg" / "mome" / "text"


def test_gpu_out_of_memory_halves_the_batch_then_falls_back_to_cpu():
    tried = []

    def attempt(device, sw):
        tried.append((device.type, sw))
        if device.type == "cuda":
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return "ok"

    moved = []
    warnings: list[str] = []
    result, device = run_with_oom_fallback(attempt, torch.device("cuda"), 4, warnings, lambda: moved.append(1))
    assert result == "ok" and device.type == "cpu"
    assert tried == [("cuda", 4), ("cuda", 2), ("cuda", 1), ("cpu", 1)]
    assert moved == [1]
    assert len(warnings) == 3 and "CPU" in warnings[-1]


def test_other_errors_are_not_mistaken_for_out_of_memory():
    def attempt(device, sw):
        raise RuntimeError("shape mismatch")

    with pytest.raises(RuntimeError, match="shape mismatch"):
        run_with_oom_fallback(attempt, torch.device("cuda"), 2, [])


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a CUDA GPU")
def test_cuda_without_a_gpu_is_a_clear_error():
    assert resolve_device("auto").type == "cpu"
    with pytest.raises(DeviceUnavailableError, match="--device cpu"):
        resolve_device("cuda")
