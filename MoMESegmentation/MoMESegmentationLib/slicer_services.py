"""What the running Slicer provides to MoME's Qt-free logic, in one place for both modules.

The scene, ``PythonSlicer``, Slicer's startup environment and temporary folder, the package
installer (``slicer.packaging`` from Slicer 5.12; ``slicer.util.pip_install`` on 5.10), the PyTorch
extension and the confirmation dialog. Only Slicer's application needs this file; the logic takes
these as arguments, so tests give it a bare ``vtkMRMLScene`` instead. MoME Training imports it from
here (it depends on the MoME Segmentation module) rather than keeping a copy.
"""

from __future__ import annotations

import importlib
import logging
from pathlib import Path
from typing import Any

import slicer
import slicer.util

from .dependencies import REQUIREMENTS_FILE, DependencyManager, Packaging, PipInstallPackaging, SlicerPackaging
from .engine import use_bundled_engine
from .process import engine_command, find_python_slicer


def packaging() -> Packaging:
    """``slicer.packaging`` where this Slicer has it (5.12 and newer), else ``slicer.util.pip_install``."""
    try:  # slicer/__init__.py does not import it: a fresh session lacks the attribute
        slicer_packaging = importlib.import_module("slicer.packaging")
    except ImportError:  # Slicer 5.10
        return PipInstallPackaging(slicer.util.pip_install)
    return SlicerPackaging(slicer_packaging)


def torch_installer() -> Any | None:
    """``PyTorchUtilsLogic`` of the PyTorch extension, or None when that extension is not installed."""
    try:
        from PyTorchUtils import PyTorchUtilsLogic
    except ImportError as exc:
        logging.getLogger("MoME").info("PyTorch extension not available: %s", exc)
        return None
    return PyTorchUtilsLogic()


def confirm(title: str, text: str, details: str) -> bool:
    return bool(slicer.util.confirmOkCancelDisplay(text, title, detailedText=details))


def dependency_manager(requirements_file: Path = REQUIREMENTS_FILE) -> DependencyManager:
    return DependencyManager(packaging(), torch_installer(), confirm, requirements_file)


def engine_process_defaults() -> dict[str, Any]:
    """How MoME's background processes start here: the bundled engine in ``PythonSlicer``, from
    Slicer's startup environment (what ``slicer.util.launchConsoleProcess`` uses)."""
    root = use_bundled_engine()
    return {"python": find_python_slicer(), "engine_root": root, "environment": slicer.util.startupEnvironment()}


def scene() -> Any:
    return slicer.mrmlScene


def segmentation_logic_defaults() -> dict[str, Any]:
    process = engine_process_defaults()
    return {
        "scene": scene(),
        "command": engine_command(process["python"]),
        "engine_root": process["engine_root"],
        "environment": process["environment"],
        "temp_root": slicer.app.temporaryPath,  # the user's Slicer temporary folder (Application Settings)
        "dependencies": dependency_manager(),
    }


def segmentations_logic() -> Any:
    return slicer.modules.segmentations.logic()
