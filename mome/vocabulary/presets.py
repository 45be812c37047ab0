"""Named prompt presets offered by the UI ("abdominal organs", "tumours", ...).

Presets list vocabulary keys rather than display names so that renaming a class for display never
breaks them; ``Testing/test_vocabulary.py`` checks that every key exists. They favour the 32
CLIP-Driven Universal Model classes, the structures MoME's experts are trained on, plus the
head-and-neck organs at risk of the OpenKBP data.

A preset is the same for every model; what a given model can be trusted with is not. So the Slicer
panel adds only the structures the selected model would segment (not those it has not learned or
was never trained on, unless the user opted in) and lists the rest.
"""

from __future__ import annotations

from .classes import StructureClass, Vocabulary
from .names import normalize_name

PRESETS: dict[str, tuple[str, ...]] = {
    "abdominal organs": (
        "liver",
        "spleen",
        "kidney_right",
        "kidney_left",
        "gallbladder",
        "stomach",
        "pancreas",
        "adrenal_gland_right",
        "adrenal_gland_left",
        "duodenum",
        "small_bowel",
        "colon",
        "rectum",
        "urinary_bladder",
    ),
    "tumours": (
        "liver_tumor",
        "kidney_tumor",
        "kidney_cyst",
        "pancreas_tumor",
        "hepatic_vessel_tumor",
        "lung_tumor",
        "colon_tumor",
    ),
    "vessels": (
        "aorta",
        "inferior_vena_cava",
        "portal_vein_and_splenic_vein",
        "hepatic_vessel",
        "celiac_trunk",
    ),
    "thorax": (
        "lung_right",
        "lung_left",
        "lung_tumor",
        "esophagus",
        "aorta",
    ),
    "head and neck": (
        "parotid_gland_left",
        "parotid_gland_right",
        "brainstem",
        "spinal_cord",
        "mandible",
        "larynx",
        "esophagus",
    ),
}

# Other spellings of preset names (American English, singular).
_ALIASES = {
    "tumors": "tumours",
    "tumour": "tumours",
    "tumor": "tumours",
    "vessel": "vessels",
    "abdomen": "abdominal organs",
    "head & neck": "head and neck",
    "head neck": "head and neck",
    "h&n": "head and neck",
}


def preset_names() -> list[str]:
    return list(PRESETS)


def _preset_name(name: str) -> str:
    norm = normalize_name(name)
    norm = _ALIASES.get(norm, norm)
    if norm not in PRESETS:
        raise KeyError(f"unknown preset {name!r}; choose one of: {', '.join(PRESETS)}")
    return norm


def preset_keys(name: str) -> list[str]:
    """The vocabulary keys of a preset; the name is case/space/underscore-insensitive."""
    return list(PRESETS[_preset_name(name)])


def preset_classes(name: str, vocabulary: Vocabulary) -> list[StructureClass]:
    return [vocabulary.get(key) for key in preset_keys(name)]


def preset_prompt_text(name: str, vocabulary: Vocabulary) -> str:
    """The preset as the comma-separated text a user would type (what the UI puts in its prompt box)."""
    return ", ".join(c.name for c in preset_classes(name, vocabulary))
