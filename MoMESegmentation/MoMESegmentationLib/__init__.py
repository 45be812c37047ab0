"""Logic and widget of the MoMESegmentation Slicer module, split by responsibility.

Qt-free (tested under plain pytest with ``slicer-core``):

* ``logic`` — ``MoMESegmentationLogic``: one run, from the panel or a script (``segment``), and the
  checks before it (structures the model would only guess, a volume that is not CT);
* ``process`` — the background engine process and its JSON-lines protocol, shared with MoMETraining;
* ``segmentation_job`` — one ``mome segment`` run on that process;
* ``segmentation_io`` — volume node → NRRD (and its plausibility check), ``.seg.nrrd`` →
  segmentation node (update rules, marked guesses, reliability tags);
* ``engine`` — the one engine both the panel and the process use (the bundled one);
* ``dependencies`` — MoME's Python packages in Slicer, installed with consent, never replacing Slicer's;
* ``parameters``, ``targets``, ``models``, ``gpu`` — run settings and opt-ins, structure names and
  how reliable each is with the selected model (presets too), the model list, the GPU-memory check;
* ``errors`` — engine failures and refusals in words a clinician can act on;
* ``user_workflow`` — what a user does, as checks (the in-Slicer self-test runs them).

Slicer-only: ``slicer_services`` (what the running Slicer provides: scene, PythonSlicer, installers;
shared with MoMETraining), ``parameter_node`` (the panel's state in the scene) and ``widget`` (the
Qt panel). Submodules are imported where used, so importing this package needs neither Qt nor MRML.
"""

#: Reloaded in this order by the module's Reload button (dependencies first).
SUBMODULES = ("process", "errors", "engine", "parameters", "targets", "models", "dependencies", "gpu",
              "segmentation_job", "segmentation_io", "logic", "user_workflow", "slicer_services", "parameter_node",
              "widget")
