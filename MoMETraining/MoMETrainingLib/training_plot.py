"""The live training plot as MRML nodes: loss and validation Dice per step.

Two table nodes (``step, loss`` and ``step, mean Dice``), one plot series each, in one chart node.
The widget shows the chart in a ``qMRMLPlotWidget``; this part is Qt-free and testable headless.
"""

from __future__ import annotations

from .training_process import History


class TrainingPlot:
    def __init__(self, scene, name: str = "MoME training"):
        import slicer

        self.scene = scene
        self.loss_table = self._table(f"{name} loss", "step", "loss")
        self.dice_table = self._table(f"{name} validation Dice", "step", "mean Dice")
        self.chart = scene.AddNewNodeByClass("vtkMRMLPlotChartNode", name)
        self.chart.SetTitle(name)
        self.chart.SetXAxisTitle("step")
        self.chart.SetYAxisTitle("loss / Dice")
        self.series = []
        for table, column, color in ((self.loss_table, "loss", (0.85, 0.3, 0.1)),
                                     (self.dice_table, "mean Dice", (0.1, 0.5, 0.85))):
            series = scene.AddNewNodeByClass("vtkMRMLPlotSeriesNode", f"{name} {column}")
            series.SetAndObserveTableNodeID(table.GetID())
            series.SetXColumnName("step")
            series.SetYColumnName(column)
            series.SetPlotType(slicer.vtkMRMLPlotSeriesNode.PlotTypeScatter)
            series.SetMarkerStyle(slicer.vtkMRMLPlotSeriesNode.MarkerStyleCircle if column != "loss"
                                  else slicer.vtkMRMLPlotSeriesNode.MarkerStyleNone)
            series.SetColor(*color)
            self.chart.AddAndObservePlotSeriesNodeID(series.GetID())
            self.series.append(series)

    def _table(self, name: str, x: str, y: str):
        import vtk

        node = self.scene.AddNewNodeByClass("vtkMRMLTableNode", name)
        for column in (x, y):
            array = vtk.vtkDoubleArray()
            array.SetName(column)
            node.GetTable().AddColumn(array)
        return node

    def update(self, history: History) -> None:
        self._fill(self.loss_table, history.loss)
        self._fill(self.dice_table, history.mean_dice)

    @staticmethod
    def _fill(node, points: list[tuple[int, float]]) -> None:
        table = node.GetTable()
        table.SetNumberOfRows(len(points))
        for row, (step, value) in enumerate(points):
            table.SetValue(row, 0, float(step))
            table.SetValue(row, 1, float(value))
        table.Modified()
        node.Modified()

    def nodes(self) -> list:
        return [self.chart, *self.series, self.loss_table, self.dice_table]

    def remove(self) -> None:
        for node in self.nodes():
            if node.GetScene() is not None:
                self.scene.RemoveNode(node)
