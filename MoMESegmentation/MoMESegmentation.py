"""MoMESegmentation: segment the structures you name in a CT (text-prompted, MoME engine).

The module, a widget shell that embeds ``MoMESegmentationLib.widget.Widget`` and exposes the logic
(``slicer.util.getModuleLogic("MoMESegmentation")``), and the in-Slicer self-test. All logic lives in
``MoMESegmentationLib`` (Qt-free, tested with pytest under slicer-core).
"""

import importlib
import logging
import sys

import qt
import slicer
from slicer.i18n import tr as _
from slicer.i18n import translate
from slicer.ScriptedLoadableModule import ScriptedLoadableModule, ScriptedLoadableModuleTest, ScriptedLoadableModuleWidget

from MoMESegmentationLib.errors import FriendlyError
from MoMESegmentationLib.logic import MoMESegmentationLogic  # the scripting API, importable from here

SUPPORTED = "3D Slicer 5.10 and 5.12"


class MoMESegmentation(ScriptedLoadableModule):
    def __init__(self, parent):
        ScriptedLoadableModule.__init__(self, parent)
        self.parent.title = _("MoME Segmentation")
        self.parent.categories = [translate("qSlicerAbstractCoreModule", "Segmentation")]
        self.parent.dependencies = []
        self.parent.contributors = ["MoME developers"]
        self.parent.helpText = _(
            "Type the structures you want (e.g. <i>liver, stomach, aorta</i>) and click <b>Segment</b>: "
            "MoME, a Mixture of Vision-Language Medical Experts, creates one labelled, coloured, terminology-coded "
            "segment per structure on exactly the CT's grid. Under the list, each structure shows how far the "
            "selected model can be trusted with it (validated, weak, not validated, with the figures). Structures "
            "the model has not learned, or was never trained on (zero-shot), are refused unless you tick the "
            "check box that appears for them; they are then named e.g. <i>spleen (not learned)</i>. A volume that "
            "does not look like a CT in Hounsfield units is stopped with a dialog that says why. Running it again "
            "updates the segments of the same structure and asks before replacing segments you edited. "
            "<i>Load sample CT</i> gives a CT to try it on.<br>"
            "Supported: {supported} (Python 3.12). Scripting: "
            "<code>slicer.util.getModuleLogic('MoMESegmentation').segment(volumeNode, 'liver, aorta')</code>.<br>"
            'See <a href="https://github.com/mome-seg/SlicerMoME">the project page</a>.'
        ).format(supported=SUPPORTED)
        self.parent.acknowledgementText = _(
            "MoME implements arXiv 2510.26996 (Mixture of Vision-Language Medical Experts). Structure codes derive "
            "from TotalSegmentator's SNOMED CT mapping (Apache-2.0); the sample CT is TotalSegmentator's example "
            "(Apache-2.0)."
        )
        # Registered once Slicer has started, not when the panel first opens: a scene with MoME
        # segments must load with their names and colours even if the panel is never shown.
        slicer.app.connect("startupCompleted()", registerTerminology)


def registerTerminology():
    from MoMESegmentationLib.engine import find_engine_root
    from MoMESegmentationLib.segmentation_io import load_terminology

    root = find_engine_root()
    path = root / "Resources" / "Vocabulary" / "MoME.term.json" if root is not None else None
    try:
        name = load_terminology(slicer.modules.terminologies.logic(), path) if path is not None else None
    except AttributeError as exc:  # no Terminologies module in this Slicer build
        name = None
        logging.warning(f"MoME terminology not registered: {exc}")
    if name is None:
        logging.warning(f"MoME terminology not registered (file: {path})")


class MoMESegmentationWidget(ScriptedLoadableModuleWidget):
    def __init__(self, parent=None):
        self.logic = None  # what slicer.util.getModuleLogic returns
        self.problem = None
        try:
            self.logic = MoMESegmentationLogic()
        except FriendlyError as exc:  # e.g. the engine files are missing: say so in the panel
            self.problem = exc
        self.widget = None
        ScriptedLoadableModuleWidget.__init__(self, parent)

    def setup(self):
        ScriptedLoadableModuleWidget.setup(self)
        if self.problem is not None:
            self.layout.addWidget(qt.QLabel(self.problem.message))
            return
        from MoMESegmentationLib.widget import Widget

        self.widget = Widget(logic=self.logic)
        self.layout.addWidget(self.widget)

    def enter(self):
        if self.widget is not None:
            self.widget.selectDefaultVolume()
            if not self.widget.running:
                self.widget.refreshModels()

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
    """What a user does, in Slicer: load a CT, segment it with the bundled model through the logic,
    check names, terminology and geometry, update the segmentation, cancel a run, be stopped before
    a guess (a structure the model has not learned, a blank volume). The same checks
    (``MoMESegmentationLib/user_workflow.py``) run under pytest with slicer-core."""

    def setUp(self):
        slicer.mrmlScene.Clear()

    def runTest(self):
        self.setUp()
        self.test_volume_export_keeps_geometry()
        self.test_segment_update_and_cancel()
        self.test_refusals()

    def test_volume_export_keeps_geometry(self):
        from MoMESegmentationLib import user_workflow

        user_workflow.check_volume_export(slicer.mrmlScene)
        self.delayDisplay("The volume leaves Slicer with its voxels and geometry")

    def test_segment_update_and_cancel(self):
        from MoMESegmentationLib import user_workflow

        logic = MoMESegmentationLogic()
        volume = user_workflow.ct_volume(logic)
        node = user_workflow.check_segment(logic, volume, device="cpu", fast=True)
        self.delayDisplay("Segmented with names, terminology and the volume's geometry")
        user_workflow.check_update(logic, volume, node, device="cpu", fast=True)
        self.delayDisplay("Updated the segmentation, keeping a segment drawn by hand")
        user_workflow.check_cancel(logic, volume, fast=True)
        self.delayDisplay("A cancelled run leaves nothing behind")

    def test_refusals(self):
        from MoMESegmentationLib import user_workflow

        logic = MoMESegmentationLogic()
        user_workflow.check_refusals(logic, user_workflow.ct_volume(logic))
        self.delayDisplay("Guesses are refused unless opted in; a blank volume is stopped before a run")
