"""recipes/mome-mini-2/report.py: the model card's side-by-side table is computed from the results."""

from __future__ import annotations

import importlib.util
from pathlib import Path

REPORT = Path(__file__).resolve().parents[1] / "recipes" / "mome-mini-2" / "report.py"


def load_report():
    spec = importlib.util.spec_from_file_location("mome_mini_2_report", REPORT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def result(per_class: dict) -> dict:
    return {"per_class": {k: {"dice": d, "dice_sd": sd, "nsd": d / 2, "nsd_sd": None, "cases": n}
                          for k, (d, sd, n) in per_class.items()}}


def test_table_shows_mean_sd_n_per_model_and_compares_means_on_shared_structures_only():
    report = load_report()
    text = report.table({
        "MoME": result({"brainstem": (0.8, 0.1, 83), "mandible": (0.92, 0.05, 83), "liver": (0.5, None, 1)}),
        "Universal": result({"brainstem": (0.6, 0.2, 83), "mandible": (0.72, 0.1, 83)}),
    })
    rows = {line.split(" | ")[0].strip("| "): line for line in text.splitlines()[2:]}
    assert rows["brainstem"] == "| brainstem | 83 | 0.80 ± 0.10 | 0.40 | 0.60 ± 0.20 | 0.30 |"
    assert rows["liver"] == "| liver | 1 | 0.50 | 0.25 | — | — |"  # one patient: no sd; not evaluated: a dash
    # the means cover brainstem and mandible, which both models were evaluated on, not MoME's liver
    assert rows["**mean**"] == "| **mean** | 2 structures | **0.86** | 0.43 | **0.66** | 0.33 |"
