"""Start-up settings of the segmentation process (mome/runtime.py): the OpenMP wait policy is set
only where it can still take effect, and MONAI loads without its optional packages yet works, with
a normal import as the fallback. Each check runs in a fresh interpreter, where imports start clean."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from importlib.util import find_spec

import pytest


def run_fresh(code: str, env: dict[str, str] | None = None, cwd=None) -> dict:
    """Run ``code`` in a new interpreter; it prints one JSON line as its last output."""
    done = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True,
                          env={**os.environ, **(env or {})}, cwd=cwd, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_passive_waiting_is_set_before_torch_and_never_overrides_a_choice():
    env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    code = """
        import json, os
        from mome.runtime import prefer_passive_waiting
        first = prefer_passive_waiting()
        print(json.dumps({"first": first, "policy": os.environ.get("OMP_WAIT_POLICY")}))
    """
    unset = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True,
                           env=env, timeout=120)
    assert json.loads(unset.stdout) == {"first": True, "policy": "PASSIVE"}
    chosen = run_fresh(code, {"OMP_WAIT_POLICY": "ACTIVE"})
    assert chosen == {"first": False, "policy": "ACTIVE"}
    too_late = subprocess.run(
        [sys.executable, "-c", "import json, os, torch\nfrom mome.runtime import prefer_passive_waiting\n"
         "print(json.dumps([prefer_passive_waiting(), os.environ.get('OMP_WAIT_POLICY')]))"],
        capture_output=True, text=True, env=env, timeout=300)
    assert json.loads(too_late.stdout.strip().splitlines()[-1]) == [False, None]


@pytest.mark.skipif(find_spec("monai") is None, reason="needs MONAI")
def test_monai_loads_without_optional_packages_and_the_network_still_runs():
    installed = [p for p in ("torchvision", "transformers", "matplotlib", "sklearn") if find_spec(p)]
    # torch is not imported first, as in `mome segment`: it loads under the guard too.
    result = run_fresh("""
        import json, sys
        from mome.runtime import import_monai_lean
        lean = import_monai_lean()
        loaded = sorted(p for p in ("torchvision", "transformers", "matplotlib", "sklearn") if p in sys.modules)
        import torch
        from mome.inference.sliding import sliding_window_probabilities
        from mome.model import MoME, MoMEConfig
        model = MoME(MoMEConfig(feature_size=12, text_dim=8)).eval()
        image = torch.rand(1, 1, 64, 64, 40).half()
        probs = sliding_window_probabilities(model, image, torch.randn(2, 8), (64, 64, 32))
        later = []
        for name in ("torchvision", "matplotlib"):
            try:
                __import__(name)
                later.append(name)
            except ImportError:
                pass
        print(json.dumps({"lean": lean, "loaded": loaded, "shape": list(probs.shape), "later": later}))
    """)
    assert result["lean"] is True
    assert result["loaded"] == []  # none of the optional packages came in with MONAI
    assert result["shape"] == [2, 64, 64, 40]
    assert result["later"] == [p for p in ("torchvision", "matplotlib") if p in installed]  # importable again


@pytest.mark.skipif(find_spec("monai") is None, reason="needs MONAI")
def test_a_hard_requirement_of_a_hidden_package_falls_back_to_a_normal_import(tmp_path):
    """A module that imports a hidden package unconditionally: the lean import gives up and MONAI
    and the module are imported normally, nothing left half-imported."""
    site = tmp_path / "site-packages"  # installed packages are the ones hidden
    for package, code in (("needs_hidden", "import hidden_dependency\n"), ("hidden_dependency", "")):
        (site / package).mkdir(parents=True)
        (site / package / "__init__.py").write_text(code)
    result = run_fresh("""
        import json, sys
        import torch
        from mome.runtime import MONAI_ALLOWED_PACKAGES, import_monai_lean
        lean = import_monai_lean(("monai.networks.nets.swin_unetr", "needs_hidden"),
                                 MONAI_ALLOWED_PACKAGES | {"needs_hidden"})
        from monai.networks.nets import SwinUNETR
        print(json.dumps({"lean": lean, "dependency": "hidden_dependency" in sys.modules,
                          "finders": [type(f).__name__ for f in sys.meta_path]}))
    """, {"PYTHONPATH": f"{site}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"})
    assert result["lean"] is False
    assert result["dependency"] is True
    assert "_HideOtherPackages" not in result["finders"]


def test_packages_are_hidden_from_the_importing_thread_only(tmp_path):
    """`mome segment` checks its input file in a thread while MONAI loads: nothing that thread imports
    may be hidden from it."""
    import threading

    from mome.runtime import _HideOtherPackages

    site = tmp_path / "site-packages"
    (site / "late_package").mkdir(parents=True)
    (site / "late_package" / "__init__.py").write_text("")
    sys.path.insert(0, str(site))
    try:
        finder = _HideOtherPackages(frozenset())
        with pytest.raises(ModuleNotFoundError, match="hidden while MONAI loads"):
            finder.find_spec("late_package")
        seen = []
        other = threading.Thread(target=lambda: seen.append(finder.find_spec("late_package")))
        other.start()
        other.join()
        assert seen == [None]  # the normal finders decide for the other thread
    finally:
        sys.path.remove(str(site))


@pytest.mark.skipif(find_spec("monai") is None, reason="needs MONAI")
def test_mome_segment_keeps_monai_lean_and_skips_the_dicom_stack(tmp_path):
    """A real `mome segment` of the bundled sample to .seg.nrrd: nothing it imports before MONAI may
    pull in scipy (MONAI would then import scipy.signal and scipy.stats, ~0.5 s of every click), and
    pydicom/highdicom load only for DICOM input or DICOM-SEG output."""
    result = run_fresh(f"""
        import json, sys
        from mome.cli.main import main
        from mome.resource_files import sample
        code = main(["segment", str(sample("example_ct").path), "--prompts", "liver", "--fast", "--device", "cpu",
                     "--output", {str(tmp_path / "out.seg.nrrd")!r}, "--progress", "none"])
        print(json.dumps({{"code": code, "loaded": sorted(m for m in ("scipy.signal", "scipy.stats", "pydicom",
                                                                      "highdicom") if m in sys.modules)}}))
    """)
    assert result == {"code": 0, "loaded": []}
