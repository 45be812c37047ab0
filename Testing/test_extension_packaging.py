"""The Slicer extension is packaged completely: what CMake installs, the catalog entry, the icons,
the dependency list, and that the Qt widget only uses widgets the .ui file defines.

A file missing from a module's CMakeLists.txt is silently left out of the installed extension (the
module then fails only in users' Slicer), so every file of MoMESegmentation/ and MoMETraining/ must
be listed. These checks need neither Slicer nor slicer-core.
"""

from __future__ import annotations

import ast
import json
import re
import tomllib
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
MODULES = ("MoMESegmentation", "MoMETraining")
# Keys of the ExtensionsIndex catalog entry schema (slicer-extension-catalog-entry-schema-v1.0.1.json).
CATALOG_REQUIRED = {"$schema", "category", "scm_url"}
CATALOG_ALLOWED = CATALOG_REQUIRED | {"scm_revision", "scm_type", "build_dependencies", "build_subdirectory",
                                      "enabled", "tier"}


def cmake_text(path: Path) -> str:
    return "\n".join(line.split("#", 1)[0] for line in path.read_text().splitlines())


def cmake_set(text: str, variable: str) -> list[str]:
    match = re.search(rf"set\(\s*{variable}\b(.*?)\)", text, flags=re.S)
    return match.group(1).split() if match else []


def cmake_value(text: str, variable: str) -> str:
    match = re.search(rf'set\(\s*{variable}\s+"?(.*?)"?\s*\)', text, flags=re.S)
    assert match, f"{variable} is not set"
    return match.group(1)


def listed_files(module: str) -> set[str]:
    cmake = REPO / module / "CMakeLists.txt"
    assert cmake.is_file(), f"{module}/CMakeLists.txt is missing: the top-level CMakeLists.txt adds {module}"
    text = cmake_text(cmake)
    name = cmake_set(text, "MODULE_NAME")
    assert name == [module], f"{module}/CMakeLists.txt: set(MODULE_NAME {module}) expected, got {name}"
    text = text.replace("${MODULE_NAME}", module)
    return set(cmake_set(text, "MODULE_PYTHON_SCRIPTS")) | set(cmake_set(text, "MODULE_PYTHON_RESOURCES"))


def module_files(module: str) -> set[str]:
    root = REPO / module
    return {
        p.relative_to(root).as_posix()
        for p in root.rglob("*")
        if p.is_file() and p.name != "CMakeLists.txt" and "__pycache__" not in p.parts and p.suffix != ".pyc"
    }


@pytest.mark.parametrize("module", MODULES)
def test_every_module_file_is_listed_in_its_cmakelists(module):
    assert (REPO / module).is_dir(), f"{module}/ is missing but the top-level CMakeLists.txt adds it"
    listed, present = listed_files(module), module_files(module)
    assert not present - listed, f"not in {module}/CMakeLists.txt, so not installed: {sorted(present - listed)}"
    assert not listed - present, f"listed in {module}/CMakeLists.txt but missing (CMake fails): {sorted(listed - present)}"


def test_top_level_cmakelists_describes_the_extension_and_adds_both_modules():
    text = cmake_text(REPO / "CMakeLists.txt")
    assert re.search(r"project\(\s*MoME\s*\)", text)
    for module in MODULES:
        assert re.search(rf"add_subdirectory\(\s*{module}\s*\)", text), f"add_subdirectory({module}) missing"
    assert cmake_value(text, "EXTENSION_HOMEPAGE") == "https://github.com/mome-seg/SlicerMoME"
    assert cmake_value(text, "EXTENSION_CATEGORY") == "Segmentation"
    assert cmake_value(text, "EXTENSION_DEPENDS") == "PyTorch"
    for variable in ("EXTENSION_CONTRIBUTORS", "EXTENSION_DESCRIPTION"):
        assert cmake_value(text, variable)
    icon = cmake_value(text, "EXTENSION_ICONURL")
    assert icon.startswith("https://raw.githubusercontent.com/mome-seg/SlicerMoME/") and icon.endswith(
        "/Resources/Icons/MoME.png")
    assert "find_package(Slicer REQUIRED)" in text and "Slicer_EXTENSION_CPACK" in text
    # The engine ships inside the extension (see MoMESegmentationLib/dependencies.py).
    assert "mome/*.py" in text and "ctkMacroCompilePythonScript" in text


RAW = "https://raw.githubusercontent.com/mome-seg/SlicerMoME/main/"


