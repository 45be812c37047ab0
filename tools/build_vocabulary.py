#!/usr/bin/env python3
"""Build MoME's structure vocabulary: ``Resources/Vocabulary/vocabulary.json`` and ``MoME.term.json``.

Provenance of every field
-------------------------
* **Universal Model classes** (``um_index``, prompts): the 32-class template of the CLIP-Driven
  Universal Model (Liu et al., ICCV 2023, https://github.com/ljwztc/CLIP-Driven-Universal-Model).
  Only the class names and their order are used; two misspellings of the original template
  ("Arota", "Celiac Truck") are corrected and kept as synonyms so old label lists still resolve.
* **TotalSegmentator classes** (``totalseg``, ``totalseg_id``): the 117 classes of the TotalSegmentator
  v2 "total" task, read from a ``{id: name}`` JSON file (``--totalseg-labels``).
* **SNOMED CT codes and colours of TotalSegmentator classes**: ``totalsegmentator/resources/
  totalsegmentator_snomed_mapping.csv`` from the Apache-2.0 ``totalsegmentator`` wheel on PyPI
  (``--snomed-csv``; a ``.whl`` path works too). Its ``liver_vessels``, ``liver_tumor`` and
  ``kidney_cyst_left`` rows also supply the codes of the Universal Model's hepatic vessel, liver
  tumour and kidney cyst classes.
* **Codes of the other Universal Model classes** are written below (``UM_ONLY``) following the same
  DICOM conventions as the CSV: organs are category "Anatomical Structure" + organ type + optional
  Left/Right modifier; lesions are category "Morphologically Altered Structure" + "Neoplasm" (or
  "Cyst") with the organ as anatomic region. Each code carries a comment on how sure we are.
* **Names, synonyms, kinds, colours of the Universal-Model-only classes**: written here by hand.
* **Head-and-neck organs at risk** (``OTHER_CLASSES``: parotid glands, brainstem, mandible, larynx),
  the structures OpenKBP (Babier et al., Med Phys 2021) contours besides the spinal cord and the
  oesophagus, which TotalSegmentator already has. Neither template nor CSV has them; their SNOMED CT
  codes are those DICOM PS3.16 lists in its context groups (named at each code), with the usual
  category and Left/Right type modifier; names, synonyms and colours are written here by hand.

Re-run after changing anything here (the outputs are committed)::

    pip download totalsegmentator==2.18.0 --no-deps -d /tmp/ts
    python tools/build_vocabulary.py --snomed-csv /tmp/ts/totalsegmentator-2.18.0-py3-none-any.whl \\
        --totalseg-labels /path/to/totalseg_v2_total_labels.json
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import io
import json
import sys
import zipfile
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))  # run from a checkout without installing

from mome.vocabulary.classes import Vocabulary  # noqa: E402
from mome.vocabulary.names import normalize_name  # noqa: E402
from mome.vocabulary.terminology import CONTEXT_NAME, build_terminology_context  # noqa: E402

CSV_MEMBER = "totalsegmentator/resources/totalsegmentator_snomed_mapping.csv"
TOTALSEG_VERSION = "2.18.0"
DEFAULT_TOTALSEG_LABELS = Path("/work/shared/data/totalseg_example/totalseg_v2_total_labels.json")
PROMPT_TEMPLATE = "A computerized tomography of a {prompt}"


def sct(value: str, meaning: str) -> dict[str, str]:
    return {"value": value, "scheme": "SCT", "meaning": meaning}


ANATOMICAL_STRUCTURE = sct("123037004", "Anatomical Structure")  # category used by the TS CSV
MORPH_ALTERED = sct("49755003", "Morphologically Altered Structure")  # lesion category, as in the CSV
NEOPLASM = sct("108369006", "Neoplasm")  # as the CSV's liver_tumor row
LEFT = sct("7771000", "Left")
RIGHT = sct("24028007", "Right")
SIDE_CODE = {"left": LEFT, "right": RIGHT}
CODE_FIELDS = ("category", "type", "type_modifier", "anatomic_region", "anatomic_region_modifier")
# Organ codes used as lesion regions; identical to the type codes of the CSV's organ rows.
LIVER = sct("10200004", "Liver")
KIDNEY = sct("64033007", "Kidney")
PANCREAS = sct("15776009", "Pancreas")
LUNG = sct("39607008", "Lung")
COLON = sct("71854001", "Colon")

# ---------------------------------------------------------------------------------------------
# The CLIP-Driven Universal Model template: (index, name with corrected spelling, our key).
# A key that is also a TotalSegmentator name merges the two into one entry.
# ---------------------------------------------------------------------------------------------
UM_CLASSES: list[tuple[int, str, str]] = [
    (1, "Spleen", "spleen"),
    (2, "Right Kidney", "kidney_right"),
    (3, "Left Kidney", "kidney_left"),
    (4, "Gall Bladder", "gallbladder"),
    (5, "Esophagus", "esophagus"),
    (6, "Liver", "liver"),
    (7, "Stomach", "stomach"),
    (8, "Aorta", "aorta"),  # template spelling: "Arota"
    (9, "Postcava", "inferior_vena_cava"),  # the IVC
    (10, "Portal Vein and Splenic Vein", "portal_vein_and_splenic_vein"),
    (11, "Pancreas", "pancreas"),
    (12, "Right Adrenal Gland", "adrenal_gland_right"),
    (13, "Left Adrenal Gland", "adrenal_gland_left"),
    (14, "Duodenum", "duodenum"),
    (15, "Hepatic Vessel", "hepatic_vessel"),
    (16, "Right Lung", "lung_right"),
    (17, "Left Lung", "lung_left"),
    (18, "Colon", "colon"),
    (19, "Intestine", "small_bowel"),  # UM's "intestine" is the small bowel (TS small_bowel)
    (20, "Rectum", "rectum"),
    (21, "Bladder", "urinary_bladder"),
    (22, "Prostate", "prostate"),
    # Femoral *heads* only: not the same structure as TotalSegmentator's whole femur_left/right.
    (23, "Left Head of Femur", "femur_head_left"),
    (24, "Right Head of Femur", "femur_head_right"),
    (25, "Celiac Trunk", "celiac_trunk"),  # template spelling: "Celiac Truck"
    (26, "Kidney Tumor", "kidney_tumor"),
    (27, "Liver Tumor", "liver_tumor"),
    (28, "Pancreas Tumor", "pancreas_tumor"),
    (29, "Hepatic Vessel Tumor", "hepatic_vessel_tumor"),
    (30, "Lung Tumor", "lung_tumor"),
    (31, "Colon Tumor", "colon_tumor"),
    (32, "Kidney Cyst", "kidney_cyst"),
]

# Universal Model classes without a TotalSegmentator "total" equivalent. Codes either come from a
# named CSV row ("csv_row"), whose colour is kept unless "color" is given, or are written here.
UM_ONLY: dict[str, dict[str, Any]] = {
    "hepatic_vessel": {
        "name": "hepatic vessel",
        "kind": "vessel",
        # TS's liver_vessels row: "Blood vessel" (59820001) with anatomic region Liver.
        "csv_row": "liver_vessels",
        # The CSV colour (60,160,60) is nearly the liver's (40,140,40); a blue keeps them apart.
        "color": [100, 180, 255],
    },
    "lung_right": {
        "name": "right lung",
        "kind": "organ",
        "laterality": "right",
        "category": ANATOMICAL_STRUCTURE,
        "type": LUNG,  # SCT 39607008 Lung (sure; also the CSV's lung_vessels region)
        "type_modifier": RIGHT,
        "color": [95, 175, 215],
    },
    "lung_left": {
        "name": "left lung",
        "kind": "organ",
        "laterality": "left",
        "category": ANATOMICAL_STRUCTURE,
        "type": LUNG,
        "type_modifier": LEFT,
        "color": [75, 150, 200],
    },
    "rectum": {
        "name": "rectum",
        "kind": "organ",
        "category": ANATOMICAL_STRUCTURE,
        "type": sct("34402009", "Rectum"),  # "Rectum structure"; sure (DICOM CID 4031, TG-263)
        "color": [190, 100, 140],
    },
    "femur_head_left": {
        "name": "left femoral head",
        "kind": "bone",
        "laterality": "left",
        "category": ANATOMICAL_STRUCTURE,
        # "Structure of head of femur" 2812003, as TG-263 maps Femur_Head_L/R (with a laterality
        # qualifier). Fairly sure. (359673000, sometimes quoted, could not be confirmed.)
        "type": sct("2812003", "Head of femur"),
        "type_modifier": LEFT,
        "color": [240, 200, 120],
    },
    "femur_head_right": {
        "name": "right femoral head",
        "kind": "bone",
        "laterality": "right",
        "category": ANATOMICAL_STRUCTURE,
        "type": sct("2812003", "Head of femur"),
        "type_modifier": RIGHT,
        "color": [220, 180, 100],
    },
    "celiac_trunk": {
        "name": "celiac trunk",
        "kind": "vessel",
        "category": ANATOMICAL_STRUCTURE,
        # "Structure of celiac artery" 57850000; DICOM's CID 12116 and TG-263 (A_Celiac) use it. Sure.
        "type": sct("57850000", "Celiac artery"),
        "color": [230, 70, 70],
    },
    "kidney_tumor": {
        "name": "kidney tumor",
        "kind": "tumor",
        "parent": ["kidney_left", "kidney_right"],
        "category": MORPH_ALTERED,
        "type": NEOPLASM,
        "anatomic_region": KIDNEY,
        "color": [255, 165, 0],
    },
    "liver_tumor": {
        "name": "liver tumor",
        "kind": "tumor",
        "parent": ["liver"],
        "csv_row": "liver_tumor",  # Neoplasm in region Liver
    },
    "pancreas_tumor": {
        "name": "pancreas tumor",
        "kind": "tumor",
        "parent": ["pancreas"],
        "category": MORPH_ALTERED,
        "type": NEOPLASM,
        "anatomic_region": PANCREAS,
        "color": [255, 90, 90],
    },
    "hepatic_vessel_tumor": {
        "name": "hepatic vessel tumor",
        "kind": "tumor",
        # The MSD "hepatic vessel" task's tumours are liver tumours next to the vessels, so the
        # region is the liver; the codes therefore equal liver_tumor's and only the name differs.
        "parent": ["liver"],
        "category": MORPH_ALTERED,
        "type": NEOPLASM,
        "anatomic_region": LIVER,
        "color": [170, 0, 255],
    },
    "lung_tumor": {
        "name": "lung tumor",
        "kind": "tumor",
        "parent": ["lung_left", "lung_right"],
        "category": MORPH_ALTERED,
        "type": NEOPLASM,
        "anatomic_region": LUNG,
        "color": [255, 120, 40],
    },
    "colon_tumor": {
        "name": "colon tumor",
        "kind": "tumor",
        "parent": ["colon"],
        "category": MORPH_ALTERED,
        "type": NEOPLASM,
        "anatomic_region": COLON,
        "color": [255, 50, 130],
    },
    "kidney_cyst": {
        "name": "kidney cyst",
        "kind": "cyst",
        "parent": ["kidney_left", "kidney_right"],
        # TS's kidney_cyst_left row (Cyst 367643001 in region Kidney) without its Left modifier:
        # the Universal Model class covers both kidneys.
        "csv_row": "kidney_cyst_left",
        "drop_region_modifier": True,
        "color": [120, 200, 235],
    },
}

# Classes outside both the Universal Model template and TotalSegmentator "total": head-and-neck
# organs at risk (OpenKBP). Codes from DICOM PS3.16 context groups (looked up in the CID tables as
# the FHIR value sets of github.com/bvdh/dicom-terminology-in-fhir render them, DICOM 2022 edition;
# originals at https://dicom.nema.org/medical/dicom/current/output/chtml/part16/): sure for all five.
PAROTID = sct("45289007", "Parotid gland")  # CID 4031 Common Anatomic Regions
OTHER_CLASSES: dict[str, dict[str, Any]] = {
    "parotid_gland_left": {
        "name": "left parotid gland",
        "kind": "organ",
        "laterality": "left",
        "category": ANATOMICAL_STRUCTURE,
        "type": PAROTID,
        "type_modifier": LEFT,  # paired organs carry the side as type modifier, like the kidneys
        "color": [255, 170, 120],
    },
    "parotid_gland_right": {
        "name": "right parotid gland",
        "kind": "organ",
        "laterality": "right",
        "category": ANATOMICAL_STRUCTURE,
        "type": PAROTID,
        "type_modifier": RIGHT,
        "color": [215, 130, 85],
    },
    "brainstem": {
        "name": "brainstem",
        "kind": "organ",
        "category": ANATOMICAL_STRUCTURE,
        # "Brain stem" 119238007: CID 7140 (Brain Structure for Volumetric Measurement) and CID 7153
        # (CNS Segmentation Type); no DICOM context group lists another brainstem code.
        "type": sct("119238007", "Brain stem"),
        "color": [200, 150, 220],
    },
    "mandible": {
        "name": "mandible",
        "kind": "bone",
        "category": ANATOMICAL_STRUCTURE,
        "type": sct("91609006", "Mandible"),  # CID 4031 and CID 4028 Craniofacial Anatomic Regions
        "color": [235, 235, 190],
    },
    "larynx": {
        "name": "larynx",
        "kind": "organ",
        "category": ANATOMICAL_STRUCTURE,
        "type": sct("4596009", "Larynx"),  # CID 4031 and CID 4028
        "color": [90, 200, 170],
    },
}

# Synonyms by key (full spellings). Sides may be written in any position/abbreviation at lookup
# time, so "kidney left" or "L kidney" need not be listed.
SYNONYMS: dict[str, list[str]] = {
    "gallbladder": ["gall bladder"],
    "esophagus": ["oesophagus"],
    "aorta": ["arota"],  # the Universal Model template's spelling
    "inferior_vena_cava": ["IVC", "postcava", "postcava (IVC)", "vena cava inferior"],
    "superior_vena_cava": ["SVC"],
    "portal_vein_and_splenic_vein": ["portal vein", "splenic vein", "portal and splenic vein"],
    "small_bowel": ["intestine", "small intestine"],
    "urinary_bladder": ["bladder"],
    "prostate": ["prostate gland"],
    "thyroid_gland": ["thyroid"],
    "brachiocephalic_trunk": ["brachiocephalic artery", "innominate artery"],
    "atrial_appendage_left": ["LAA", "left auricular appendage"],
    "skull": ["cranium"],
    "sternum": ["breastbone"],
    "hepatic_vessel": ["hepatic vessels", "liver vessels", "liver vessel"],
    "femur_head_left": ["left head of femur", "left femur head"],
    "femur_head_right": ["right head of femur", "right femur head"],
    "celiac_trunk": ["celiac artery", "coeliac trunk", "coeliac artery", "celiac truck"],
    "kidney_tumor": ["kidney tumour", "renal tumor", "renal tumour"],
    "liver_tumor": ["liver tumour", "hepatic tumor", "hepatic tumour"],
    "pancreas_tumor": ["pancreas tumour", "pancreatic tumor", "pancreatic tumour"],
    "hepatic_vessel_tumor": ["hepatic vessel tumour"],
    "lung_tumor": ["lung tumour", "pulmonary tumor", "pulmonary tumour"],
    "colon_tumor": ["colon tumour", "colonic tumor", "colonic tumour"],
    "kidney_cyst": ["renal cyst"],
    # Head and neck. Run-together names are OpenKBP's file names ("LeftParotid.csv") and AAPM TG-263
    # standard RT structure names ("SpinalCord", "Bone_Mandible", "Parotid_L": that one would resolve
    # anyway, but listed it shows users of `mome classes` that RT names work).
    "spinal_cord": ["SpinalCord"],
    "parotid_gland_left": ["left parotid", "LeftParotid", "Parotid_L"],
    "parotid_gland_right": ["right parotid", "RightParotid", "Parotid_R"],
    "brainstem": ["brain stem", "truncus encephali"],
    "mandible": ["lower jaw", "jaw bone", "jawbone", "Bone_Mandible", "mandibula"],
    "larynx": ["voice box"],
}

# TotalSegmentator base names (side removed) whose display name is not just the words of the name.
TS_BASE_NAMES = {
    "clavicula": "clavicle",
    "hip": "hip bone",
    "iliac_vena": "common iliac vein",
    "iliac_artery": "common iliac artery",
    "autochthon": "autochthonous back muscles",
}
# Synonyms of base names; the side (if any) is put in front of each.
TS_BASE_SYNONYMS = {
    "clavicula": ["clavicula", "collarbone"],
    "hip": ["hip", "os coxae", "innominate bone"],
    "iliac_vena": ["iliac vein", "iliac vena"],
    "iliac_artery": ["iliac artery"],
    "autochthon": ["autochthon", "deep back muscles"],
    "adrenal_gland": ["adrenal", "suprarenal gland"],
    "kidney_cyst": ["renal cyst"],
    "common_carotid_artery": ["carotid artery"],
    "brachiocephalic_vein": ["innominate vein"],
    "femur": ["thigh bone"],
    "scapula": ["shoulder blade"],
}
TS_BONES = {"sacrum", "skull", "sternum", "femur", "humerus", "scapula", "clavicula", "hip"}
TS_MUSCLES = {"gluteus_maximus", "gluteus_medius", "gluteus_minimus", "autochthon", "iliopsoas"}
TS_VESSELS = {
    "aorta", "pulmonary_vein", "brachiocephalic_trunk", "subclavian_artery", "common_carotid_artery",
    "brachiocephalic_vein", "superior_vena_cava", "inferior_vena_cava", "portal_vein_and_splenic_vein",
    "iliac_artery", "iliac_vena",
}  # fmt: skip
TS_OTHER = {"costal_cartilages", "spinal_cord", "atrial_appendage"}
ORDINALS = "first second third fourth fifth sixth seventh eighth ninth tenth eleventh twelfth".split()
LOBE_ABBREVIATIONS = {
    ("left", "upper"): "LUL",
    ("left", "lower"): "LLL",
    ("right", "upper"): "RUL",
    ("right", "middle"): "RML",
    ("right", "lower"): "RLL",
}


# ---------------------------------------------------------------------------------------------
# Reading the sources
# ---------------------------------------------------------------------------------------------


def read_snomed_csv(path: Path) -> tuple[dict[str, dict[str, str]], str]:
    """The CSV rows by structure name, and the sha256 of the CSV bytes (recorded for provenance)."""
    if path.suffix == ".whl":
        with zipfile.ZipFile(path) as wheel:
            data = wheel.read(CSV_MEMBER)
    else:
        data = path.read_bytes()
    rows = {row["Structure"]: row for row in csv.DictReader(io.StringIO(data.decode("utf-8")))}
    return rows, hashlib.sha256(data).hexdigest()


# Typos in the CSV's code meanings, corrected to the SNOMED CT term (the code values are right).
MEANING_FIXES = {("SCT", "75297007"): "Gluteus minimus muscle"}  # CSV: "Gluteus minius muscle"


def codes_from_row(row: dict[str, str]) -> dict[str, Any]:
    """category/type/modifier/region codes and colour from one CSV row (empty columns -> None)."""

    def code(prefix: str) -> dict[str, str] | None:
        value = row[f"{prefix}.CodeValue"].strip()
        if not value:
            return None
        scheme = row[f"{prefix}.CodingSchemeDesignator"].strip()
        meaning = MEANING_FIXES.get((scheme, value), row[f"{prefix}.CodeMeaning"].strip())
        return {"value": value, "scheme": scheme, "meaning": meaning}

    return {
        "category": code("SegmentedPropertyCategoryCodeSequence"),
        "type": code("SegmentedPropertyTypeCodeSequence"),
        "type_modifier": code("SegmentedPropertyTypeModifierCodeSequence"),
        "anatomic_region": code("AnatomicRegionSequence"),
        "anatomic_region_modifier": code("AnatomicRegionModifierSequence"),
        "color": [int(c) for c in row["DicomRGBColor"].split(",")],
    }


def read_totalseg_labels(path: Path) -> dict[int, str]:
    with open(path, encoding="utf-8") as f:
        return {int(k): v for k, v in json.load(f).items()}


# ---------------------------------------------------------------------------------------------
# Names of TotalSegmentator classes
# ---------------------------------------------------------------------------------------------


def split_ts_name(ts: str) -> tuple[str | None, str]:
    """("left", "rib_1") for "rib_left_1": the side and the name without it."""
    parts = ts.split("_")
    sides = [p for p in parts if p in ("left", "right")]
    return (sides[0] if sides else None), "_".join(p for p in parts if p not in ("left", "right"))


def ts_names(ts: str) -> tuple[str, list[str]]:
    """Display name and synonyms of a TotalSegmentator class."""
    side, base = split_ts_name(ts)
    prefix = f"{side} " if side else ""
    if base.startswith("vertebrae_"):
        level = base.split("_")[1]  # "L1"
        return f"{level} vertebra", [f"vertebra {level}", f"vertebrae {level}", level]
    if base.startswith("rib_"):
        n = int(base.split("_")[1])
        suffix = {1: "st", 2: "nd", 3: "rd"}.get(n, "th")
        return f"{prefix}{n}{suffix} rib", [f"{prefix}rib {n}", f"{prefix}{ORDINALS[n - 1]} rib"]
    if base.startswith("lung_") and base.endswith("_lobe"):
        lobe = base.split("_")[1]  # upper / middle / lower
        synonyms = [f"{prefix}{lobe} lobe", f"{lobe} lobe of {side} lung", f"{prefix}lung {lobe} lobe"]
        return f"{prefix}{lobe} lung lobe", [*synonyms, LOBE_ABBREVIATIONS[(side or "", lobe)]]
    words = TS_BASE_NAMES.get(base, base.replace("_", " "))
    synonyms = [f"{prefix}{s}" for s in TS_BASE_SYNONYMS.get(base, [])]
    return f"{prefix}{words}", synonyms


def ts_kind(ts: str) -> str:
    _, base = split_ts_name(ts)
    if base.startswith(("vertebrae_", "rib_")) or base in TS_BONES:
        return "bone"
    if base in TS_MUSCLES:
        return "muscle"
    if base in TS_VESSELS:
        return "vessel"
    if base == "kidney_cyst":
        return "cyst"
    if base in TS_OTHER:
        return "other"
    return "organ"


# ---------------------------------------------------------------------------------------------
# Building entries
# ---------------------------------------------------------------------------------------------


def clean_synonyms(name: str, candidates: list[str]) -> list[str]:
    """Drop repeats (ignoring case and separators) and the name itself, keeping the first order.

    Spellings that differ only in where the side stands ("kidney right") are kept on purpose: lookup
    would find them anyway, but listed they show users (``mome classes``) what is accepted.
    """
    seen = {normalize_name(name)}
    kept = []
    for syn in candidates:
        norm = normalize_name(syn)
        if norm not in seen:
            seen.add(norm)
            kept.append(syn)
    return kept


def short_side_synonyms(name: str, laterality: str | None) -> list[str]:
    """"L kidney" for "left kidney": the abbreviated side, for plain "side + organ" names."""
    side = f"{laterality} "
    if not laterality or not name.startswith(side) or any(ch.isdigit() for ch in name):
        return []
    return [f"{laterality[0].upper()} {name[len(side):]}"]


def make_entry(
    key: str, name: str, prompt: str, synonyms: list[str], codes: dict[str, Any], **extra: Any
) -> dict[str, Any]:
    synonyms = [*synonyms, *short_side_synonyms(name, extra.get("laterality"))]
    entry = {
        "key": key,
        "name": name,
        "prompt": prompt,
        "synonyms": clean_synonyms(name, synonyms),
        "laterality": extra.get("laterality"),
        "kind": extra.get("kind", "organ"),
        "parent": list(extra.get("parent", [])),
        "category": codes["category"],
        "type": codes["type"],
        "type_modifier": codes.get("type_modifier"),
        "anatomic_region": codes.get("anatomic_region"),
        "anatomic_region_modifier": codes.get("anatomic_region_modifier"),
        "color": list(codes["color"]),
        "um_index": extra.get("um_index"),
        "totalseg": extra.get("totalseg"),
        "totalseg_id": extra.get("totalseg_id"),
    }
    # A lateral structure must say so in its codes, either on the type or on the region.
    side_code = SIDE_CODE.get(entry["laterality"] or "")
    if side_code and side_code not in (entry["type_modifier"], entry["anatomic_region_modifier"]):
        if "lobe" not in key:  # "Middle lobe of right lung" carries the side in its type
            raise ValueError(f"{key}: laterality {entry['laterality']} but no matching modifier code")
    return entry


def build_entries(csv_rows: dict[str, dict[str, str]], ts_labels: dict[int, str]) -> list[dict[str, Any]]:
    ts_ids = {name: i for i, name in ts_labels.items()}
    missing = [name for name in ts_ids if name not in csv_rows]
    if missing:
        raise SystemExit(f"the SNOMED CSV lacks TotalSegmentator classes {missing}; wrong CSV version?")

    entries: list[dict[str, Any]] = []
    for um_index, um_name, key in UM_CLASSES:
        um_words = um_name.lower()
        if key in ts_ids:  # merged with its TotalSegmentator class
            name, ts_synonyms = ts_names(key)
            codes = codes_from_row(csv_rows[key])
            side, _ = split_ts_name(key)
            extra = {"laterality": side, "kind": ts_kind(key), "totalseg": key, "totalseg_id": ts_ids[key]}
            synonyms = [um_words, *SYNONYMS.get(key, []), *ts_synonyms, key.replace("_", " ")]
        else:
            spec = UM_ONLY[key]
            name = spec["name"]
            if "csv_row" in spec:
                codes = codes_from_row(csv_rows[spec["csv_row"]])
                if spec.get("drop_region_modifier"):
                    codes["anatomic_region_modifier"] = None
            else:
                codes = {k: spec.get(k) for k in CODE_FIELDS}
            if "color" in spec:
                codes["color"] = spec["color"]
            extra = {k: spec[k] for k in ("laterality", "kind", "parent") if k in spec}
            synonyms = [um_words, *SYNONYMS.get(key, [])]
        entries.append(make_entry(key, name, um_words, synonyms, codes, um_index=um_index, **extra))

    merged = {key for _, _, key in UM_CLASSES}
    for ts_id, ts in sorted(ts_labels.items()):
        if ts in merged:
            continue
        key = ts.lower()  # vertebrae_L1 -> vertebrae_l1: keys are all lower case
        name, ts_synonyms = ts_names(ts)
        side, base = split_ts_name(ts)
        parent = [f"kidney_{side}"] if base == "kidney_cyst" else []
        synonyms = [*SYNONYMS.get(key, []), *ts_synonyms, ts.replace("_", " ")]
        extra = {"laterality": side, "kind": ts_kind(ts), "parent": parent, "totalseg": ts, "totalseg_id": ts_id}
        entries.append(make_entry(key, name, name, synonyms, codes_from_row(csv_rows[ts]), **extra))

    for key, spec in OTHER_CLASSES.items():
        codes = {k: spec.get(k) for k in (*CODE_FIELDS, "color")}
        extra = {k: spec[k] for k in ("laterality", "kind", "parent") if k in spec}
        entries.append(make_entry(key, spec["name"], spec["name"], SYNONYMS.get(key, []), codes, **extra))
    return entries


# ---------------------------------------------------------------------------------------------
# Writing
# ---------------------------------------------------------------------------------------------


def header(csv_sha256: str, labels_path: Path) -> dict[str, Any]:
    return {
        "name": "MoME structure vocabulary",
        "format_version": 1,
        "generated_by": "tools/build_vocabulary.py (do not edit by hand; change the script and re-run it)",
        "prompt_template": PROMPT_TEMPLATE,
        "terminology_context": CONTEXT_NAME,
        "sources": [
            {
                "what": "class names and index order (um_index) of the 32-class CLIP-Driven Universal Model template",
                "where": "https://github.com/ljwztc/CLIP-Driven-Universal-Model",
                "use": "names only (facts); spellings corrected",
            },
            {
                "what": "TotalSegmentator v2 'total' task class names and label values (totalseg, totalseg_id)",
                "where": "https://github.com/wasserth/TotalSegmentator",
                "file": labels_path.name,
                "licence": "Apache-2.0",
            },
            {
                "what": "SNOMED CT codes and colours of TotalSegmentator classes",
                "where": f"totalsegmentator=={TOTALSEG_VERSION} wheel on PyPI, {CSV_MEMBER}",
                "sha256": csv_sha256,
                "licence": "Apache-2.0 (Copyright Jakob Wasserthal)",
            },
            {
                "what": "codes, names, synonyms and colours of Universal-Model-only classes",
                "where": "written by the MoME developers in tools/build_vocabulary.py",
            },
            {
                "what": "SNOMED CT codes of the head-and-neck organs at risk (parotids, brainstem, mandible, larynx)",
                "where": "DICOM PS3.16 context groups CID 4031, 4028, 7140, 7153 (per code: tools/build_vocabulary.py)",
                "use": "codes only; names, synonyms and colours written by the MoME developers",
            },
        ],
        "snomed_ct_note": (
            "SNOMED CT concept identifiers are used only to label segments, as DICOM PS3.16 does. "
            "SNOMED CT is a registered trademark of SNOMED International."
        ),
    }


def dump_readable(obj: Any, level: int = 0) -> str:
    """JSON with one line per class field: objects nested up to three deep are broken into lines,
    anything deeper (a code, a colour, a synonym list) stays on one line so the file stays short."""
    if level < 3 and isinstance(obj, dict) and obj:
        pad, inner = "  " * level, "  " * (level + 1)
        items = [f"{inner}{json.dumps(k)}: {dump_readable(v, level + 1)}" for k, v in obj.items()]
        return "{\n" + ",\n".join(items) + f"\n{pad}}}"
    if level < 2 and isinstance(obj, list) and obj:
        pad, inner = "  " * level, "  " * (level + 1)
        items = [f"{inner}{dump_readable(v, level + 1)}" for v in obj]
        return "[\n" + ",\n".join(items) + f"\n{pad}]"
    return json.dumps(obj, ensure_ascii=False)


NOTICE = """# Resources/Vocabulary: provenance and licences

