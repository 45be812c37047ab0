"""MoME Training: fine-tune a MoME model on the segmentations in the scene, then manage versions.

The module file only declares the module, embeds ``MoMETrainingLib.Widget``, exposes the logic
(``slicer.util.getModuleLogic("MoMETraining")``) and runs the tests; the work is done by the
Qt-free logic in ``MoMETrainingLib`` (tested under slicer-core with pytest:
``Testing/test_slicer_training_logic.py`` in the MoME repository).
"""

import importlib
import sys

import slicer
from slicer.i18n import tr as _
from slicer.i18n import translate
from slicer.ScriptedLoadableModule import (
    ScriptedLoadableModule,
    ScriptedLoadableModuleTest,
    ScriptedLoadableModuleWidget,
)



def __getattr__(name):
    """``from MoMETraining import MoMETrainingLogic`` (the scripting API). Imported on first use: its
    Lib needs MoMESegmentationLib, whose folder Slicer has on sys.path once that module is loaded."""
    if name == "MoMETrainingLogic":
        from MoMETrainingLib.logic import MoMETrainingLogic

        return MoMETrainingLogic
    raise AttributeError(f"module 'MoMETraining' has no attribute {name!r}")


class MoMETraining(ScriptedLoadableModule):
    def __init__(self, parent):
        ScriptedLoadableModule.__init__(self, parent)
        self.parent.title = _("MoME Training")
        self.parent.categories = [translate("qSlicerAbstractCoreModule", "Segmentation")]
        self.parent.dependencies = ["MoMESegmentation"]  # its Lib installs the engine's packages
        self.parent.contributors = ["MoME developers"]
        self.parent.helpText = _(
            "Fine-tune a MoME text-prompted segmentation model on your own labelled CT scans. "
            "Pair CT volumes with segmentations (segments are matched to MoME's classes by terminology, "
            "then by name; a case only needs the structures it annotates), build the dataset, and train "
            "in the background with live loss and validation Dice. Stop saves a checkpoint; Resume continues. "
            "Each finished run becomes a new model version: compare it with its base on the held-out case, "
            "set it active, roll back, or export it as a .zip. Nothing leaves this computer. "
            "Supported: 3D Slicer 5.10 and 5.12 (Python 3.12). Scripting: "
            "<code>slicer.util.getModuleLogic('MoMETraining').train([(ctNode, segmentationNode)])</code>."
        )
        self.parent.acknowledgementText = _(
            "Implements the Mixture of Vision-Language Medical Experts (MoME, arXiv 2510.26996). "
            "Structure follows KitwareMedical/SlicerNNUnet."
        )


class MoMETrainingWidget(ScriptedLoadableModuleWidget):
    def __init__(self, parent=None):
        from MoMESegmentationLib.errors import FriendlyError
        from MoMETrainingLib.logic import MoMETrainingLogic

        try:
            self.logic = MoMETrainingLogic()  # what slicer.util.getModuleLogic returns
        except FriendlyError:  # the engine files are missing: the panel says so
            self.logic = None
        self.widget = None
        ScriptedLoadableModuleWidget.__init__(self, parent)

    def setup(self):
        ScriptedLoadableModuleWidget.setup(self)
        from MoMETrainingLib.widget import Widget

        self.widget = Widget(logic=self.logic)
        self.layout.addWidget(self.widget)

    def cleanup(self):
        if self.widget is not None:
            self.widget.cleanup()

    def onReload(self):
        # importlib, not imp (gone in Python 3.12, which Slicer 5.10 and 5.12 ship)
        import MoMETrainingLib

        for name in MoMETrainingLib.SUBMODULES:
            full = f"MoMETrainingLib.{name}"
            if full in sys.modules:
                importlib.reload(sys.modules[full])
        ScriptedLoadableModuleWidget.onReload(self)


class MoMETrainingTest(ScriptedLoadableModuleTest):
    """In-Slicer smoke test; the logic's real tests run under pytest with slicer-core."""

    def setUp(self):
        slicer.mrmlScene.Clear()

    def runTest(self):
        self.setUp()
        self.test_widget_builds()
        self.test_dataset_builder_in_slicer()

    def test_widget_builds(self):
        from MoMETrainingLib.logic import MoMETrainingLogic
        from MoMETrainingLib.widget import Widget

        widget = Widget(logic=MoMETrainingLogic(), showDialogs=False)
        self.assertGreaterEqual(widget.ui.presetComboBox.count, 2)
        widget.cleanup()

    def test_dataset_builder_in_slicer(self):
        import tempfile

        import numpy as np
        from MoMETrainingLib.logic import MoMETrainingLogic

        volume = slicer.mrmlScene.AddNewNodeByClass("vtkMRMLScalarVolumeNode", "ct")
        slicer.util.updateVolumeFromArray(volume, np.full((8, 32, 32), 40, np.int16))
        segmentation = slicer.mrmlScene.AddNewNodeByClass("vtkMRMLSegmentationNode", "labels")
        segmentation.SetReferenceImageGeometryParameterFromVolumeNode(volume)
        segmentId = segmentation.GetSegmentation().AddEmptySegment("", "liver")
        mask = np.zeros((8, 32, 32), np.uint8)
        mask[2:6, 8:20, 8:20] = 1
        slicer.util.updateSegmentBinaryLabelmapFromArray(mask, segmentation, segmentId, volume)
        with tempfile.TemporaryDirectory() as work:
            report = MoMETrainingLogic().build_dataset([(volume, segmentation)], work)
            self.assertTrue(report.ok, [p.message for p in report.problems])
            self.assertEqual(report.class_counts()["liver"]["train"], 1)
        self.delayDisplay("MoMETraining tests passed")
