"""The modules as Slicer loads them, and the in-Slicer self-test's checks, here.

* Under Slicer's released Python layer (5.10.0, 5.12.3; ``slicer_release``): the module files
  import, the modules register MoME's terminology when Slicer has started (into a real
  ``vtkSlicerTerminologiesModuleLogic``), and ``slicer.util.getModuleLogic`` returns
  ``MoMESegmentationLogic`` / ``MoMETrainingLogic``.
* Under slicer-core: the checks ``MoMESegmentationTest`` runs in Slicer (``user_workflow``): the
  bundled model segments a crop of the sample CT through the logic, with names, terminology and
  geometry; a second run updates the segmentation; a cancelled run leaves nothing behind.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest
from slicer_release import run_in_slicer

REPO = Path(__file__).resolve().parents[1]

MODULE_CHECKS = """
import vtk
import MoMESegmentation, MoMETraining
from MoMESegmentationLib.logic import MoMESegmentationLogic
from MoMETrainingLib.logic import MoMETrainingLogic

terminologies = slicer.vtkSlicerTerminologiesModuleLogic()
terminologies.SetMRMLScene(slicer.mrmlScene)
slicer.modules.terminologies = type("Module", (), {"logic": lambda self: terminologies})()
slicer.modules.segmentations = type("Module", (), {"logic": lambda self: slicer.vtkSlicerSegmentationsModuleLogic()})()

def module_parent(module_file):  # the qSlicerScriptedLoadableModule that Slicer passes as parent
    parent = qt.Inert()
    parent.path = module_file
    return parent


module = MoMESegmentation.MoMESegmentation(module_parent(MoMESegmentation.__file__))
MoMETraining.MoMETraining(module_parent(MoMETraining.__file__))
def loaded_terminologies():
    names = vtk.vtkStringArray()
    terminologies.GetLoadedTerminologyNames(names)
    return [names.GetValue(i) for i in range(names.GetNumberOfValues())]


before = len(loaded_terminologies())
for signal, slot in slicer.app.connections:
    if signal == "startupCompleted()":
        slot()
loaded = loaded_terminologies()

widgets = {"MoMESegmentation": MoMESegmentation.MoMESegmentationWidget(qt.Inert()),  # the module panel
           "MoMETraining": MoMETraining.MoMETrainingWidget(qt.Inert())}


class Representation(slicer.qSlicerScriptedLoadableModuleWidget):
    def __init__(self, widget):
        self.widget = widget

    def self(self):
        return self.widget


class Module(slicer.qSlicerScriptedLoadableModule):
    def __init__(self, name):
        self.name = name

    def widgetRepresentation(self):
        return Representation(widgets[self.name])


slicer.app.moduleManager = lambda: type("Manager", (), {"module": lambda self, name: Module(name)})()
segmentation_logic = slicer.util.getModuleLogic("MoMESegmentation")
training_logic = slicer.util.getModuleLogic("MoMETraining")
report(
    help=module.parent.helpText,
    startup_slots=[s for s, _ in slicer.app.connections].count("startupCompleted()"),
    before=before, loaded=loaded,
    segmentation_logic=type(segmentation_logic).__name__,
    same_scene=segmentation_logic.scene is slicer.mrmlScene,
    command=segmentation_logic.command,
    engine_root=str(segmentation_logic.engine_root),
    training_logic=type(training_logic).__name__,
    training_python=training_logic.python,
)
"""


@pytest.mark.parametrize("release", ["v5.10.0", "v5.12.3"])
def test_modules_load_register_terminology_at_startup_and_expose_their_logic(release, tmp_path):
    facts, output = run_in_slicer(release, MODULE_CHECKS, tmp_path, pytorchutils=True)
    assert "5.10 and 5.12" in facts["help"]
    assert facts["startup_slots"] == 1  # once, by MoMESegmentation (MoMETraining depends on it)
    assert len(facts["loaded"]) == facts["before"] + 1, output[-2000:]
    assert facts["segmentation_logic"] == "MoMESegmentationLogic" and facts["same_scene"]
    assert facts["training_logic"] == "MoMETrainingLogic"
    assert facts["command"][0].endswith("PythonSlicer") and facts["command"][1:] == ["-m", "mome.cli.main"]
    assert facts["training_python"].endswith("PythonSlicer")
    assert Path(facts["engine_root"]) == REPO  # the bundled engine (here: the checkout)


PANEL_CHECKS = """
import numpy as np
import MoMESegmentation
from mome.io.plausibility import check_ct_values
from MoMESegmentationLib.errors import InputCheckError, RefusedStructuresError
from MoMESegmentationLib.parameter_node import parameterNode
from MoMESegmentationLib.parameters import SegmentationParameters

