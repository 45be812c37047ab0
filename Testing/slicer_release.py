"""Run code inside Slicer's *released* Python layer, with only the application object and Qt stood in.

``../shared/slicer-python`` (or ``$MOME_SLICER_PYTHON``) holds the ``slicer`` package exactly as
Slicer 5.10.0 and 5.12.3 put it on ``sys.path``, and the PyTorch extension's ``PyTorchUtils.py``.
:func:`run_in_slicer` starts a fresh interpreter in which

* ``import slicer`` is that release's package (``util``, ``packaging`` from 5.12, ``i18n``,
  ``ScriptedLoadableModule``, ``parameterNodeWrapper``), with the MRML classes of the
  ``slicer-core`` wheel added to it, as Slicer's kits add them;
* ``qt`` and ``ctk`` are inert stand-ins (``Testing/slicer_standins``);
* ``slicer.app`` is :class:`StandInApp` (``testingEnabled`` chosen by the test) and
  ``slicer.mrmlScene`` a real ``vtkMRMLScene``;
* ``PythonSlicer`` is on ``PATH``: a link to a throw-away virtual environment's interpreter, which
  is also the interpreter running the test, so ``pip`` run by Slicer's code installs into that
  environment and never into the one running pytest.

The test's code runs after that set-up and reports by printing one JSON object as its last line.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import sysconfig
import textwrap
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
STANDINS = Path(__file__).resolve().parent / "slicer_standins"
RELEASES = ("v5.10.0", "v5.12.3")


def slicer_python_dir() -> Path:
    env = os.environ.get("MOME_SLICER_PYTHON")
    return Path(env) if env else REPO.parent / "shared" / "slicer-python"


def release_dir(release: str) -> Path:
    path = slicer_python_dir() / release
    if not (path / "slicer" / "util.py").is_file():
        pytest.skip(f"Slicer's released Python layer {release} not found at {path} (set MOME_SLICER_PYTHON)")
    return path


def pytorchutils_dir() -> Path:
    path = slicer_python_dir() / "SlicerPyTorch"
    if not (path / "PyTorchUtils.py").is_file():
        pytest.skip(f"PyTorchUtils.py (SlicerPyTorch) not found at {path} (set MOME_SLICER_PYTHON)")
    return path


_PRELUDE = '''
import json, logging, sys
logging.basicConfig(level=logging.INFO, format="LOG %(levelname)s %(message)s", stream=sys.stdout)
import slicer, slicer_core
import slicer.util  # Slicer imports it while starting (the application sets up its Python with it)
for _name in dir(slicer_core):
    if _name.startswith(("vtk", "qSlicer")) and not hasattr(slicer, _name):
        setattr(slicer, _name, getattr(slicer_core, _name))
import qt


def _qt_classes(name):  # Slicer's Qt widget classes (qMRMLNodeComboBox, ...) come from its Qt kits
    if name.startswith(("qMRML", "qSlicer")):
        return getattr(qt, name)
    raise AttributeError(f"module 'slicer' has no attribute {name!r}")


slicer.__getattr__ = _qt_classes


class StandInApp(qt.Inert):
    """The parts of qSlicerApplication that Slicer's Python layer and MoME call."""

    applicationName = "Slicer"
    temporaryPath = TEMP_PATH

    def __init__(self, testing):
        self.testing = testing
        self.connections = []

    def testingEnabled(self):
        return self.testing

    def commandOptions(self):
        return qt.Inert(testingEnabled=self.testing)

    def startupEnvironment(self):
        import os
        env = dict(os.environ)
        return type("Env", (), {"keys": lambda s: list(env), "value": lambda s, k: env[k]})()

    def processEvents(self):
        qt.process_events()

    def translate(self, context, text, *args):  # English: the text itself
        return text

    def connect(self, signal, slot):
        self.connections.append((signal, slot))


slicer.app = StandInApp(TESTING)
slicer.mrmlScene = slicer.vtkMRMLScene()


def report(**facts):
    print(json.dumps(facts, default=str))
