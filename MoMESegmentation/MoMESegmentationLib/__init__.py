"""Logic and widget of the MoMESegmentation Slicer module, split by responsibility.

Qt-free (tested under plain pytest with ``slicer-core``):

* ``parameters`` — the settings of one run and their persistence;
* ``targets`` — completion, presets and checking of the typed structure names;
* ``models`` — the Model selector's entries (``mome.hub`` model store, injected);
* ``dependencies`` — how the engine and its Python packages get into Slicer (with consent);
* ``process`` — the background ``mome segment`` process and its JSON-lines protocol;
* ``errors`` — engine failures in words a clinician can act on;
* ``segmentation_io`` — volume node → NRRD, ``.seg.nrrd`` → segmentation node (update rules);
* ``logic`` — one Segment click, tying the above together.

Slicer-only: ``widget`` (the Qt panel). Submodules are imported where used, so importing this
package needs neither Qt nor MRML.
"""

SUBMODULES = ("errors", "parameters", "targets", "models", "dependencies", "process", "segmentation_io", "logic",
              "widget")