def test_every_published_image_url_points_at_a_file_in_this_repository():
    """The ExtensionsIndex downloads the icon and every screenshot: none may point at a missing file
    (screenshots are added only when real ones exist)."""
    text = cmake_text(REPO / "CMakeLists.txt")
    urls = [cmake_value(text, "EXTENSION_ICONURL")] + cmake_value(text, "EXTENSION_SCREENSHOTURLS").split()
    s4ext = dict(line.split(" ", 1) for line in (REPO / "MoME.s4ext").read_text().splitlines()
                 if line.strip() and not line.startswith("#"))
    urls += [s4ext["iconurl"]] + s4ext.get("screenshoturls", "").split()
    for url in urls:
        assert url.startswith(RAW), url
        assert (REPO / url[len(RAW):]).is_file(), f"{url} points at a file that does not exist"


def test_the_engine_resources_are_installed_by_cmake():
    """The top-level CMakeLists installs Resources/ by suffix: every file there must match one."""
    text = cmake_text(REPO / "CMakeLists.txt")
    suffixes = re.findall(r"\$\{CMAKE_CURRENT_SOURCE_DIR\}/Resources/\*(\.[\w.]+)", text)
    files = [p for p in (REPO / "Resources").rglob("*") if p.is_file()]
    missing = [str(p.relative_to(REPO)) for p in files if not any(p.name.endswith(s) for s in suffixes)]
    assert suffixes and not missing, f"not installed with the extension: {missing}"
    assert (REPO / "Resources" / "Samples" / "example_ct.nii.gz") in files


def test_catalog_entry_matches_the_schema_and_the_cmakelists():
    entry = json.loads((REPO / "MoME.json").read_text())
    assert CATALOG_REQUIRED <= set(entry) <= CATALOG_ALLOWED, set(entry) ^ CATALOG_ALLOWED
    assert entry["$schema"].endswith("slicer-extension-catalog-entry-schema-v1.0.1.json#")
    text = cmake_text(REPO / "CMakeLists.txt")
    assert entry["category"] == cmake_value(text, "EXTENSION_CATEGORY")
    assert entry["scm_url"] == cmake_value(text, "EXTENSION_HOMEPAGE")
    assert entry["build_dependencies"] == cmake_value(text, "EXTENSION_DEPENDS").split()
    assert entry["tier"] in (1, 3, 5) and isinstance(entry.get("enabled", True), bool)
    # ExtensionsIndex rules: repository name starts with "Slicer", the extension name does not.
    assert entry["scm_url"].rsplit("/", 1)[-1].startswith("Slicer") and not "MoME".startswith("Slicer")

    s4ext = dict(line.split(" ", 1) for line in (REPO / "MoME.s4ext").read_text().splitlines()
                 if line.strip() and not line.startswith("#"))
    assert s4ext["depends"] == "PyTorch" and s4ext["category"] == "Segmentation"
    assert s4ext["homepage"] == entry["scm_url"] and s4ext["scmurl"].startswith(entry["scm_url"])
    assert s4ext["iconurl"] == cmake_value(text, "EXTENSION_ICONURL")


def png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", f"{path} is not a PNG"
    return int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")


def test_icons_are_128_pixel_pngs():
    assert png_size(REPO / "Resources" / "Icons" / "MoME.png") == (128, 128)
    assert png_size(REPO / "MoMESegmentation" / "Resources" / "Icons" / "MoMESegmentation.png") == (128, 128)


def _requirements(lines: list[str]) -> dict[str, str]:
    out = {}
    for line in lines:
        line = line.split("#", 1)[0].strip()
        if line:
            name, spec = re.match(r"([A-Za-z0-9_.\-]+)\s*(.*)", line).groups()
            out[name.lower().replace("_", "-")] = spec.replace(" ", "")
    return out


def test_slicer_requirements_follow_the_engines_dependencies_and_never_name_what_slicer_ships():
    import sys

    sys.path.insert(0, str(REPO / "MoMESegmentation"))
    from MoMESegmentationLib import dependencies
    from MoMESegmentationLib.engine import find_engine_root
    from packaging.utils import canonicalize_name

    pyproject = tomllib.loads((REPO / "pyproject.toml").read_text())
    engine = {canonicalize_name(k): v for k, v in _requirements(pyproject["project"]["dependencies"]).items()}
    slicer = {canonicalize_name(k): v for k, v in _requirements(dependencies.REQUIREMENTS_FILE.read_text().splitlines())
              .items()}
    bundled = dependencies.SLICER_BUNDLED_PACKAGES
    assert not set(slicer) & (bundled | dependencies.TORCH_PACKAGES), "Slicer (or PyTorch Utils) installs these"
    expected = {k: v for k, v in engine.items() if k not in bundled | dependencies.TORCH_PACKAGES}
    assert slicer == expected, "requirements.txt = the engine's dependencies less what Slicer and PyTorch Utils provide"
    assert engine["torch"] == dependencies.TORCH_REQUIREMENT
    assert engine["torchvision"] == dependencies.TORCHVISION_REQUIREMENT
    assert dependencies.REQUIREMENTS_FILE == REPO / "MoMESegmentation" / "Resources" / "requirements.txt"
    assert find_engine_root() == REPO