'''


def _throwaway_python(tmp_path: Path, hide: tuple[str, ...] = ()) -> Path:
    """A virtual environment without its own packages that sees this interpreter's site-packages
    (so vtk, slicer-core, packaging, pip ... import) but installs into its own; the distributions
    named in ``hide`` (e.g. torch) are not there at all, as in a Slicer that lacks them."""
    venv = tmp_path / "slicer-python-env"
    if not (venv / "bin" / "python").exists():
        subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
        purelib = Path(sysconfig.get_paths(vars={"base": str(venv), "platbase": str(venv)})["purelib"])
        parents = [Path(p) for p in sys.path if p.endswith("site-packages") and Path(p).is_dir()]
        if hide:  # the parents' entries, linked one by one, less the hidden distributions
            farm = tmp_path / "parent-site-packages"
            farm.mkdir()
            hidden = tuple(h.lower() for h in hide)
            for parent in parents:
                for entry in parent.iterdir():
                    stem = entry.name.lower().split("-")[0]
                    if stem in hidden or stem.split(".")[0] in hidden or (farm / entry.name).exists():
                        continue
                    (farm / entry.name).symlink_to(entry)
            parents = [farm]
        (purelib / "zz_parent_site.pth").write_text("\n".join(map(str, parents)) + "\n")
    bindir = tmp_path / "slicer-bin"
    bindir.mkdir(exist_ok=True)
    launcher = bindir / "PythonSlicer"  # a launcher script, as Slicer's is: a link would lose the venv
    if not launcher.exists():
        launcher.write_text(f'#!/bin/sh\nexec "{venv / "bin" / "python"}" "$@"\n')
        launcher.chmod(0o755)
    return venv / "bin" / "python"


def run_in_slicer(release: str, code: str, tmp_path: Path, testing: bool = False, pytorchutils: bool = False,
                  env: dict[str, str] | None = None, hide: tuple[str, ...] = (), timeout: float = 600,
                  ) -> tuple[dict, str]:
    """Run ``code`` in the emulated Slicer ``release``; returns (the last JSON line, the whole output)."""
    paths = [str(STANDINS), str(release_dir(release))]
    if pytorchutils:
        paths.append(str(pytorchutils_dir()))
    paths += [str(REPO / "MoMESegmentation"), str(REPO / "MoMETraining"), str(REPO)]
    python = _throwaway_python(tmp_path, hide)
    script = tmp_path / "slicer_script.py"
    prelude = _PRELUDE.replace("TEMP_PATH", repr(str(tmp_path / "slicer-temp"))).replace("TESTING", repr(testing))
    script.write_text("import sys\nsys.path[:0] = " + repr(paths) + "\n" + prelude + textwrap.dedent(code))
    (tmp_path / "slicer-temp").mkdir(exist_ok=True)
    run_env = {**os.environ, "PATH": f"{tmp_path / 'slicer-bin'}{os.pathsep}{os.environ.get('PATH', '')}",
               "PIP_NO_INDEX": "1", "PIP_DISABLE_PIP_VERSION_CHECK": "1", **(env or {})}
    run_env.pop("PYTHONPATH", None)
    proc = subprocess.run([str(python), str(script)], cwd=tmp_path, env=run_env, capture_output=True, text=True,
                          timeout=timeout)
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, output
    lines = [line for line in proc.stdout.splitlines() if line.startswith("{")]
    assert lines, output
    return json.loads(lines[-1]), output


def probe_wheel(folder: Path, name: str, version: str = "1.0", requires: tuple[str, ...] = ()) -> Path:
    """A minimal pure-Python wheel (one empty module) for pip to install from ``folder``, offline."""
    import base64
    import hashlib
    import zipfile

    module = name.replace("-", "_")
    dist_info = f"{module}-{version}.dist-info"
    files = {
        f"{module}/__init__.py": "",
        f"{dist_info}/METADATA": "Metadata-Version: 2.1\nName: " + name + "\nVersion: " + version + "\n"
        + "".join(f"Requires-Dist: {r}\n" for r in requires),
        f"{dist_info}/WHEEL": "Wheel-Version: 1.0\nGenerator: mome-tests\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
    }
    record = []
    for path, text in files.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(text.encode()).digest()).rstrip(b"=").decode()
        record.append(f"{path},sha256={digest},{len(text.encode())}")
    files[f"{dist_info}/RECORD"] = "\n".join(record + [f"{dist_info}/RECORD,,"]) + "\n"
    folder.mkdir(parents=True, exist_ok=True)
    wheel = folder / f"{module}-{version}-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as archive:
        for path, text in files.items():
            archive.writestr(path, text)
    return wheel
