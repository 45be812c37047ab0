"""The MoMESegmentation panel: a thin Qt layer over the Qt-free logic in this package.

Everything that decides something (what to run, how to read the engine, how to import) lives in
``logic``/``process``/``segmentation_io``/``targets``/``dependencies``; this class only wires Qt
widgets to it, shows progress and asks the user when a decision is theirs. The logic, dependency
manager and model catalog are constructor-injected so the widget can be exercised with stand-ins.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import qt
import slicer
from slicer.i18n import tr as _

from .dependencies import DependencyError, DependencyManager, ensure_engine_importable
from .errors import FriendlyError
from .logic import SegmentationLogic, SegmentationLogicProtocol, summary
from .models import HubModelCatalog, ModelCatalog, ModelChoice, default_index
from .parameters import DEVICES, SegmentationParameters
from .process import EventKind, JobState, engine_command, find_python_slicer
from .segmentation_io import EDITED, load_terminology, set_show_3d
from .targets import add_preset, check_targets, completion_names, current_item, preset_names, replace_current_item

log = logging.getLogger("MoME")
RESOURCES = Path(__file__).resolve().parent.parent / "Resources"
POLL_INTERVAL_MS = 250


def _slicer_dependency_manager() -> DependencyManager:
    packaging = getattr(slicer, "packaging", None)
    if packaging is None:
        raise DependencyError(_("MoME needs 3D Slicer 5.12 or newer. Please install a current Slicer release."))
    try:
        from PyTorchUtils import PyTorchUtilsLogic

        torch_installer = PyTorchUtilsLogic()
    except ImportError:
        torch_installer = None

    def confirm(title: str, text: str, details: str) -> bool:
        return bool(slicer.util.confirmOkCancelDisplay(text, title, detailedText=details))

    return DependencyManager(packaging, torch_installer, confirm)


class Widget(qt.QWidget):
    def __init__(self, logic: SegmentationLogicProtocol | None = None, dependencies: DependencyManager | None = None,
                 catalog: ModelCatalog | None = None, show_dialogs: bool = True, parent: Any = None):
        super().__init__(parent)
        self.engine_root = ensure_engine_importable()
        self.logic = logic or SegmentationLogic(
            slicer.mrmlScene,
            command=engine_command(find_python_slicer()),
            engine_root=self.engine_root,
            environment=slicer.util.startupEnvironment(),
            temp_root=slicer.app.temporaryPath,  # the user's Slicer temporary folder (Application Settings)
        )
        self._dependencies = dependencies
        self.catalog = catalog or HubModelCatalog()
        self.show_dialogs = show_dialogs
        self.model_choices: list[ModelChoice] = []
        self.last_segmentation = None

        layout = qt.QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        ui_widget = slicer.util.loadUI(str(RESOURCES / "UI" / "MoMESegmentation.ui"))
        layout.addWidget(ui_widget)
        self.ui = slicer.util.childWidgetVariables(ui_widget)
        ui_widget.setMRMLScene(slicer.mrmlScene)

        self.timer = qt.QTimer()
        self.timer.setInterval(POLL_INTERVAL_MS)
        self.timer.connect("timeout()", self.on_timer)

        self._setup_targets()
        for value, label in DEVICES:
            self.ui.deviceComboBox.addItem(_(label), value)
        self.refresh_models()
        self._load_settings()

        self.ui.inputVolumeSelector.connect("currentNodeChanged(vtkMRMLNode*)", self.update_buttons)
        self.ui.segmentButton.connect("clicked(bool)", self.on_segment_or_cancel)
        self.ui.show3DCheckBox.connect("toggled(bool)", self.on_show_3d)
        self.ui.refreshModelsButton.connect("clicked(bool)", lambda _checked=False: self.refresh_models())
        self.ui.allowFreeTextCheckBox.connect("toggled(bool)", lambda _checked=False: self.on_targets_changed())

        self._scene_observer = slicer.mrmlScene.AddObserver(slicer.mrmlScene.StartCloseEvent, self.on_scene_closing)
        try:
            from mome.resource_files import resource_path

            load_terminology(slicer.modules.terminologies.logic(), resource_path("Vocabulary", "MoME.term.json"))
        except Exception as exc:  # noqa: BLE001 - codes still travel in the segment tags
            log.warning("MoME terminology context not loaded: %s", exc)
        self.select_default_volume()
        self.set_running(False)
        self.on_targets_changed()

    # -- setup ---------------------------------------------------------------------------------

    def _setup_targets(self) -> None:
        from mome.vocabulary import load_vocabulary

        self.vocabulary = load_vocabulary()
        edit = self.ui.targetsLineEdit
        self.completer = qt.QCompleter(completion_names(self.vocabulary), edit)
        self.completer.setCaseSensitivity(qt.Qt.CaseInsensitive)
        self.completer.setFilterMode(qt.Qt.MatchContains)
        self.completer.setCompletionMode(qt.QCompleter.PopupCompletion)
        self.completer.setWidget(edit)  # not setCompleter: completion applies to the item being typed
        self.completer.connect("activated(QString)", self.on_completion_chosen)
        edit.connect("textEdited(QString)", self.on_targets_edited)
        edit.connect("textChanged(QString)", lambda _text: self.on_targets_changed())
        self.ui.presetComboBox.addItem(_("Add preset..."))
        for name in preset_names():
            self.ui.presetComboBox.addItem(name)
        self.ui.presetComboBox.connect("activated(int)", self.on_preset_chosen)

    def refresh_models(self) -> None:
        remembered = self.current_model()
        self.model_choices = self.catalog.choices()
        combo = self.ui.modelComboBox
        combo.clear()
        for index, choice in enumerate(self.model_choices):
            combo.addItem(choice.label)
            if choice.description:
                combo.setItemData(index, choice.description, qt.Qt.ToolTipRole)
        if self.model_choices:
            combo.setCurrentIndex(default_index(self.model_choices, remembered))

    def current_model(self) -> str | None:
        index = self.ui.modelComboBox.currentIndex
        return self.model_choices[index].argument if 0 <= index < len(self.model_choices) else None

    def select_default_volume(self) -> None:
        """Select the volume shown in the red slice view, else keep the combo box's own choice."""
        if self.ui.inputVolumeSelector.currentNode() is not None:
            return
        try:
            composite = slicer.app.layoutManager().sliceWidget("Red").sliceLogic().GetSliceCompositeNode()
            node = slicer.mrmlScene.GetNodeByID(composite.GetBackgroundVolumeID() or "")
        except AttributeError:
            node = None
        if node is None:
            node = slicer.mrmlScene.GetFirstNodeByClass("vtkMRMLScalarVolumeNode")
        if node is not None and not node.IsA("vtkMRMLLabelMapVolumeNode"):
            self.ui.inputVolumeSelector.setCurrentNode(node)

    # -- parameters ----------------------------------------------------------------------------

    def parameters(self) -> SegmentationParameters:
        return SegmentationParameters(
            prompts=self.ui.targetsLineEdit.text,
            model=self.current_model(),
            device=self.ui.deviceComboBox.currentData or "auto",
            fast=self.ui.fastCheckBox.checked,
            allow_free_text=self.ui.allowFreeTextCheckBox.checked,
            show_3d=self.ui.show3DCheckBox.checked,
        )

    def _load_settings(self) -> None:
        params = SegmentationParameters.from_settings(qt.QSettings())
        self.ui.targetsLineEdit.setText(params.prompts)
        index = self.ui.deviceComboBox.findData(params.device)
        self.ui.deviceComboBox.setCurrentIndex(max(0, index))
        self.ui.fastCheckBox.setChecked(params.fast)
        self.ui.allowFreeTextCheckBox.setChecked(params.allow_free_text)
        self.ui.show3DCheckBox.setChecked(params.show_3d)

    # -- structures line edit ------------------------------------------------------------------

    def on_targets_edited(self, text: str) -> None:
        prefix = current_item(text, self.ui.targetsLineEdit.cursorPosition)
        if len(prefix) < 1:
            self.completer.popup().hide()
            return
        self.completer.setCompletionPrefix(prefix)
        if self.completer.completionCount() > 0:
            self.completer.complete()
        else:
            self.completer.popup().hide()

    def on_completion_chosen(self, choice: str) -> None:
        edit = self.ui.targetsLineEdit
        text, cursor = replace_current_item(edit.text, choice, edit.cursorPosition)
        edit.setText(text)
        edit.setCursorPosition(cursor)

    def on_preset_chosen(self, index: int) -> None:
        if index <= 0:
            return
        name = self.ui.presetComboBox.itemText(index)
        self.ui.targetsLineEdit.setText(add_preset(self.ui.targetsLineEdit.text, name, self.vocabulary))
        self.ui.presetComboBox.setCurrentIndex(0)

    def on_targets_changed(self) -> None:
        check = check_targets(self.ui.targetsLineEdit.text, self.vocabulary, self.ui.allowFreeTextCheckBox.checked)
        self.ui.targetsStatusLabel.setText(check.summary())
        self.ui.targetsStatusLabel.setStyleSheet("color: #b00020" if check.unknown else "")
        self.targets_ok = check.ok
        self.update_buttons()

    def update_buttons(self, *_args: Any) -> None:
        if getattr(self, "running", False):
            return
        ready = self.ui.inputVolumeSelector.currentNode() is not None and getattr(self, "targets_ok", False)
        self.ui.segmentButton.enabled = ready
        self.ui.segmentButton.toolTip = _("Segment the listed structures") if ready else _(
            "Select a CT volume and type the structures to segment")

    # -- running -------------------------------------------------------------------------------

    def set_running(self, running: bool) -> None:
        self.running = running
        self.ui.segmentButton.text = _("Cancel") if running else _("Segment")
        for name in ("inputVolumeSelector", "outputSegmentationSelector", "targetsLineEdit", "presetComboBox",
                     "modelComboBox", "deviceComboBox", "fastCheckBox", "allowFreeTextCheckBox", "refreshModelsButton"):
            getattr(self.ui, name).enabled = not running
        if running:
            self.ui.segmentButton.enabled = True
        else:
            self.update_buttons()

    def on_segment_or_cancel(self, _checked: bool = False) -> None:
        if self.running:
            self.cancel()
        else:
            self.segment()

    def dependencies(self) -> DependencyManager:
        if self._dependencies is None:
            self._dependencies = _slicer_dependency_manager()
        return self._dependencies

    def segment(self) -> None:
        params = self.parameters()
        params.to_settings(qt.QSettings())
        self.ui.logTextEdit.clear()
        self.ui.progressBar.setValue(0)
        try:
            self.set_status(_("Checking MoME's Python packages..."))
            self.dependencies().ensure()  # asks once, installs with pip_ensure's own progress dialog
            self.logic.start(self.ui.inputVolumeSelector.currentNode(), params)
        except FriendlyError as exc:
            self.report_error(exc)
            return
        self.set_running(True)
        self.set_status(_("Starting MoME..."))
        self.timer.start()

    def cancel(self) -> None:
        self.timer.stop()
        self.set_status(_("Cancelling..."))
        slicer.app.processEvents()
        self.logic.cancel()
        self.finish()

    def on_timer(self) -> None:
        job = self.logic.job
        for event in self.logic.poll():
            if event.kind is EventKind.LOG:
                self.append_log(event.message)
            elif event.kind is EventKind.PROGRESS:
                self.append_log(f"[{event.stage}] {event.message}")
            elif event.kind is EventKind.ERROR:
                self.append_log(f"ERROR: {event.message}")
        if job is None:
            self.timer.stop()
            self.set_running(False)
            return
        self.ui.progressBar.setValue(int(1000 * job.fraction))
        if job.running:
            self.set_status(f"{job.message} ({job.elapsed:.0f} s)")
            return
        self.timer.stop()
        self.finish()

    def finish(self) -> None:
        job = self.logic.job
        outcome = job.outcome if job is not None else None
        report = None
        try:
            if outcome is not None and outcome.state is JobState.SUCCEEDED:
                self.set_status(_("Loading the segmentation..."))
                report = self.import_result()
                if report is None:
                    self.set_status(_("MoME finished, but the result was not loaded (you chose Cancel)."))
                    return
            if outcome is not None:
                self.set_status(summary(outcome, report))
                if outcome.state is JobState.FAILED and outcome.error is not None:
                    self.report_error(outcome.error)
        except FriendlyError as exc:
            self.report_error(exc)
        finally:
            self.logic.cleanup()
            self.set_running(False)

    def import_result(self):
        target = self.ui.outputSegmentationSelector.currentNode()
        plan = self.logic.plan_import(target)
        replace_protected = False
        if plan.needs_confirmation:
            answer = self.ask_about_protected(plan.protected)
            if answer is None:
                return None
            replace_protected = answer
        report = self.logic.import_result(target, replace_protected)
        node = report.segmentation_node
        self.last_segmentation = node
        self.ui.outputSegmentationSelector.setCurrentNode(node)
        set_show_3d(node, self.ui.show3DCheckBox.checked)
        return report

    def ask_about_protected(self, protected: dict[str, str]) -> bool | None:
        """True = replace them, False = keep the user's versions, None = do not load the result."""
        if not self.show_dialogs:
            return False
        lines = [f"  {name} ({_('you edited it') if reason == EDITED else _('not made by MoME')})"
                 for name, reason in protected.items()]
        box = qt.QMessageBox(slicer.util.mainWindow())
        box.setWindowTitle(_("Replace edited segments?"))
        box.setIcon(qt.QMessageBox.Question)
        box.setText(_("MoME's result has new versions of segments that were changed by hand:") + "\n\n"
                    + "\n".join(lines) + "\n\n" + _("Replace them with MoME's result?"))
        replace = box.addButton(_("Replace"), qt.QMessageBox.DestructiveRole)
        keep = box.addButton(_("Keep mine"), qt.QMessageBox.AcceptRole)
        box.addButton(qt.QMessageBox.Cancel)
        box.setDefaultButton(keep)
        box.exec_()
        clicked = box.clickedButton()
        if clicked == replace:
            return True
        if clicked == keep:
            return False
        return None

    # -- feedback ------------------------------------------------------------------------------

    def set_status(self, text: str) -> None:
        self.ui.statusLabel.setText(text)

    def append_log(self, text: str) -> None:
        self.ui.logTextEdit.appendPlainText(text)

    def report_error(self, error: FriendlyError, title: str | None = None) -> None:
        self.set_status(error.message)
        if error.details:
            self.append_log(error.details)
        log.error("%s\n%s", error.message, error.details)
        if self.show_dialogs:
            extra = {"detailedText": error.details} if error.details else {}
            slicer.util.errorDisplay(error.message, windowTitle=title or _("MoME"), **extra)

    def on_show_3d(self, show: bool) -> None:
        node = self.ui.outputSegmentationSelector.currentNode() or self.last_segmentation
        if node is not None:
            set_show_3d(node, show)

    def on_scene_closing(self, *_args: Any) -> None:
        if getattr(self, "running", False):
            self.cancel()
        self.last_segmentation = None

    def cleanup(self) -> None:
        self.timer.stop()
        if getattr(self, "running", False):
            self.logic.cancel()
        self.logic.cleanup()
        slicer.mrmlScene.RemoveObserver(self._scene_observer)