@pytest.mark.parametrize("release", ["v5.10.0", "v5.12.3"])
def test_the_bundled_list_covers_what_the_released_python_layer_imports(release):
    """Slicer's own Python layer imports some third-party packages: they are Slicer's, on our list."""
    from slicer_release import release_dir

    root = release_dir(release) / "slicer"
    imported = set()
    for path in root.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                imported |= {a.name.split(".")[0] for a in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                imported.add(node.module.split(".")[0])
    third_party = imported & {"packaging", "numpy", "scipy", "pydicom", "SimpleITK", "requests", "PIL", "vtk"}
    sys_path_names = {"PIL": "pillow"}
    import sys

    sys.path.insert(0, str(REPO / "MoMESegmentation"))
    from MoMESegmentationLib.dependencies import SLICER_BUNDLED_PACKAGES
    from packaging.utils import canonicalize_name

    assert third_party, "the released layer imports no third-party package?"
    missing = {n for n in third_party if canonicalize_name(sys_path_names.get(n, n)) not in SLICER_BUNDLED_PACKAGES}
    assert not missing


def test_python_files_compile_on_python_3_12_as_in_slicer_5_10_and_5_12():
    """Slicer 5.10 and 5.12 run Python 3.12: every engine and module file must compile there, and the
    parts the panel imports without PyTorch (vocabulary) must import."""
    import shutil
    import subprocess

    found = sorted(Path.home().glob(".pyenv/versions/3.12*/bin/python3.12"))
    python312 = found[-1] if found else shutil.which("python3.12")
    if python312 is None:
        pytest.skip("no Python 3.12 interpreter on this machine (pyenv or python3.12 on PATH)")
    files = [str(p) for folder in ("mome", "MoMESegmentation", "MoMETraining") for p in (REPO / folder).rglob("*.py")
             if "__pycache__" not in p.parts]
    script = ("import py_compile, sys\n"
              "for f in sys.argv[1:]:\n"
              "    compile(open(f, encoding='utf-8').read(), f, 'exec')\n"
              "sys.path.insert(0, " + repr(str(REPO)) + ")\n"
              "import mome, mome.resource_files, mome.cli.sample\n"
              "print(mome.__version__, len(mome.resource_files.samples()))\n")
    run = subprocess.run([str(python312), "-c", script, *files], capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    listed = len(json.loads((REPO / "Resources" / "Samples" / "samples.json").read_text())["samples"])
    assert run.stdout.split() == ["0.1.0", str(listed)]


def _ui_widget_names(path: Path) -> set[str]:
    return {w.get("name") for w in ET.parse(path).getroot().iter("widget")}


def test_widget_uses_only_widgets_defined_in_the_ui_file():
    names = _ui_widget_names(REPO / "MoMESegmentation" / "Resources" / "UI" / "MoMESegmentation.ui")
    source = (REPO / "MoMESegmentation" / "MoMESegmentationLib" / "widget.py").read_text()
    used = set(re.findall(r"self\.ui\.(\w+)", source))
    used |= set(re.findall(r'"(\w+(?:Selector|LineEdit|ComboBox|CheckBox|Button|Label|Bar|TextEdit))"', source))
    assert used and not used - names, f"widget.py uses widgets the .ui file lacks: {sorted(used - names)}"


#: The files that need Slicer's application (everything else runs under slicer-core).
SLICER_ONLY = {"widget.py", "slicer_services.py", "parameter_node.py"}


def test_module_python_files_compile_and_logic_stays_free_of_qt_and_slicer_globals():
    lib = REPO / "MoMESegmentation" / "MoMESegmentationLib"
    for path in [REPO / "MoMESegmentation" / "MoMESegmentation.py", *lib.glob("*.py")]:
        tree = ast.parse(path.read_text(), filename=str(path))
        if path.parent != lib or path.name in SLICER_ONLY:
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                names = [node.module or ""]
            elif isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "slicer":
                names = [f"slicer.{node.attr}"]
            else:
                continue
            bad = [n for n in names if n.split(".")[0] in ("qt", "ctk")
                   or n in ("slicer.mrmlScene", "slicer.modules", "slicer.app", "slicer.util", "slicer.packaging")]
            assert not bad, f"{path.name} uses {bad}; logic must take the scene and nodes as arguments"
