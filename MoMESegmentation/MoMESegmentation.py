"""MoMESegmentation: segment the structures you name in a CT (text-prompted, MoME engine).

The module class, a thin widget shell that embeds ``MoMESegmentationLib.widget.Widget``, and the
in-Slicer self-test. All logic lives in ``MoMESegmentationLib`` (Qt-free, tested with pytest).
"""

import importlib
import os
import sys

import slicer
from slicer.i18n import tr as _
from slicer.i18n import translate
from slicer.ScriptedLoadableModule import ScriptedLoadableModule, ScriptedLoadableModuleTest, ScriptedLoadableModuleWidget


class MoMESegmentation(ScriptedLoadableModule):
    def __init__(self, parent):
        ScriptedLoadableModule.__init__(self, parent)
        self.parent.title = _("MoME Segmentation")
        self.parent.categories = [translate("qSlicerAbstractCoreModule", "Segmentation")]
        self.parent.dependencies = []
        self.parent.contributors = ["MoME developers"]
        self.parent.helpText = _(
            "Type the structures you want (e.g. <i>liver, spleen, left kidney, pancreas tumour</i>) and click "
            "<b>Segment</b>: MoME, a Mixture of Vision-Language Medical Experts, creates one labelled, coloured, "
            "terminology-coded segment per structure on exactly the CT's grid. Running it again updates the "
            "segments of the same name and asks before replacing segments you edited.<br>"
            'See <a href="https://github.com/mome-seg/SlicerMoME">the project page</a>.'
        )
        self.parent.acknowledgementText = _(
            "MoME implements arXiv 2510.26996 (Mixture of Vision-Language Medical Experts). Structure codes derive "
            "from TotalSegmentator's SNOMED CT mapping (Apache-2.0)."
        )


class MoMESegmentationWidget(ScriptedLoadableModuleWidget):
    def __init__(self, parent=None):
        ScriptedLoadableModuleWidget.__init__(self, parent)
        self.widget = None

    def setup(self):
        ScriptedLoadableModuleWidget.setup(self)
        from MoMESegmentationLib.widget import Widget

        self.widget = Widget()
        self.layout.addWidget(self.widget)

    def enter(self):
        if self.widget is not None:
            self.widget.select_default_volume()
            if not self.widget.running:
                self.widget.refresh_models()

    def cleanup(self):
        if self.widget is not None:
            self.widget.cleanup()

    def onReload(self):
        """Reload MoMESegmentationLib's submodules too (``imp`` is gone in Python 3.12)."""
        import MoMESegmentationLib

        for name in MoMESegmentationLib.SUBMODULES:
            full = f"MoMESegmentationLib.{name}"
            if full in sys.modules:
                importlib.reload(sys.modules[full])
        ScriptedLoadableModuleWidget.onReload(self)


class MoMESegmentationTest(ScriptedLoadableModuleTest):
    """In-Slicer smoke test that needs no torch: the volume leaves Slicer with its voxels and geometry.

    The thorough tests (real engine, oblique geometry, update rules, cancel) run under pytest with
    slicer-core: ``Testing/test_slicer_segmentation_logic.py`` in the source repository.
    """

    def setUp(self):
        slicer.mrmlScene.Clear()

    def runTest(self):
        self.setUp()
        self.test_volume_to_engine_file_keeps_geometry()

    def test_volume_to_engine_file_keeps_geometry(self):
        import tempfile

        import numpy as np
        from MoMESegmentationLib.segmentation_io import write_volume_for_engine

        volume = slicer.mrmlScene.AddNewNodeByClass("vtkMRMLScalarVolumeNode", "MoME test volume")
        slicer.util.updateVolumeFromArray(volume, np.arange(4 * 5 * 6, dtype=np.int16).reshape(4, 5, 6))
        volume.SetSpacing(0.7, 0.8, 2.5)
        volume.SetOrigin(10, -20, 30)
        with tempfile.TemporaryDirectory() as folder:
            path = write_volume_for_engine(volume, os.path.join(folder, "input.nrrd"))
            loaded = slicer.util.loadVolume(str(path))
            self.assertTrue(np.array_equal(slicer.util.arrayFromVolume(loaded), slicer.util.arrayFromVolume(volume)))
            self.assertEqual(tuple(round(s, 4) for s in loaded.GetSpacing()), (0.7, 0.8, 2.5))
        self.delayDisplay("MoMESegmentation: volume export keeps voxels and geometry")
