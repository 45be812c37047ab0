"""The peer, nnU-Net v2, as TotalSegmentator runs it: its own planner, its own predictor.

Runs under a Python that has ``nnunetv2`` (a separate environment: see benchmarks/README.md), in
child processes started by ``peer_nnunet.py``; of ``mome`` it uses only ``mome.runtime`` (the process
settings both sides get). Two jobs:

* ``plan``: write a small CT dataset in nnU-Net's raw format and plan it with nnU-Net's default
  planner (``ExperimentPlanner``, the ``nnUNetPlans`` TotalSegmentator's models were trained with),
  then make a trained-model folder holding those plans and a ``3d_fullres`` checkpoint of random
  weights (speed does not depend on the weight values).
* ``predict``: one end-to-end prediction of a CT file as TotalSegmentator makes it, with
  ``nnUNetPredictor`` configured as TotalSegmentator configures it (Gaussian blending, tile step
  0.5, no mirroring), timing the network part (``predict_logits_from_preprocessed_data``) inside it.

The dataset: a few synthetic cases derived from the one shared abdomen CT (``example_ct.nii.gz``,
3 mm, with TotalSegmentator's own label map of it): resampled to the dataset's spacing and cropped
differently, so that nnU-Net's fingerprint (spacing, shape, foreground intensities) is that of an
abdominal CT at that spacing. The label count follows TotalSegmentator: 24 classes per 1.5 mm
network (its "total" task split into five parts), 117 in the one 3 mm ``--fast`` network.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as common  # noqa: E402

#: dataset id → (name, isotropic spacing in mm, foreground classes) of the two peers.
DATASETS = {
    "1.5mm": (501, "Dataset501_MoMEBenchPeer15mm", 1.5, 24),
    "3mm": (502, "Dataset502_MoMEBenchPeer3mm", 3.0, 117),
}
CASES = 4  # synthetic training cases per dataset: enough for a fingerprint, cheap to plan
CONFIGURATION = "3d_fullres"
TRAINER = "nnUNetTrainer"
PLANS = "nnUNetPlans"


def set_paths(root: Path) -> None:
    """nnU-Net reads its three folders from the environment, at import time: set them first."""
    for name in ("nnUNet_raw", "nnUNet_preprocessed", "nnUNet_results"):
        (root / name).mkdir(parents=True, exist_ok=True)
        os.environ[name] = str(root / name)


# ---------------------------------------------------------------------------- plan
def _write_cases(source_ct: Path, source_labels: Path, folder: Path, spacing: float, classes: int) -> list[str]:
    """CASES synthetic cases at ``spacing`` from the shared CT: case 0 whole, the others cropped by a
    seeded random 0-15 % margin per side, labels above ``classes`` set to background."""
    import numpy as np
    import SimpleITK as sitk

    ct = sitk.ReadImage(str(source_ct))
    labels = sitk.ReadImage(str(source_labels))
    size = np.asarray(ct.GetSize()) * np.asarray(ct.GetSpacing()) / spacing
    new_size = [int(round(s)) for s in size]
    resampled_ct = sitk.Resample(ct, new_size, sitk.Transform(), sitk.sitkLinear, ct.GetOrigin(),
                                 (spacing,) * 3, ct.GetDirection(), -1024.0, sitk.sitkInt16)
    resampled_labels = sitk.Resample(labels, new_size, sitk.Transform(), sitk.sitkNearestNeighbor, ct.GetOrigin(),
                                     (spacing,) * 3, ct.GetDirection(), 0, sitk.sitkUInt8)
    label_array = sitk.GetArrayFromImage(resampled_labels)
    label_array[label_array > classes] = 0
    clean = sitk.GetImageFromArray(label_array)
    clean.CopyInformation(resampled_labels)
    (folder / "imagesTr").mkdir(parents=True, exist_ok=True)
    (folder / "labelsTr").mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    names = []
    for case in range(CASES):
        low = np.zeros(3, int) if case == 0 else (rng.uniform(0, 0.15, 3) * new_size).astype(int)
        high = np.zeros(3, int) if case == 0 else (rng.uniform(0, 0.15, 3) * new_size).astype(int)
        extent = [int(s - a - b) for s, a, b in zip(new_size, low, high)]
        name = f"case_{case:03d}"
        sitk.WriteImage(sitk.RegionOfInterest(resampled_ct, extent, low.tolist()),
                        str(folder / "imagesTr" / f"{name}_0000.nii.gz"), True)
        sitk.WriteImage(sitk.RegionOfInterest(clean, extent, low.tolist()),
                        str(folder / "labelsTr" / f"{name}.nii.gz"), True)
        names.append(name)
    return names


def plan(root: Path, source_ct: Path, source_labels: Path, which: str) -> dict[str, Any]:
    """Raw dataset → nnU-Net's plans → a model folder with a random-weight checkpoint."""
    set_paths(root)
    import torch
    from nnunetv2.experiment_planning.plan_and_preprocess_api import extract_fingerprints, plan_experiments
    from nnunetv2.training.nnUNetTrainer.nnUNetTrainer import nnUNetTrainer
    from nnunetv2.utilities.label_handling.label_handling import determine_num_input_channels
    from nnunetv2.utilities.plans_handling.plans_handler import PlansManager

    dataset_id, name, spacing, classes = DATASETS[which]
    raw = root / "nnUNet_raw" / name
    started = time.perf_counter()
    cases = _write_cases(source_ct, source_labels, raw, spacing, classes)
    dataset_json = {
        "channel_names": {"0": "CT"},
        "labels": {"background": 0, **{f"class_{i}": i for i in range(1, classes + 1)}},
        "numTraining": len(cases),
        "file_ending": ".nii.gz",
        "description": "synthetic cases derived from the shared abdomen CT, for planning only (mome benchmarks)",
    }
    (raw / "dataset.json").write_text(json.dumps(dataset_json, indent=1))
    write_s = time.perf_counter() - started

    clock = time.perf_counter()
    extract_fingerprints([dataset_id], num_processes=1, check_dataset_integrity=True, show_progress_bar=False)
    plans_identifier = plan_experiments([dataset_id])  # the default ExperimentPlanner → nnUNetPlans
    plan_s = time.perf_counter() - clock
    preprocessed = root / "nnUNet_preprocessed" / name
    plans = json.loads((preprocessed / f"{plans_identifier}.json").read_text())

    # A trained-model folder as nnUNetv2_train leaves it, with random weights.
    plans_manager = PlansManager(plans)
    configuration = plans_manager.get_configuration(CONFIGURATION)
    network = nnUNetTrainer.build_network_architecture(
        plans_manager, configuration, determine_num_input_channels(plans_manager, configuration, dataset_json),
        plans_manager.get_label_manager(dataset_json).num_segmentation_heads, enable_deep_supervision=False)
    model_folder = root / "nnUNet_results" / name / f"{TRAINER}__{plans_identifier}__{CONFIGURATION}"
    (model_folder / "fold_0").mkdir(parents=True, exist_ok=True)
    (model_folder / "plans.json").write_text(json.dumps(plans, indent=1))
    (model_folder / "dataset.json").write_text(json.dumps(dataset_json, indent=1))
    torch.manual_seed(0)
    torch.save({"network_weights": network.state_dict(), "init_args": {"configuration": CONFIGURATION},
                "trainer_name": TRAINER, "inference_allowed_mirroring_axes": (0, 1, 2)},
               model_folder / "fold_0" / "checkpoint_final.pth")
    conf = plans["configurations"][CONFIGURATION]
    return {
        "dataset": name,
        "cases": len(cases),
        "model_folder": str(model_folder),
        "planner": "nnunetv2 ExperimentPlanner (default nnUNetPlans)",
        "spacing_mm": conf["spacing"],
        "patch_size": conf["patch_size"],
        "batch_size_planned": conf["batch_size"],
        "network": conf["architecture"]["network_class_name"],
        "features_per_stage": conf["architecture"]["arch_kwargs"].get("features_per_stage"),
        "n_stages": conf["architecture"]["arch_kwargs"].get("n_stages"),
        "classes": classes,
        "parameters": sum(p.numel() for p in network.parameters()),
        "median_image_size_in_voxels": conf.get("median_image_size_in_voxels"),
        "write_cases_s": round(write_s, 2),
        "plan_s": round(plan_s, 2),
    }


