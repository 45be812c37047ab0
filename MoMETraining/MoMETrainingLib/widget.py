"""The MoME Training panel: a thin Qt layer over the Qt-free logic of this package.

Everything that does work lives in ``MoMETrainingLogic`` (``logic.py``: the dataset builder, the
background training process, the model store) and ``training_plot``; the logic is injected
(``Widget(logic=...)``). This file only wires buttons to it, polls the training process and a
model comparison with a QTimer, and fills tables. Qt-facing names are camelCase, as in Slicer (and
MoMESegmentation).
"""

from __future__ import annotations

import logging
import time
import traceback
from pathlib import Path

import qt
import slicer
from MoMESegmentationLib.engine import EngineMissingError
from MoMESegmentationLib.errors import FriendlyError
from slicer.i18n import tr as _

from .logic import MoMETrainingLogic
from .presets import PRESETS
from .training_process import State, TrainingEvent

SETTINGS = "MoMETraining"  # user preferences only: work folder, device, preset
POLL_MS = 500


class Widget(qt.QWidget):
    def __init__(self, logic: MoMETrainingLogic | None = None, parent=None, showDialogs: bool = True):
        super().__init__(parent)
        self.scene = slicer.mrmlScene
        self.showDialogs = showDialogs
        try:  # the engine ships with the extension (MoMESegmentationLib/engine.py)
            self.logic = logic or MoMETrainingLogic()
            self.engineAvailable = True
        except EngineMissingError:
            self.logic, self.engineAvailable = None, False
        self.report = None
        self.plot = None
        self.comparisonRun = None
        self.pairs: list[tuple[str, str]] = []  # (volume node ID, segmentation node ID)

        layout = qt.QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        uiWidget = slicer.util.loadUI(str(Path(__file__).parents[1] / "Resources" / "UI" / "MoMETraining.ui"))
        layout.addWidget(uiWidget)
        self.ui = slicer.util.childWidgetVariables(uiWidget)
        uiWidget.setMRMLScene(self.scene)

        for preset in PRESETS.values():
            self.ui.presetComboBox.addItem(preset.title, preset.key)
        self.ui.deviceComboBox.addItems(["auto", "cpu", "cuda"])
        for table in (self.ui.pairsTable, self.ui.classCountsTable, self.ui.problemsTable, self.ui.modelsTable,
                      self.ui.comparisonTable):
            table.horizontalHeader().setSectionResizeMode(qt.QHeaderView.ResizeToContents)
            table.horizontalHeader().setStretchLastSection(True)

        self.ui.addPairButton.clicked.connect(self.onAddPair)
        self.ui.removePairButton.clicked.connect(self.onRemovePair)
        self.ui.buildButton.clicked.connect(self.onBuildDataset)
        self.ui.presetComboBox.currentIndexChanged.connect(self.onPresetChanged)
        self.ui.startButton.clicked.connect(self.onStart)
        self.ui.stopButton.clicked.connect(self.onStop)
        self.ui.resumeButton.clicked.connect(self.onResume)
        self.ui.setActiveButton.clicked.connect(self.onSetActive)
        self.ui.rollbackButton.clicked.connect(self.onRollback)
        self.ui.removeModelButton.clicked.connect(self.onRemoveModel)
        self.ui.exportButton.clicked.connect(self.onExport)
        self.ui.importButton.clicked.connect(self.onImport)
        self.ui.compareButton.clicked.connect(self.onCompare)

        self.timer = qt.QTimer()
        self.timer.setInterval(POLL_MS)
        self.timer.timeout.connect(self.onPoll)

        self._loadSettings()
        self.onPresetChanged()
        self.sceneObservers = [self.scene.AddObserver(self.scene.EndCloseEvent, self.onSceneEndClose)]
        if not self.engineAvailable:
            self.ui.engineStatusLabel.setText(_(
                "The MoME engine files are missing from this Slicer installation. Reinstall the MoME extension "
                "from the Extensions Manager."))
            for name in ("dataCollapsibleButton", "trainingCollapsibleButton", "modelsCollapsibleButton"):
                getattr(self.ui, name).enabled = False
            return
        self.ui.engineStatusLabel.hide()
        self.refreshModels()

    @property
    def trainingProcess(self):
        return self.logic.process

    @property
    def storeLogic(self):
        return self.logic.store

    # ------------------------------------------------------------------ settings
    def _loadSettings(self) -> None:
        s = qt.QSettings()
        s.beginGroup(SETTINGS)
        default_work = str(Path(slicer.app.defaultScenePath) / "MoME training")
        self.ui.workPathLineEdit.currentPath = s.value("workFolder", default_work)
        self.ui.deviceComboBox.currentText = s.value("device", "auto")
        index = self.ui.presetComboBox.findData(s.value("preset", "quick"))
        self.ui.presetComboBox.setCurrentIndex(max(0, index))
        s.endGroup()

    def _saveSettings(self) -> None:
        s = qt.QSettings()
        s.beginGroup(SETTINGS)
        s.setValue("workFolder", self.ui.workPathLineEdit.currentPath)
        s.setValue("device", self.ui.deviceComboBox.currentText)
        s.setValue("preset", self.ui.presetComboBox.currentData)
        s.endGroup()

    def _ensureDependencies(self) -> bool:
        """PyTorch and the engine's packages, installed after the user's consent (first use only)."""
        try:
            if self.logic.dependencies is not None:
                self.logic.dependencies.ensure()
            return True
        except FriendlyError as exc:
            self._message(exc.message, error=True, details=exc.details)
            return False
        except Exception as exc:  # noqa: BLE001 - never leave the panel half-way: say it, stay usable
            self._message(_("Checking MoME's Python packages failed unexpectedly."), error=True,
                          details=f"{exc!r}\n{traceback.format_exc()}")
            return False

    def _message(self, text: str, error: bool = False, details: str = "") -> None:
        if details:
            self.ui.logTextEdit.appendPlainText(details)
        if not self.showDialogs:
            return
        extra = {"detailedText": details} if details else {}
        (slicer.util.errorDisplay if error else slicer.util.infoDisplay)(text, **extra)

    # ------------------------------------------------------------------ 1. data
    def onAddPair(self) -> None:
        volume, seg = self.ui.volumeSelector.currentNode(), self.ui.segmentationSelector.currentNode()
        if seg is None:
            self._message(_("Choose a segmentation (and its CT volume)."), error=True)
            return
        pair = (volume.GetID() if volume else "", seg.GetID())
        if pair not in self.pairs:
            self.pairs.append(pair)
        self._showPairs()

    def onRemovePair(self) -> None:
        rows = sorted({i.row() for i in self.ui.pairsTable.selectedIndexes()}, reverse=True)
        for r in rows:
            del self.pairs[r]
        self._showPairs()

    def _showPairs(self) -> None:
        table = self.ui.pairsTable
        table.setRowCount(len(self.pairs))
        for r, (volumeId, segId) in enumerate(self.pairs):
            volume, seg = self.scene.GetNodeByID(volumeId), self.scene.GetNodeByID(segId)
            names = [(volume or seg).GetName() if (volume or seg) else "?",
                     volume.GetName() if volume else _("(segmentation's source volume)"),
                     seg.GetName() if seg else "?"]
            for c, text in enumerate(names):
                table.setItem(r, c, qt.QTableWidgetItem(text))

    def onBuildDataset(self) -> None:
        sources = []
        for volumeId, segId in self.pairs:
            seg = self.scene.GetNodeByID(segId)
            if seg is not None:
                sources.append((self.scene.GetNodeByID(volumeId) if volumeId else None, seg))
        folder = self.ui.folderPathLineEdit.currentPath or None
        if not sources and not folder:
            self._message(_("Add at least one (CT volume, segmentation) case, or choose a folder."), error=True)
            return
        if not self._ensureDependencies():
            return
        work = Path(self.ui.workPathLineEdit.currentPath) / time.strftime("run-%Y%m%d-%H%M%S")
        self._saveSettings()
        with slicer.util.tryWithErrorDisplay(_("Building the training dataset failed."), waitCursor=True):
            self.report = self.logic.build_dataset(sources, work, folder=folder, holdout=self.ui.holdoutSpinBox.value)
        self._showReport()

    def _showReport(self) -> None:
        report = self.report
        if report is None:
            return
        included = report.included_cases
        val = sum(1 for c in included if c.split == "val")
        self.ui.datasetStatusLabel.setText(
            _("{n} case(s) ready ({val} held out for validation), {e} error(s), {w} warning(s).").format(
                n=len(included), val=val, e=len(report.errors), w=len(report.warnings))
            if report.ok else _("No usable training case: see the problems below."))
        counts = report.class_counts()
        table = self.ui.classCountsTable
        table.setRowCount(len(counts))
        for r, (key, row) in enumerate(counts.items()):
            for c, text in enumerate((key, str(row["train"]), str(row["val"]))):
                table.setItem(r, c, qt.QTableWidgetItem(text))
        table = self.ui.problemsTable
        table.setRowCount(len(report.problems))
        for r, p in enumerate(report.problems):
            for c, text in enumerate((p.severity, p.case or "", p.segment or "", p.message)):
                item = qt.QTableWidgetItem(text)
                item.setToolTip(p.message)
                if p.severity == "error":
                    item.setForeground(qt.QBrush(qt.QColor("red")))
                table.setItem(r, c, item)
        self._updateButtons()

    # ------------------------------------------------------------------ 2. training
    def onPresetChanged(self, *_args) -> None:
        preset = PRESETS[self.ui.presetComboBox.currentData or "quick"]
        self.ui.presetComboBox.toolTip = preset.description
        self.ui.stepsSpinBox.value = preset.steps
        self.ui.learningRateSpinBox.value = preset.lr

    def _request(self):
        return self.logic.request(
            self.report, self.ui.baseModelComboBox.currentData, self.ui.presetComboBox.currentData,
            steps=self.ui.stepsSpinBox.value, lr=self.ui.learningRateSpinBox.value,
            device=self.ui.deviceComboBox.currentText, name=self.ui.newModelNameLineEdit.text.strip() or None)

    def onStart(self) -> None:
        if self.report is None or not self.report.ok or not self.ui.baseModelComboBox.currentData:
            self._message(_("Build a dataset and choose a base model first."), error=True)
            return
        if not self._ensureDependencies():
            return
        self._saveSettings()
        with slicer.util.tryWithErrorDisplay(_("Could not start training."), waitCursor=True):
            request = self._request()
            self.ui.logTextEdit.clear()
            self._resetPlot()
            args = self.trainingProcess.start(request)
            self.ui.logTextEdit.appendPlainText(" ".join(args))
            self.ui.trainingStatusLabel.setText(
                _("Training {name} {version} from {base}...").format(
                    name=request.name, version=request.version, base=self.ui.baseModelComboBox.currentText))
            self.timer.start()
        self._updateButtons()

    def onStop(self) -> None:
        if self.trainingProcess.state == State.STOPPING:  # second press: do not wait for the checkpoint
            self.trainingProcess.kill()
            self.ui.trainingStatusLabel.setText(_("Stopping now..."))
        else:
            self.trainingProcess.stop()
            self.ui.trainingStatusLabel.setText(_("Stopping: saving a checkpoint... (press Stop again to force)"))
        self._updateButtons()

    def onResume(self) -> None:
        with slicer.util.tryWithErrorDisplay(_("Could not resume training."), waitCursor=True):
            self.trainingProcess.resume()
            self.timer.start()
        self._updateButtons()

    def onPoll(self) -> None:
        events = self.trainingProcess.poll()
        for event in events:
            self._showEvent(event)
        if events and self.plot is not None:
            self.plot.update(self.trainingProcess.history)
        if self.comparisonRun is not None:
            self._pollComparison()
        if self.trainingProcess.state not in (State.RUNNING, State.STOPPING) and self.comparisonRun is None:
            self.timer.stop()
        self._updateButtons()

    def _showEvent(self, event: TrainingEvent) -> None:
        ui = self.ui
        if event.kind == "log":
            ui.logTextEdit.appendPlainText(event.message)
        elif event.kind == "step":
            ui.trainingProgressBar.value = int(100 * (event.fraction or 0))
            eta = f", {int(event.eta_s // 60)} min {int(event.eta_s % 60)} s left" if event.eta_s is not None else ""
            ui.trainingStatusLabel.setText(
                _("Step {step}/{total}, loss {loss:.4f}{eta}").format(step=event.step, total=event.total_steps,
                                                                      loss=event.loss or 0.0, eta=eta))
        elif event.kind == "validation":
            dice = ", ".join(f"{k} {v:.3f}" for k, v in (event.val_dice or {}).items())
            ui.logTextEdit.appendPlainText(f"step {event.step}: validation Dice {dice}")
        elif event.kind == "stage":
            ui.trainingStatusLabel.setText(event.message or event.stage or "")
        elif event.kind == "error":
            ui.logTextEdit.appendPlainText(f"ERROR: {event.message}\n{(event.raw or {}).get('details', '')}")
        elif event.kind == "exit":
            ui.trainingStatusLabel.setText(event.message)
            if event.state == State.FINISHED:
                self._installTrained()
            elif event.state == State.FAILED:
                self._message(event.message, error=True)

    def _installTrained(self) -> None:
        with slicer.util.tryWithErrorDisplay(_("The trained model could not be installed."), waitCursor=True):
            model = self.storeLogic.install_trained(self.trainingProcess.package)
            self.ui.trainingProgressBar.value = 100
            self.ui.trainingStatusLabel.setText(
                _("Finished: installed {spec}. Compare it with its base, then Set active to use it.").format(
                    spec=model.spec))
            self.refreshModels()

    def _resetPlot(self) -> None:
        from .training_plot import TrainingPlot

        if self.plot is not None:
            self.plot.remove()
        self.plot = TrainingPlot(self.scene)
        if not hasattr(self, "plotWidget"):
            self.plotWidget = slicer.qMRMLPlotWidget()
            self.plotWidget.setMRMLScene(self.scene)
            self.plotWidget.minimumHeight = 200
            self.ui.plotFrame.layout().addWidget(self.plotWidget)
        if not hasattr(self, "plotViewNode"):
            self.plotViewNode = self.scene.AddNewNodeByClass("vtkMRMLPlotViewNode", "MoME training plot view")
            self.plotWidget.setMRMLPlotViewNode(self.plotViewNode)
        self.plotViewNode.SetPlotChartNodeID(self.plot.chart.GetID())

    # ------------------------------------------------------------------ 3. models
    def refreshModels(self) -> None:
        if self.storeLogic is None:
            return
        try:
            models, bases = self.storeLogic.models(), self.storeLogic.base_models()
        except Exception as exc:  # noqa: BLE001 - e.g. PyTorch not installed yet: the panel stays usable
            self.ui.trainingStatusLabel.setText(_("Models are listed once MoME's Python packages are installed "
                                                  "(Build dataset installs them)."))
            logging.getLogger("MoME").info("MoMETraining: model store not available (%s)", exc)
            models, bases = [], []
        rows = []
        for m in models:
            dice = (m.metrics or {}).get("validation_mean_dice")
            rows.append((m.name, m.version, _("yes") if m.active else "", m.base_model or "",
                         f"{dice:.3f}" if isinstance(dice, (int, float)) else ""))
        # bundled models (e.g. the default one) can be compared with, but are not in the store
        rows += [(b.name, b.version, _("bundled"), "", "") for b in bases if not b.installed]
        table = self.ui.modelsTable
        table.setRowCount(len(rows))
        for r, cells in enumerate(rows):
            for c, text in enumerate(cells):
                table.setItem(r, c, qt.QTableWidgetItem(text))
        current = self.ui.baseModelComboBox.currentData
        self.ui.baseModelComboBox.clear()
        for base in bases:
            self.ui.baseModelComboBox.addItem(base.label, base.spec)
        index = self.ui.baseModelComboBox.findData(current) if current else -1
        if index < 0:
            index = next((i for i, b in enumerate(bases) if b.active), 0)
        self.ui.baseModelComboBox.setCurrentIndex(index)
        self._updateButtons()

    def _selectedModels(self) -> list[tuple[str, str]]:
        rows = sorted({i.row() for i in self.ui.modelsTable.selectedIndexes()})
        return [(self.ui.modelsTable.item(r, 0).text(), self.ui.modelsTable.item(r, 1).text()) for r in rows]

    def _oneSelected(self) -> tuple[str, str] | None:
        selected = self._selectedModels()
        if len(selected) != 1:
            self._message(_("Select one model version in the table."), error=True)
            return None
        return selected[0]

    def onSetActive(self) -> None:
        if (model := self._oneSelected()) is not None:
            with slicer.util.tryWithErrorDisplay(_("Could not activate the model.")):
                self.storeLogic.set_active(*model)
            self.refreshModels()

    def onRollback(self) -> None:
        with slicer.util.tryWithErrorDisplay(_("Could not roll back.")):
            model = self.storeLogic.rollback()
            self.ui.trainingStatusLabel.setText(_("Active model: {spec}").format(spec=model.spec))
        self.refreshModels()

    def onRemoveModel(self) -> None:
        if (model := self._oneSelected()) is None:
            return
        if not slicer.util.confirmYesNoDisplay(_("Delete {name} {version} from this computer?").format(
                name=model[0], version=model[1])):
            return
        with slicer.util.tryWithErrorDisplay(_("Could not remove the model.")):
            self.storeLogic.remove(*model)
        self.refreshModels()

    def onExport(self) -> None:
        if (model := self._oneSelected()) is None:
            return
        path = qt.QFileDialog.getSaveFileName(self, _("Export model"), f"{model[0]}-{model[1]}.zip", "*.zip")
        if path:
            with slicer.util.tryWithErrorDisplay(_("Export failed."), waitCursor=True):
                self.storeLogic.export_zip(model[0], model[1], path)

    def onImport(self) -> None:
        path = qt.QFileDialog.getOpenFileName(self, _("Import model package"), "", "*.zip")
        if path:
            with slicer.util.tryWithErrorDisplay(_("Import failed: the package is not a valid MoME model."),
                                                 waitCursor=True):
                model = self.storeLogic.import_zip(path)
                self.ui.trainingStatusLabel.setText(_("Installed {spec}").format(spec=model.spec))
            self.refreshModels()

    def onCompare(self) -> None:
        selected = self._selectedModels()
        if len(selected) != 2:
            self._message(_("Select two model versions to compare."), error=True)
            return
        if self.report is None or not self.report.ok:
            self._message(_("Build a dataset first: the comparison uses its held-out cases."), error=True)
            return
        if not self._ensureDependencies():
            return
        with slicer.util.tryWithErrorDisplay(_("Comparison failed."), waitCursor=True):
            self.comparisonRun = self.storeLogic.comparison(
                selected, self.report.manifest_path, python=self.logic.python, engine_root=self.logic.engine_root,
                base_env=self.logic.environment)
            self.comparisonRun.start()
            self.ui.trainingStatusLabel.setText(_("Comparing {a} and {b} in the background...").format(
                a=f"{selected[0][0]} {selected[0][1]}", b=f"{selected[1][0]} {selected[1][1]}"))
            self.timer.start()
        self._updateButtons()

    def _pollComparison(self) -> None:
        run = self.comparisonRun
        for event in run.poll():
            if event.message:
                self.ui.logTextEdit.appendPlainText(event.message)
        if run.running:
            return
        self.comparisonRun = None
        if run.error is not None:
            self.ui.trainingStatusLabel.setText(run.error.message)
            self._message(run.error.message, error=True, details=run.error.details)
            return
        result = run.result
        table = self.ui.comparisonTable
        headers = result.headers()
        table.setColumnCount(len(headers))
        table.setHorizontalHeaderLabels(headers)
        rows, tips = result.rows(), result.tooltips()
        table.setRowCount(len(rows))
        for r, row in enumerate(rows):
            for c, text in enumerate(row):
                item = qt.QTableWidgetItem(text)
                if tips[r][c]:
                    item.setToolTip(tips[r][c])
                table.setItem(r, c, item)
        self.ui.trainingStatusLabel.setText(_("Compared on {cases}").format(cases=result.case))

    # ------------------------------------------------------------------ state
    def _updateButtons(self) -> None:
        state = self.trainingProcess.state
        running = state in (State.RUNNING, State.STOPPING) or self.comparisonRun is not None
        ready = self.report is not None and self.report.ok and self.ui.baseModelComboBox.count > 0
        self.ui.startButton.enabled = ready and not running
        self.ui.stopButton.enabled = running
        self.ui.stopButton.text = _("Force stop") if state == State.STOPPING else _("Stop")
        self.ui.resumeButton.enabled = not running and self.trainingProcess.can_resume()
        self.ui.buildButton.enabled = not running
        for name in ("setActiveButton", "rollbackButton", "removeModelButton", "exportButton", "importButton",
                     "compareButton"):
            getattr(self.ui, name).enabled = not running

    def onSceneEndClose(self, *_args) -> None:
        """The scene was closed: its nodes are gone. Forget the pairs and the plot (a running training
        goes on: its data are files; the plot is drawn again in the new scene)."""
        self.pairs = []
        self._showPairs()
        self.plot = None
        if hasattr(self, "plotViewNode"):
            self.plotWidget.setMRMLPlotViewNode(None)
            del self.plotViewNode
        if self.trainingProcess.state in (State.RUNNING, State.STOPPING):
            self._resetPlot()
            self.plot.update(self.trainingProcess.history)
        self._updateButtons()

    def cleanup(self) -> None:
        """Module closing: stop polling; a running training keeps its checkpoint when stopped."""
        self.timer.stop()
        for tag in self.sceneObservers:
            self.scene.RemoveObserver(tag)
        if self.comparisonRun is not None:
            self.comparisonRun.cancel()
        if self.trainingProcess.state == State.RUNNING:
            self.trainingProcess.stop()

