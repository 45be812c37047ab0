"""The panel's state as Slicer's parameter node, so it is saved with the scene (Slicer only).

Volume, output segmentation, structures, model and options live in a ``vtkMRMLScriptedModuleNode``
wrapped by ``parameterNodeWrapper``, as in Slicer's module template, TotalSegmentator and
MONAIAuto3DSeg: reopening a scene brings the panel back as it was. Only preferences that belong to
the user rather than to a scene would go to QSettings; the panel has none today.
"""

from __future__ import annotations

from typing import Annotated

import slicer
from slicer.parameterNodeWrapper import Choice, parameterNodeWrapper
from slicer.ScriptedLoadableModule import ScriptedLoadableModuleLogic

from .parameters import DEVICE_VALUES, SegmentationParameters

MODULE_NAME = "MoMESegmentation"


@parameterNodeWrapper
class MoMESegmentationParameterNode:
    inputVolume: slicer.vtkMRMLScalarVolumeNode
    outputSegmentation: slicer.vtkMRMLSegmentationNode  # None: create a new segmentation
    prompts: str = ""
    model: str = ""  # what --model gets (an installed package path); "" = the engine's default
    device: Annotated[str, Choice(list(DEVICE_VALUES))] = "auto"
    fast: bool = False
    # The opt-ins for structures the model would only guess: saved with the scene, like the
    # structures they apply to, and shown ticked whenever they are (never hidden while active).
    allowNotLearned: bool = False
    allowZeroShot: bool = False
    show3D: bool = True

    def runParameters(self) -> SegmentationParameters:
        """The run's settings; ``skip_input_check`` is never stored: it is asked for each run."""
        return SegmentationParameters(prompts=self.prompts, model=self.model or None, device=self.device,
                                      fast=self.fast, allow_not_learned=self.allowNotLearned,
                                      allow_zero_shot=self.allowZeroShot, show_3d=self.show3D)


def parameterNode() -> MoMESegmentationParameterNode:
    """The scene's MoME Segmentation parameter node (created on first use; a singleton per scene)."""
    owner = ScriptedLoadableModuleLogic()
    owner.moduleName = MODULE_NAME
    return MoMESegmentationParameterNode(owner.getParameterNode())