logic = MoMESegmentation.MoMESegmentationLogic()  # as Slicer creates it: its scene, PythonSlicer, environment

# As the user types: the bundled model's figures, and what it refuses.
typed = logic.check_structures(SegmentationParameters("liver, spleen"))
opted = logic.check_structures(SegmentationParameters("liver, spleen", allow_not_learned=True))

# Before a run: a blank volume made the way a script makes one, and the dialog's answer stood in.
ct = np.full((12, 20, 20), -1000, np.int16)
ct[3:9, 5:15, 5:15] = 40
plausible = slicer.util.addVolumeFromArray(ct, name="phantom")
blank = slicer.util.addVolumeFromArray(np.zeros((12, 20, 20), np.int16), name="blank CT")
asked = []
answer = logic.confirm_run(blank, SegmentationParameters("liver"), lambda error: asked.append(error.message) or False)
ours = logic.input_check(plausible).measurements
slicers = check_ct_values(slicer.util.arrayFromVolume(plausible), "x").measurements
try:
    logic.segment(blank, "liver")
    scripted = None
except InputCheckError as exc:
    scripted = exc.message
try:
    logic.segment(plausible, "liver, spleen")
    refused = None
except RefusedStructuresError as exc:
    refused = exc.message

# The opt-ins are saved with the scene; "segment anyway" never is.
node = parameterNode()
node.prompts, node.allowNotLearned, node.allowZeroShot = "liver, spleen", True, False
path = slicer.app.temporaryPath + "/scene.mrml"
slicer.mrmlScene.SetURL(path)
committed = slicer.mrmlScene.Commit()
slicer.mrmlScene.Clear(0)
slicer.mrmlScene.SetURL(path)
slicer.mrmlScene.Import()
loaded = parameterNode().runParameters()
report(model=typed.model, typed_ok=typed.ok, typed_refused=[r.name for r in typed.refused], opted_ok=opted.ok,
       answer=answer, asked=asked, same_measurements=ours == slicers, scripted=scripted, refused=refused,
       committed=committed, loaded=vars(loaded), stored=sorted(parameterNode().parameterNode.GetParameterNames()))
"""


@pytest.mark.parametrize("release", ["v5.10.0", "v5.12.3"])
def test_panel_checks_run_in_the_released_slicer_layer(release, tmp_path):
    """The logic the panel calls as the user types and before a run, inside the released ``slicer``
    package (``slicer.util`` makes the volumes), and the opt-ins in the scene's parameter node."""
    facts, output = run_in_slicer(release, PANEL_CHECKS, tmp_path, env={"MOME_HOME": str(tmp_path / "home")})
    assert facts["model"] == "mome-mini 1.1.0", output[-2000:]
    assert not facts["typed_ok"] and facts["typed_refused"] == ["spleen"] and facts["opted_ok"]
    assert facts["answer"] is None and len(facts["asked"]) == 1  # asked once; "Cancel" → no run
    assert "Every voxel of 'blank CT' has the value 0" in facts["asked"][0]
    assert facts["same_measurements"]  # the volume's voxels read as slicer.util.arrayFromVolume reads them
    assert "pass skip_input_check=True" in facts["scripted"]
    assert "pass allow_not_learned=True" in facts["refused"]
    assert facts["committed"]
    loaded = facts["loaded"]
    assert (loaded["prompts"], loaded["allow_not_learned"], loaded["allow_zero_shot"]) == ("liver, spleen", True, False)
    assert {"allowNotLearned", "allowZeroShot", "prompts"} <= set(facts["stored"]), facts["stored"]
    assert loaded["skip_input_check"] is False and not any("skip" in name.lower() for name in facts["stored"])


# ---------------------------------------------------------------------- the self-test's checks, under slicer-core
slicer = pytest.importorskip("slicer", reason="slicer-core is not installed (pip install slicer-core)")
if not hasattr(slicer, "vtkMRMLScene"):
    pytest.skip("the 'slicer' package here is not slicer-core", allow_module_level=True)

sys.path[:0] = [str(REPO / "MoMESegmentation"), str(REPO / "MoMETraining")]