`vocabulary.json` and `MoME.term.json` are generated by `tools/build_vocabulary.py`; edit that
script and re-run it rather than editing these files.

* **TotalSegmentator** (https://github.com/wasserth/TotalSegmentator) by Jakob Wasserthal, Apache
  License 2.0 (http://www.apache.org/licenses/LICENSE-2.0). The SNOMED CT codes and display colours
  of the TotalSegmentator classes, and of the hepatic vessel, liver tumour and kidney cyst classes,
  are derived from `totalsegmentator/resources/totalsegmentator_snomed_mapping.csv` in the
  `totalsegmentator=={version}` wheel on PyPI (sha256 of the CSV: `{sha256}`). The class names and
  label values are those of the TotalSegmentator v2 "total" task.
  Changes made: the CSV rows were converted to JSON entries with added names, synonyms and prompts;
  the code meaning "Gluteus minius muscle" was corrected to "Gluteus minimus muscle"; the hepatic
  vessel class (CSV row `liver_vessels`) got its own colour; the kidney cyst class drops the CSV
  row's Left modifier.
* **CLIP-Driven Universal Model** (https://github.com/ljwztc/CLIP-Driven-Universal-Model): only the
  names and order of its 32 template classes are used (two misspellings corrected).
* **SNOMED CT** concept identifiers label segments, as DICOM PS3.16 does. SNOMED CT is a registered
  trademark of SNOMED International. Codes for classes absent from the TotalSegmentator CSV were
  chosen by the MoME developers; `tools/build_vocabulary.py` notes how sure each one is. Those of the
  head-and-neck organs at risk (parotid glands, brainstem, mandible, larynx) are the codes DICOM
  PS3.16 lists for them (CID 4031 Common Anatomic Regions, CID 4028 Craniofacial Anatomic Regions,
  CID 7140 Brain Structure for Volumetric Measurement, CID 7153 CNS Segmentation Type).
"""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--snomed-csv", type=Path, required=True, help="totalsegmentator_snomed_mapping.csv, or the totalsegmentator .whl"
    )
    parser.add_argument(
        "--totalseg-labels",
        type=Path,
        default=DEFAULT_TOTALSEG_LABELS,
        help="JSON {id: name} of the TotalSegmentator v2 'total' task",
    )
    parser.add_argument("--out-dir", type=Path, default=REPO / "Resources" / "Vocabulary")
    args = parser.parse_args(argv)

    csv_rows, csv_sha256 = read_snomed_csv(args.snomed_csv)
    ts_labels = read_totalseg_labels(args.totalseg_labels)
    entries = build_entries(csv_rows, ts_labels)
    document = {**header(csv_sha256, args.totalseg_labels), "classes": entries}

    # Loading checks keys, kinds, colours, parents and that no name means two classes.
    vocabulary = Vocabulary.from_dict(json.loads(json.dumps(document)))
    assert len(vocabulary.um_classes()) == len(UM_CLASSES)
    assert len(vocabulary.totalseg_classes()) == len(ts_labels)

    args.out_dir.mkdir(parents=True, exist_ok=True)
    (args.out_dir / "vocabulary.json").write_text(dump_readable(document) + "\n", encoding="utf-8")
    context = build_terminology_context(vocabulary)
    (args.out_dir / "MoME.term.json").write_text(json.dumps(context, indent=2) + "\n", encoding="utf-8")
    notice = NOTICE.replace("{version}", TOTALSEG_VERSION).replace("{sha256}", csv_sha256)
    (args.out_dir / "NOTICE.md").write_text(notice, encoding="utf-8")
    counts = f"{len(UM_CLASSES)} Universal Model, {len(ts_labels)} TotalSegmentator, {len(OTHER_CLASSES)} others"
    print(f"wrote {len(entries)} classes ({counts}) to {args.out_dir}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
