"""The MoMESegmentation panel: a thin Qt layer over the Qt-free logic in this package.

Everything that decides something (what to run, how to read the engine, how to import) lives in
``logic``/``segmentation_job``/``segmentation_io``/``targets``/``dependencies``; this class wires Qt
widgets to it, keeps the panel's state in the scene's parameter node (``parameter_node``), shows
progress and asks the user when a decision is theirs. The logic, dependency manager and model
catalog are constructor-injected. Qt-facing names are camelCase, as in Slicer (and MoMETraining).
"""

from __future__ import annotations

import html
import logging
import sys
import traceback
from pathlib import Path
from typing import Any

import qt
import slicer
import vtk
from slicer.i18n import tr as _
from slicer.util import VTKObservationMixin

from .dependencies import DependencyManager
from .engine import engine_info, use_bundled_engine
from .errors import FriendlyError, InputCheckError
from .gpu import gpu_advice, query_gpu
from .logic import MoMESegmentationLogic, structure_lines, summary
from .models import HubModelCatalog, ModelCatalog, ModelChoice, default_index
from .parameter_node import MoMESegmentationParameterNode, parameterNode
from .parameters import DEVICES, SEGMENT_ANYWAY_LABEL
from .process import EventKind
from .segmentation_io import EDITED, set_show_3d
from .segmentation_job import JobState
from .targets import (
    CAUTION,
    REFUSED,
    UNKNOWN,
    add_preset,
    completion_names,
    current_item,
    preset_coverage,
    preset_names,
    replace_current_item,
)

log = logging.getLogger("MoME")
RESOURCES = Path(__file__).resolve().parent.parent / "Resources"
POLL_INTERVAL_MS = 250
#: Colours of the lines under the structures (refused and unknown in red, weak or guessed in amber).
LEVEL_COLOURS = {REFUSED: "#b00020", UNKNOWN: "#b00020", CAUTION: "#a35f00"}
SUPPORTED_SLICER = "3D Slicer 5.10 and 5.12 (Python 3.12)"