from MoMESegmentationLib import segmentation_io, user_workflow  # noqa: E402
from MoMESegmentationLib.logic import MoMESegmentationLogic  # noqa: E402
from MoMESegmentationLib.process import engine_command  # noqa: E402


@pytest.fixture()
def logic(tmp_path):
    scene = slicer.vtkMRMLScene()
    app = slicer.vtkSlicerApplicationLogic()
    app.SetMRMLScene(scene)
    colors = slicer.vtkSlicerColorLogic()
    colors.SetMRMLApplicationLogic(app)
    colors.SetMRMLScene(scene)
    segmentations = slicer.vtkSlicerSegmentationsModuleLogic()
    segmentations.SetMRMLScene(scene)
    env = dict(os.environ, OMP_NUM_THREADS="2", MOME_HOME=str(tmp_path / "home"))
    logic = MoMESegmentationLogic(scene, command=engine_command(sys.executable), engine_root=REPO, environment=env,
                                  temp_root=tmp_path)
    logic._keep = (app, colors, segmentations)
    return logic


def sample_crop(logic):
    """The sample CT (what *Load sample CT* loads), cut to 64×64×32 voxels around the liver: the
    same checks as in Slicer, on a CT small enough for 2 CPU cores."""
    import SimpleITK as sitk
    from mome.resource_files import sample

    image = sitk.ReadImage(str(sample("example_ct").path))
    crop = image[20:84, 18:82, 70:102]
    path = Path(logic.temp_root) / "crop.nrrd"
    sitk.WriteImage(crop, str(path))
    return segmentation_io.read_volume(logic.scene, path, "sample crop")


def test_load_sample_gives_the_sample_ct(logic):
    volume = logic.load_sample()
    assert volume.GetImageData().GetDimensions() == (122, 101, 112)
    assert tuple(round(s, 3) for s in volume.GetSpacing()) == (3.0, 3.0, 3.0)


def test_volume_export_keeps_voxels_and_geometry(logic):
    user_workflow.check_volume_export(logic.scene)


@pytest.mark.slow
def test_segment_update_and_cancel_as_a_user_does(logic):
    volume = sample_crop(logic)
    node = user_workflow.check_segment(logic, volume, device="cpu", fast=True, timeout=600)
    user_workflow.check_update(logic, volume, node, device="cpu", fast=True, timeout=600)
    user_workflow.check_cancel(logic, volume, fast=True)
    assert not any(Path(logic.temp_root).glob("MoME-*")), "temporary folders were left behind"


def test_guesses_and_a_blank_volume_are_stopped_before_a_run_as_in_slicer(logic):
    user_workflow.check_refusals(logic, user_workflow.synthetic_ct(logic.scene))
    assert not any(Path(logic.temp_root).glob("MoME-*"))


def test_a_failed_run_raises_a_message_for_the_user(logic):
    volume = user_workflow.synthetic_ct(logic.scene)
    with pytest.raises(Exception) as raised:
        logic.segment(volume, "livr", device="cpu", timeout=300)
    assert "does not know one of the structure names" in str(raised.value)


def test_the_readme_scripting_example_calls_the_api_that_exists():
    """Every method and keyword the README's "Python console / batch" example uses exists."""
    import ast
    import inspect

    from MoMETrainingLib.logic import MoMETrainingLogic
    from MoMETrainingLib.model_store_logic import ModelStoreLogic

    text = (REPO / "README.md").read_text()
    section = text[text.index("### Python console / batch"):]
    code = section[section.index("```python") + len("```python"):]
    code = code[:code.index("```")]
    owners = {"logic": MoMESegmentationLogic, "training": MoMETrainingLogic}
    checked = []
    for node in ast.walk(ast.parse(code)):
        if not isinstance(node, ast.Call) or not isinstance(node.func, ast.Attribute):
            continue
        target, name = node.func.value, node.func.attr
        if isinstance(target, ast.Name) and target.id in owners:
            owner = owners[target.id]
        elif isinstance(target, ast.Attribute) and target.attr == "store":
            owner = ModelStoreLogic
        else:
            continue
        method = getattr(owner, name, None)
        assert method is not None, f"{owner.__name__}.{name} does not exist"
        parameters = inspect.signature(method).parameters
        assert all(k.arg in parameters for k in node.keywords), (name, [k.arg for k in node.keywords])
        checked.append(name)
    assert {"segment", "load_sample", "train", "set_active"} <= set(checked)