# ---------------------------------------------------------------------------- predict
def predict(model_folder: Path, ct: Path, output: Path, workdir: Path, device: str) -> dict[str, Any]:
    """One end-to-end prediction of ``ct`` the way TotalSegmentator runs nnU-Net: resample the CT to
    the network's spacing, write it to a temporary NIfTI, ``nnUNetPredictor`` on that file (its own
    preprocessing, sliding window, export), then the label map back onto the CT's grid (nearest
    neighbour) and written out. Seconds of each step, the network part timed inside nnU-Net.

    Two choices are kind to the peer: the resampling is SimpleITK's linear one, as MoME's
    (TotalSegmentator resamples with cubic splines, slower), and the prediction uses nnU-Net's
    single-process ``predict_from_files_sequential`` (TotalSegmentator's ``predict_from_files``
    starts worker processes, which only pay off for several images).
    """
    clock = time.perf_counter()
    import SimpleITK as sitk
    import torch
    from nnunetv2.inference.predict_from_raw_data import nnUNetPredictor

    imports_s = time.perf_counter() - clock
    dev = torch.device(device)
    if dev.type == "cuda":
        torch.zeros(1, device=dev)
        torch.cuda.synchronize()
    predictor = nnUNetPredictor(tile_step_size=0.5, use_gaussian=True, use_mirroring=False,
                                perform_everything_on_device=True, device=dev, verbose=False,
                                verbose_preprocessing=False, allow_tqdm=False)
    clock = time.perf_counter()
    predictor.initialize_from_trained_model_folder(str(model_folder), use_folds=(0,))
    load_s = time.perf_counter() - clock
    spacing = [float(s) for s in predictor.configuration_manager.spacing]

    # Time the network part from inside the run: wrap nnU-Net's own method (behaviour unchanged).
    network_s: list[float] = []
    shapes: list[list[int]] = []
    original = predictor.predict_logits_from_preprocessed_data

    def timed(data):
        if dev.type == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        out = original(data)
        if dev.type == "cuda":
            torch.cuda.synchronize()
        network_s.append(time.perf_counter() - start)
        shapes.append(list(data.shape))
        return out

    predictor.predict_logits_from_preprocessed_data = timed
    if dev.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    steps: dict[str, float] = {}
    start = time.perf_counter()
    image = sitk.ReadImage(str(ct))
    steps["read_ct"] = time.perf_counter() - start

    clock = time.perf_counter()
    size = [int(round(n * s / t)) for n, s, t in zip(image.GetSize(), image.GetSpacing(), spacing[::-1])]
    resampled = sitk.Resample(image, size, sitk.Transform(), sitk.sitkLinear, image.GetOrigin(), spacing[::-1],
                              image.GetDirection(), -1024.0, sitk.sitkInt16)
    sitk.WriteImage(resampled, str(workdir / "s01_0000.nii.gz"))
    steps["resample_and_write_input"] = time.perf_counter() - clock

    clock = time.perf_counter()
    predictor.predict_from_files_sequential([[str(workdir / "s01_0000.nii.gz")]], [str(workdir / "s01")],
                                            save_probabilities=False, overwrite=True)
    steps["nnunet_predict_from_files"] = time.perf_counter() - clock

    clock = time.perf_counter()
    labels = sitk.Resample(sitk.ReadImage(str(workdir / "s01.nii.gz")), image, sitk.Transform(),
                           sitk.sitkNearestNeighbor, 0, sitk.sitkUInt8)
    sitk.WriteImage(labels, str(output), True)
    steps["labels_to_ct_grid_and_write"] = time.perf_counter() - clock
    end_to_end = time.perf_counter() - start
    out: dict[str, Any] = {
        "imports_s": round(imports_s, 3),
        "load_model_s": round(load_s, 3),
        "end_to_end_s": round(end_to_end, 3),
        "steps_s": {k: round(v, 3) for k, v in steps.items()},
        "network_s": round(network_s[0], 3),
        "network_spacing_mm": spacing,
        "preprocessed_shape": shapes[0],
        "windows": len(predictor._internal_get_sliding_window_slicers(shapes[0][1:])),
        "output_bytes": output.stat().st_size,
        "torch_threads": torch.get_num_threads(),
    }
    if dev.type == "cuda":
        out["cuda_max_memory_allocated_bytes"] = int(torch.cuda.max_memory_allocated())
    return out


def main() -> int:
    job = json.loads(sys.argv[1])
    # The process settings `mome segment` gives itself (allocator, OpenMP wait policy), so that the
    # comparison is of the two methods, not of their process set-up. Before torch is imported.
    from mome.runtime import prefer_passive_waiting, tune_allocator

    prefer_passive_waiting()
    settings = {"allocator_tuned": tune_allocator(), "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY")}
    if job["kind"] == "plan":
        result = plan(Path(job["root"]), Path(job["ct"]), Path(job["labels"]), job["which"])
    else:
        set_paths(Path(job["root"]))
        result = predict(Path(job["model_folder"]), Path(job["ct"]), Path(job["output"]), Path(job["workdir"]),
                         job["device"])
    result["process_settings"] = settings
    result["peak_rss_bytes"] = common.peak_rss_bytes()
    common.emit_child_result(result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