class Widget(qt.QWidget, VTKObservationMixin):
    def __init__(self, logic: MoMESegmentationLogic | None = None, dependencies: DependencyManager | None = None,
                 catalog: ModelCatalog | None = None, showDialogs: bool = True, parent: Any = None):
        qt.QWidget.__init__(self, parent)
        VTKObservationMixin.__init__(self)
        self.engineRoot = use_bundled_engine()
        self.logic = logic or MoMESegmentationLogic()
        self.dependencies = dependencies or self.logic.dependencies
        self.catalog = catalog or HubModelCatalog()
        self.showDialogs = showDialogs
        self.modelChoices: list[ModelChoice] = []
        self.running = False
        self.targetsOk = False
        self._parameterNode: MoMESegmentationParameterNode | None = None
        self._updatingGui = False

        layout = qt.QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        uiWidget = slicer.util.loadUI(str(RESOURCES / "UI" / "MoMESegmentation.ui"))
        layout.addWidget(uiWidget)
        self.ui = slicer.util.childWidgetVariables(uiWidget)
        uiWidget.setMRMLScene(slicer.mrmlScene)

        self.timer = qt.QTimer()
        self.timer.setInterval(POLL_INTERVAL_MS)
        self.timer.connect("timeout()", self.onTimer)

        self._setupTargets()
        for value, label in DEVICES:
            self.ui.deviceComboBox.addItem(_(label), value)
        self.refreshModels()

        for selector in (self.ui.inputVolumeSelector, self.ui.outputSegmentationSelector):
            selector.connect("currentNodeChanged(vtkMRMLNode*)", self.updateParameterNodeFromGui)
        for checkBox in (self.ui.fastCheckBox, self.ui.allowNotLearnedCheckBox, self.ui.allowZeroShotCheckBox,
                         self.ui.show3DCheckBox):
            checkBox.connect("toggled(bool)", self.updateParameterNodeFromGui)
        self.ui.deviceComboBox.connect("currentIndexChanged(int)", self.updateParameterNodeFromGui)
        self.ui.modelComboBox.connect("currentIndexChanged(int)", self.updateParameterNodeFromGui)
        self.ui.segmentButton.connect("clicked(bool)", self.onSegmentOrCancel)
        self.ui.show3DCheckBox.connect("toggled(bool)", self.onShow3D)
        self.ui.refreshModelsButton.connect("clicked(bool)", lambda _checked=False: self.refreshModels())
        self.ui.loadSampleButton.connect("clicked(bool)", self.onLoadSample)
        self.ui.packageInfoButton.connect("clicked(bool)", self.onPackageInfo)
        self.ui.reinstallPackagesButton.connect("clicked(bool)", self.onReinstallPackages)

        self.addObserver(slicer.mrmlScene, slicer.mrmlScene.StartCloseEvent, self.onSceneStartClose)
        self.addObserver(slicer.mrmlScene, slicer.mrmlScene.EndCloseEvent, self.onSceneEndClose)
        self.ui.aboutLabel.setText(self.aboutText())
        self.initializeParameterNode()
        self.setRunning(False)

    # -- setup ---------------------------------------------------------------------------------

    def _setupTargets(self) -> None:
        from mome.vocabulary import load_vocabulary

        self.vocabulary = load_vocabulary()
        edit = self.ui.targetsLineEdit
        self.completer = qt.QCompleter(completion_names(self.vocabulary), edit)
        self.completer.setCaseSensitivity(qt.Qt.CaseInsensitive)
        self.completer.setFilterMode(qt.Qt.MatchContains)
        self.completer.setCompletionMode(qt.QCompleter.PopupCompletion)
        self.completer.setWidget(edit)  # not setCompleter: completion applies to the item being typed
        self.completer.connect("activated(QString)", self.onCompletionChosen)
        edit.connect("textEdited(QString)", self.onTargetsEdited)
        edit.connect("textChanged(QString)", lambda _text: self.onTargetsChanged())
        self.ui.presetComboBox.addItem(_("Add preset..."), "")
        for name in preset_names():
            self.ui.presetComboBox.addItem(name, name)
        self.ui.presetComboBox.connect("activated(int)", self.onPresetChosen)
        self.ui.targetsStatusLabel.setTextFormat(qt.Qt.RichText)

    def aboutText(self) -> str:
        info = engine_info(self.engineRoot)
        return (f"{info.describe()}\nSupported: {SUPPORTED_SLICER}; this is Slicer "
                f"{getattr(slicer.app, 'applicationVersion', '?')} with Python {sys.version.split()[0]}.")

    def refreshModels(self) -> None:
        remembered = self.currentModel()
        self.modelChoices = self.catalog.choices()
        combo = self.ui.modelComboBox
        wasBlocked = combo.blockSignals(True)
        combo.clear()
        for index, choice in enumerate(self.modelChoices):
            combo.addItem(choice.label)
            if choice.description:
                combo.setItemData(index, choice.description, qt.Qt.ToolTipRole)
        if self.modelChoices:
            combo.setCurrentIndex(default_index(self.modelChoices, remembered))
        combo.blockSignals(wasBlocked)

    def currentModel(self) -> str | None:
        index = self.ui.modelComboBox.currentIndex
        return self.modelChoices[index].argument if 0 <= index < len(self.modelChoices) else None

    def selectDefaultVolume(self) -> None:
        """Select the volume shown in the red slice view, else the first volume, if none is chosen."""
        if self._parameterNode is None or self._parameterNode.inputVolume is not None:
            return
        try:
            composite = slicer.app.layoutManager().sliceWidget("Red").sliceLogic().GetSliceCompositeNode()
            node = slicer.mrmlScene.GetNodeByID(composite.GetBackgroundVolumeID() or "")
        except AttributeError:
            node = None
        node = node or slicer.mrmlScene.GetFirstNodeByClass("vtkMRMLScalarVolumeNode")
        if node is not None and not node.IsA("vtkMRMLLabelMapVolumeNode"):
            self._parameterNode.inputVolume = node

    # -- parameter node (the panel's state, saved with the scene) ------------------------------

    def initializeParameterNode(self) -> None:
        self.setParameterNode(parameterNode())
        self.selectDefaultVolume()

    def setParameterNode(self, node: MoMESegmentationParameterNode | None) -> None:
        if self._parameterNode is not None:
            self.removeObserver(self._parameterNode.parameterNode, vtk.vtkCommand.ModifiedEvent,
                                self.updateGuiFromParameterNode)
        self._parameterNode = node
        if node is not None:
            self.addObserver(node.parameterNode, vtk.vtkCommand.ModifiedEvent, self.updateGuiFromParameterNode)
        self.updateGuiFromParameterNode()

    def updateGuiFromParameterNode(self, *_args: Any) -> None:
        node = self._parameterNode
        if node is None or self._updatingGui:
            return
        self._updatingGui = True
        try:
            self.ui.inputVolumeSelector.setCurrentNode(node.inputVolume)
            self.ui.outputSegmentationSelector.setCurrentNode(node.outputSegmentation)
            if self.ui.targetsLineEdit.text != node.prompts:
                self.ui.targetsLineEdit.setText(node.prompts)
            self.ui.deviceComboBox.setCurrentIndex(max(0, self.ui.deviceComboBox.findData(node.device)))
            self.ui.fastCheckBox.setChecked(node.fast)
            self.ui.allowNotLearnedCheckBox.setChecked(node.allowNotLearned)
            self.ui.allowZeroShotCheckBox.setChecked(node.allowZeroShot)
            self.ui.show3DCheckBox.setChecked(node.show3D)
            models = [c.argument or "" for c in self.modelChoices]
            if node.model in models:
                self.ui.modelComboBox.setCurrentIndex(models.index(node.model))
        finally:
            self._updatingGui = False
        self.checkTargets()

    def updateParameterNodeFromGui(self, *_args: Any) -> None:
        node = self._parameterNode
        if node is None or self._updatingGui:
            return
        with slicer.util.NodeModify(node.parameterNode):
            node.inputVolume = self.ui.inputVolumeSelector.currentNode()
            node.outputSegmentation = self.ui.outputSegmentationSelector.currentNode()
            node.prompts = self.ui.targetsLineEdit.text
            node.device = self.ui.deviceComboBox.currentData or "auto"
            node.fast = self.ui.fastCheckBox.checked
            node.allowNotLearned = self.ui.allowNotLearnedCheckBox.checked
            node.allowZeroShot = self.ui.allowZeroShotCheckBox.checked
            node.show3D = self.ui.show3DCheckBox.checked
            node.model = self.currentModel() or ""
        self.updateButtons()

    # -- structures line edit ------------------------------------------------------------------

    def onTargetsEdited(self, text: str) -> None:
        prefix = current_item(text, self.ui.targetsLineEdit.cursorPosition)
        if not prefix:
            self.completer.popup().hide()
            return
        self.completer.setCompletionPrefix(prefix)
        if self.completer.completionCount() > 0:
            self.completer.complete()
        else:
            self.completer.popup().hide()

    def onCompletionChosen(self, choice: str) -> None:
        edit = self.ui.targetsLineEdit
        text, cursor = replace_current_item(edit.text, choice, edit.cursorPosition)
        edit.setText(text)
        edit.setCursorPosition(cursor)

    def onPresetChosen(self, index: int) -> None:
        name = self.ui.presetComboBox.itemData(index) if index > 0 else ""
        self.ui.presetComboBox.setCurrentIndex(0)
        if not name:
            return
        params = self._parameterNode.runParameters()
        meta, _problem = self.logic.model_metadata(params.model)
        text, leftOut = add_preset(self.ui.targetsLineEdit.text, name, self.vocabulary, meta,
                                   params.allow_zero_shot, params.allow_not_learned)
        self.ui.targetsLineEdit.setText(text)
        if leftOut:  # a preset must not fill the list with structures the model would refuse
            self.setStatus(_("Added from '{preset}' what {model} segments. Left out: {names}.").format(
                preset=name, model=f"{meta.get('name')} {meta.get('version')}",
                names=", ".join(f"{r.name} ({r.label})" for r in leftOut)))

    def onTargetsChanged(self) -> None:
        self.updateParameterNodeFromGui()
        self.checkTargets()

    def checkTargets(self) -> None:
        """Show, as the user types, each structure's reliability with the selected model, and keep
        Segment off while a structure is listed that the engine would refuse."""
        if self._parameterNode is None:
            return
        params = self._parameterNode.runParameters()
        params.prompts = self.ui.targetsLineEdit.text
        check = self.logic.check_structures(params, self.vocabulary)
        lines = [f'<span style="color: {LEVEL_COLOURS[level]}">{html.escape(text)}</span>' if level in LEVEL_COLOURS
                 else html.escape(text) for level, text in check.lines()]
        self.ui.targetsStatusLabel.setText("<br>".join(lines))
        self.ui.targetsStatusLabel.toolTip = (
            _("{model} segments: {names}").format(model=check.model, names=", ".join(check.offer)) if check.model
            else check.model_problem)
        # The opt-ins show when they matter, and whenever ticked: an active opt-in is never hidden.
        statuses = {r.status for r in check.reliability}
        self.ui.allowNotLearnedCheckBox.visible = "not_learned" in statuses or params.allow_not_learned
        self.ui.allowZeroShotCheckBox.visible = bool("zero_shot" in statuses or check.unknown
                                                     or params.allow_zero_shot) and check.zero_shot_possible
        self.updatePresetLabels(params)
        self.targetsOk = check.ok
        self.updateButtons()

    def updatePresetLabels(self, params: Any) -> None:
        """Each preset says how many of its structures the selected model segments."""
        meta, _problem = self.logic.model_metadata(params.model)
        combo = self.ui.presetComboBox
        for index in range(1, combo.count):
            name = combo.itemData(index)
            if meta is None:
                combo.setItemText(index, name)
                continue
            usable, total = preset_coverage(name, self.vocabulary, meta, params.allow_zero_shot,
                                            params.allow_not_learned)
            combo.setItemText(index, _("{preset} ({usable} of {total})").format(preset=name, usable=usable,
                                                                                total=total))

    def updateButtons(self, *_args: Any) -> None:
        if self.running:
            return
        ready = self.ui.inputVolumeSelector.currentNode() is not None and self.targetsOk
        self.ui.segmentButton.enabled = ready
        self.ui.segmentButton.toolTip = _("Segment the listed structures") if ready else _(
            "Select a CT volume and type the structures to segment")

    # -- running -------------------------------------------------------------------------------

    def setRunning(self, running: bool) -> None:
        self.running = running
        self.ui.segmentButton.text = _("Cancel") if running else _("Segment")
        for name in ("inputVolumeSelector", "outputSegmentationSelector", "targetsLineEdit", "presetComboBox",
                     "modelComboBox", "deviceComboBox", "fastCheckBox", "allowNotLearnedCheckBox",
                     "allowZeroShotCheckBox", "refreshModelsButton", "loadSampleButton", "reinstallPackagesButton"):
            getattr(self.ui, name).enabled = not running
        if running:
            self.ui.segmentButton.enabled = True
        else:
            self.updateButtons()

    def onSegmentOrCancel(self, _checked: bool = False) -> None:
        if self.running:
            self.cancel()
        else:
            self.segment()

    def segment(self, skipInputCheck: bool = False) -> None:
        params = self._parameterNode.runParameters()
        params.skip_input_check = skipInputCheck
        volume = self.ui.inputVolumeSelector.currentNode()
        self.ui.logTextEdit.clear()
        self.ui.progressBar.setValue(0)
        try:
            # First what the user may need to decide: a volume that does not look like CT.
            params = self.logic.confirm_run(volume, params, self.askSegmentAnyway)
            if params is None:
                self.setStatus(_("Not segmented: the volume does not look like a CT in Hounsfield units."))
                return
            params.device = self.checkGpu(params.device)
            if params.device is None:
                return
            self.setStatus(_("Checking MoME's Python packages..."))
            if self.dependencies is not None:
                self.dependencies.ensure()  # asks once; on failure a DependencyError says what to do
            self.logic.start(volume, params)
        except FriendlyError as exc:
            self.reportError(exc)
            return
        except Exception as exc:  # noqa: BLE001 - never leave the panel half-way: say it, stay usable
            self.reportError(FriendlyError(_("MoME could not start because of an unexpected error. The details "
                                             "can help the developers."), f"{exc!r}\n{traceback.format_exc()}"))
            return
        self.setRunning(True)
        self.setStatus(_("Starting MoME..."))
        self.timer.start()

    def checkGpu(self, device: str) -> str | None:
        """The device to use after the GPU-memory check (None: the user cancelled)."""
        advice = gpu_advice(device, query_gpu() if device != "cpu" else None)
        if advice is None:
            return device
        self.appendLog(advice)
        if not self.showDialogs:
            return "cpu"
        choice = self.askChoice(_("Not enough GPU memory?"), qt.QMessageBox.Warning, advice, _("Use CPU"),
                                _("Try the GPU anyway"))
        return {"safe": "cpu", "risky": "cuda"}.get(choice)

    def askSegmentAnyway(self, error: InputCheckError) -> bool:
        """The input-check dialog: the problem in words; "Segment anyway" or Cancel (the default)."""
        self.appendLog(error.message)
        if not self.showDialogs:
            return False
        choice = self.askChoice(_("This does not look like a CT"), qt.QMessageBox.Warning, error.message, None,
                                _(SEGMENT_ANYWAY_LABEL))
        return choice == "risky"

    def cancel(self) -> None:
        self.timer.stop()
        self.setStatus(_("Cancelling..."))
        slicer.app.processEvents()
        self.logic.cancel()
        self.finish()

    def onTimer(self) -> None:
        job = self.logic.job
        for event in self.logic.poll():
            if event.kind is EventKind.LOG:
                self.appendLog(event.message)
            elif event.kind is EventKind.PROGRESS:
                self.appendLog(f"[{event.stage}] {event.message}")
            elif event.kind is EventKind.ERROR:
                self.appendLog(f"ERROR: {event.message}")
        if job is None:
            self.timer.stop()
            self.setRunning(False)
            return
        self.ui.progressBar.setValue(int(1000 * job.fraction))
        if job.running:
            self.setStatus(f"{job.message} ({job.elapsed:.0f} s)")
            return
        self.timer.stop()
        self.finish()

    def finish(self) -> None:
        job = self.logic.job
        outcome = job.outcome if job is not None else None
        report = None
        retryAnyway = False
        try:
            if outcome is not None and outcome.state is JobState.SUCCEEDED:
                self.setStatus(_("Loading the segmentation..."))
                report = self.importResult()
                if report is None:
                    self.setStatus(_("MoME finished, but the result was not loaded (you chose Cancel)."))
                    return
            if outcome is not None:
                self.setStatus(summary(outcome, report))
                for _level, line in structure_lines(outcome):
                    self.appendLog(line)
                error = outcome.error if outcome.state is JobState.FAILED else None
                if isinstance(error, InputCheckError) and error.overridable and self.showDialogs:
                    # The engine's own input check failed where the panel's passed (another engine
                    # version?): the same choice as before a run, once this run is cleaned up.
                    self.setStatus(error.message)
                    retryAnyway = self.askSegmentAnyway(error)
                elif error is not None:
                    self.reportError(error)
        except FriendlyError as exc:
            self.reportError(exc)
        finally:
            self.logic.cleanup()
            self.setRunning(False)
        if retryAnyway:
            self.segment(skipInputCheck=True)

    def importResult(self):
        target = self.ui.outputSegmentationSelector.currentNode()
        plan = self.logic.plan_import(target)
        replaceProtected = False
        if plan.needs_confirmation:
            answer = self.askAboutProtected(plan.protected)
            if answer is None:
                return None
            replaceProtected = answer
        report = self.logic.import_result(target, replaceProtected)
        node = report.segmentation_node
        self._parameterNode.outputSegmentation = node
        set_show_3d(node, self.ui.show3DCheckBox.checked)
        return report

    def askAboutProtected(self, protected: dict[str, str]) -> bool | None:
        """True = replace them, False = keep the user's versions, None = do not load the result."""
        if not self.showDialogs:
            return False
        lines = [f"  {name} ({_('you edited it') if reason == EDITED else _('not made by MoME')})"
                 for name, reason in protected.items()]
        text = (_("MoME's result has new versions of segments that were changed by hand:") + "\n\n"
                + "\n".join(lines) + "\n\n" + _("Replace them with MoME's result?"))
        choice = self.askChoice(_("Replace edited segments?"), qt.QMessageBox.Question, text, _("Keep mine"),
                                _("Replace"))
        return {"safe": False, "risky": True}.get(choice)

    def askChoice(self, title: str, icon: Any, text: str, safe: str | None, risky: str) -> str | None:
        """A question with a safe default, a risky alternative and Cancel: "safe", "risky" or None.
        Without ``safe``, Cancel is the default."""
        box = qt.QMessageBox(slicer.util.mainWindow())
        box.setWindowTitle(title)
        box.setIcon(icon)
        box.setText(text)
        safeButton = box.addButton(safe, qt.QMessageBox.AcceptRole) if safe else None
        riskyButton = box.addButton(risky, qt.QMessageBox.DestructiveRole)
        cancelButton = box.addButton(qt.QMessageBox.Cancel)
        box.setDefaultButton(safeButton or cancelButton)
        box.exec_()
        clicked = box.clickedButton()
        if safeButton is not None and clicked == safeButton:
            return "safe"
        return "risky" if clicked == riskyButton else None

    # -- sample and packages -------------------------------------------------------------------

    def onLoadSample(self, _checked: bool = False) -> None:
        with slicer.util.tryWithErrorDisplay(_("The sample CT could not be loaded."), waitCursor=True):
            node = self.logic.load_sample()
            slicer.util.setSliceViewerLayers(background=node, fit=True)
            self._parameterNode.inputVolume = node
            self.setStatus(_("Loaded {name}. Type structures, e.g. liver, aorta, and click Segment.").format(
                name=node.GetName()))

    def onPackageInfo(self, _checked: bool = False) -> None:
        if self.dependencies is None:
            return
        rows = self.dependencies.package_report()
        lines = [f"{r.name}{r.required}: {r.installed or _('not installed')}"
                 f"{'' if r.ok else '  <- ' + _('needs installing')} ({r.via})" for r in rows]
        text = "\n".join([self.aboutText(), "", *lines])
        self.appendLog(text)
        self.ui.detailsCollapsibleButton.collapsed = False
        if self.showDialogs:
            slicer.util.infoDisplay(_("MoME's Python packages (also in Details):"), windowTitle=_("MoME packages"),
                                    detailedText=text)

    def onReinstallPackages(self, _checked: bool = False) -> None:
        if self.dependencies is None or self.showDialogs and not slicer.util.confirmOkCancelDisplay(
                _("Install MoME's Python packages again? Packages that Slicer ships are not touched. Restart "
                  "Slicer afterwards. To reinstall PyTorch, use the PyTorch Utils module."),
                _("Reinstall MoME's packages")):
            return
        try:
            names = self.dependencies.reinstall()
        except FriendlyError as exc:
            self.reportError(exc)
            return
        self.appendLog(_("Reinstalled: ") + ", ".join(names))
        if self.showDialogs:
            slicer.util.infoDisplay(_("MoME's packages were reinstalled. Restart Slicer to use them."))

    # -- feedback ------------------------------------------------------------------------------

    def setStatus(self, text: str) -> None:
        self.ui.statusLabel.setText(text)

    def appendLog(self, text: str) -> None:
        self.ui.logTextEdit.appendPlainText(text)

    def reportError(self, error: FriendlyError, title: str | None = None) -> None:
        """Show a failure in the status line, the log and a dialog; the panel stays usable."""
        self.setStatus(error.message)
        if error.details:
            self.appendLog(error.details)
        log.error("%s\n%s", error.message, error.details)
        self.setRunning(False)
        if self.showDialogs:
            extra = {"detailedText": error.details} if error.details else {}
            slicer.util.errorDisplay(error.message, windowTitle=title or _("MoME"), **extra)

    def onShow3D(self, show: bool) -> None:
        node = self.ui.outputSegmentationSelector.currentNode()
        if node is not None:
            set_show_3d(node, show)

    def onSceneStartClose(self, *_args: Any) -> None:
        if self.running:
            self.cancel()
        self.setParameterNode(None)

    def onSceneEndClose(self, *_args: Any) -> None:
        self.initializeParameterNode()

    def cleanup(self) -> None:
        self.timer.stop()
        if self.running:
            self.logic.cancel()
        self.logic.cleanup()
        self.removeObservers()
