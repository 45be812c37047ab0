"""Tests of the structure vocabulary, prompt parsing and Slicer terminology (fast; no torch)."""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path

import pytest

from mome.resource_files import resource_path
from mome.vocabulary import (
    CONTEXT_NAME,
    PRESETS,
    SegmentDescriptor,
    UnknownStructureError,
    Vocabulary,
    classes_as_json,
    format_classes_table,
    load_vocabulary,
    parse_prompts,
    parse_slicer_terminology_entry,
    preset_keys,
    preset_prompt_text,
    slicer_terminology_entry,
)

UM_TEMPLATE = [
    "Spleen", "Right Kidney", "Left Kidney", "Gall Bladder", "Esophagus", "Liver", "Stomach", "Aorta",
    "Postcava", "Portal Vein and Splenic Vein", "Pancreas", "Right Adrenal Gland", "Left Adrenal Gland",
    "Duodenum", "Hepatic Vessel", "Right Lung", "Left Lung", "Colon", "Intestine", "Rectum", "Bladder",
    "Prostate", "Left Head of Femur", "Right Head of Femur", "Celiac Trunk", "Kidney Tumor", "Liver Tumor",
    "Pancreas Tumor", "Hepatic Vessel Tumor", "Lung Tumor", "Colon Tumor", "Kidney Cyst",
]  # fmt: skip

# A sample of the TotalSegmentator v2 "total" names (the full 117 are checked through totalseg_id).
TS_SAMPLE = ["kidney_cyst_left", "vertebrae_L1", "rib_right_12", "lung_middle_lobe_right", "iliac_vena_left",
             "portal_vein_and_splenic_vein", "costal_cartilages", "atrial_appendage_left", "small_bowel"]  # fmt: skip


@pytest.fixture(scope="module")
def vocab() -> Vocabulary:
    return load_vocabulary()


# -- the data ---------------------------------------------------------------------------------


def test_every_universal_model_class_present_with_its_index(vocab: Vocabulary) -> None:
    um = vocab.um_classes()
    assert [c.um_index for c in um] == list(range(1, 33))
    for index, name in enumerate(UM_TEMPLATE, start=1):
        cls = vocab.lookup(name)
        assert cls is not None, name
        assert cls.um_index == index, (name, cls.key)
    assert vocab.get("inferior_vena_cava").um_index == 9
    assert vocab.get("small_bowel").um_index == 19


def test_merged_and_separate_entries(vocab: Vocabulary) -> None:
    # UM classes and their TotalSegmentator equivalents are one entry ...
    assert vocab.get("kidney_right").totalseg == "kidney_right"
    assert vocab.get("urinary_bladder").um_index == 21
    assert vocab.lookup("Gall Bladder") is vocab.lookup("gallbladder")
    # ... but a femoral head is not the whole femur.
    assert vocab.get("femur_head_left").totalseg is None
    assert vocab.get("femur_left").um_index is None
    assert vocab.lookup("left head of femur").key == "femur_head_left"
    assert len({c.key for c in vocab}) == len(vocab)


def test_all_117_totalsegmentator_classes_resolvable(vocab: Vocabulary) -> None:
    ts = vocab.totalseg_classes()
    assert [c.totalseg_id for c in ts] == list(range(1, 118))
    for cls in ts:
        assert vocab.lookup(cls.totalseg) is cls, cls.totalseg
    for name in TS_SAMPLE:
        assert vocab.lookup(name) is not None, name
    # Against the source list too, when this machine has the shared data (see conftest.py).
    shared = Path(os.environ.get("MOME_SHARED_DATA") or Path(__file__).resolve().parents[2] / "shared" / "data")
    labels_file = shared / "totalseg_example" / "totalseg_v2_total_labels.json"
    if not labels_file.is_file():
        return
    labels = json.loads(labels_file.read_text(encoding="utf-8"))
    assert len(labels) == 117
    for ts_id, name in labels.items():
        cls = vocab.lookup(name)
        assert cls is not None and cls.totalseg_id == int(ts_id), name


def test_codes_are_sct_and_complete(vocab: Vocabulary) -> None:
    for cls in vocab:
        for code in (cls.category, cls.type, cls.type_modifier, cls.anatomic_region, cls.anatomic_region_modifier):
            if code is not None:
                assert code.scheme == "SCT", cls.key
                assert code.value.isdigit() and code.meaning, cls.key
        if cls.laterality:
            side = {"left": "7771000", "right": "24028007"}[cls.laterality]
            modifiers = {m.value for m in (cls.type_modifier, cls.anatomic_region_modifier) if m}
            assert side in modifiers or "lobe of right lung" in cls.type.meaning, cls.key
    tumour = vocab.get("liver_tumor")
    assert tumour.category.value == "49755003"  # Morphologically Altered Structure
    assert tumour.type.value == "108369006"  # Neoplasm
    assert tumour.anatomic_region.value == "10200004"  # Liver
    assert vocab.get("kidney_tumor").parent == ("kidney_left", "kidney_right")
    assert vocab.get("lung_left").type.value == "39607008"


def test_colours_in_range_and_varied(vocab: Vocabulary) -> None:
    colours = [c.color for c in vocab]
    assert all(len(c) == 3 and all(0 <= v <= 255 for v in c) for c in colours)
    assert len(set(colours)) > len(colours) // 2
    # Structures shown together must be told apart.
    assert vocab.get("liver").color != vocab.get("liver_tumor").color != vocab.get("hepatic_vessel").color


def test_descriptor_carries_codes(vocab: Vocabulary) -> None:
    d = vocab.get("kidney_cyst_left").descriptor()
    assert isinstance(d, SegmentDescriptor)
    assert d.key == "kidney_cyst_left" and d.name == "left kidney cyst"
    assert d.type.meaning == "Cyst" and d.anatomic_region.value == "64033007"
    assert d.anatomic_region_modifier.meaning == "Left"


# -- parsing -----------------------------------------------------------------------------------


def test_parse_mixed_separators_keeps_order(vocab: Vocabulary) -> None:
    parsed = parse_prompts("Liver, spleen; left kidney\npancreas tumor", vocab)
    assert parsed.keys == ["liver", "spleen", "kidney_left", "pancreas_tumor"]
    assert parsed.warnings == [] and parsed.free_text == []


@pytest.mark.parametrize("text", ["IVC", "inferior vena cava", "postcava", "Postcava (IVC)", "inferior_vena_cava"])
def test_vena_cava_synonyms(vocab: Vocabulary, text: str) -> None:
    assert parse_prompts(text, vocab).keys == ["inferior_vena_cava"]


@pytest.mark.parametrize(
    "text",
    ["left kidney", "kidney left", "L kidney", "Left Kidney", "lt kidney", "kidney (left)", "kidney_left", "Kidney-Left"],
)
def test_laterality_forms(vocab: Vocabulary, text: str) -> None:
    assert parse_prompts(text, vocab).keys == ["kidney_left"]


def test_right_side_and_vertebra_level_not_taken_for_a_side(vocab: Vocabulary) -> None:
    assert parse_prompts("R adrenal gland, vertebra L1, rt lung", vocab).keys == [
        "adrenal_gland_right",
        "vertebrae_l1",
        "lung_right",
    ]


def test_duplicates_removed_keeping_first(vocab: Vocabulary) -> None:
    parsed = parse_prompts(["liver, spleen", "LIVER", "bladder; urinary bladder", "spleen"], vocab)
    assert parsed.keys == ["liver", "spleen", "urinary_bladder"]


def test_unpaired_name_means_both_sides(vocab: Vocabulary) -> None:
    parsed = parse_prompts("kidneys, lungs", vocab)
    assert parsed.keys == ["kidney_left", "kidney_right", "lung_left", "lung_right"]
    assert len(parsed.warnings) == 2
    # A plural of a single class is just that class.
    assert parse_prompts("liver tumors", vocab).keys == ["liver_tumor"]
    # An unpaired name that is a class of its own stays one class.
    assert parse_prompts("kidney cyst", vocab).keys == ["kidney_cyst"]


@pytest.mark.parametrize("text", ["", "  ,; \n", []])
def test_empty_input_is_an_error(vocab: Vocabulary, text) -> None:
    with pytest.raises(ValueError):
        parse_prompts(text, vocab)


def test_unknown_name_suggests_closest(vocab: Vocabulary) -> None:
    with pytest.raises(UnknownStructureError) as info:
        parse_prompts("spleen, livr", vocab)
    message = str(info.value)
    assert "'livr'" in message and "Did you mean" in message and "liver" in message
    assert info.value.unknown == ["livr"]
    assert isinstance(info.value, ValueError)


def test_all_unknown_names_reported_at_once(vocab: Vocabulary) -> None:
    with pytest.raises(UnknownStructureError) as info:
        parse_prompts("pancreaz, liver, kidny tumor", vocab)
    assert info.value.unknown == ["pancreaz", "kidny tumor"]
    assert "pancreas" in info.value.suggestions["pancreaz"]
    assert "kidney tumor" in info.value.suggestions["kidny tumor"]


def test_free_text_mode_warns(vocab: Vocabulary) -> None:
    parsed = parse_prompts("liver, left ureter, Left Ureter", vocab, allow_free_text=True)
    assert parsed.keys[0] == "liver" and len(parsed.classes) == 2
    ureter = parsed.classes[1]
    assert ureter.free_text and ureter.kind == "other" and ureter.laterality == "left"
    assert ureter.type.value == "91723000" and ureter.type_modifier.value == "7771000"
    assert parsed.free_text == ["left ureter"]
    assert len(parsed.warnings) == 1 and "never trained" in parsed.warnings[0]
    # Deterministic colour: the same text gives the same colour in a second parse.
    again = parse_prompts("left ureter", vocab, allow_free_text=True).classes[0]
    assert again.color == ureter.color


def test_closest_and_get(vocab: Vocabulary) -> None:
    assert vocab.closest("spleeen")[0].key == "spleen"
    assert len(vocab.closest("kidney", n=3)) <= 3
    assert "liver" in vocab and "hepar" not in vocab
    with pytest.raises(KeyError, match="kidney_lft"):
        vocab.get("kidney_lft")


def test_ambiguous_vocabulary_rejected(vocab: Vocabulary) -> None:
    liver, spleen = vocab.get("liver"), vocab.get("spleen")
    clash = dataclasses.replace(spleen, synonyms=("liver",))
    with pytest.raises(ValueError, match="ambiguous"):
        Vocabulary([liver, clash])


# -- presets and tables -------------------------------------------------------------------------


def test_presets_name_known_classes(vocab: Vocabulary) -> None:
    assert {"abdominal organs", "tumours", "vessels", "thorax"} <= set(PRESETS)
    for name, keys in PRESETS.items():
        assert keys and all(k in vocab for k in keys), name
        # The preset's text, typed back in, gives the same classes.
        assert parse_prompts(preset_prompt_text(name, vocab), vocab).keys == list(keys)
    assert preset_keys("Tumors") == preset_keys("tumours")


def test_table_and_json(vocab: Vocabulary) -> None:
    table = format_classes_table(vocab)
    assert len(table.splitlines()) == len(vocab) + 2
    assert "inferior_vena_cava" in table and "IVC" in table and "64131007" in table
    data = json.loads(classes_as_json(vocab))
    assert len(data) == len(vocab)
    assert Vocabulary.from_dict({"classes": data}).get("liver_tumor") == vocab.get("liver_tumor")


# -- Slicer terminology -------------------------------------------------------------------------


def test_terminology_entry_format(vocab: Vocabulary) -> None:
    entry = slicer_terminology_entry(vocab.get("kidney_left"))
    fields = entry.split("~")
    assert len(fields) == 7
    assert fields[0] == CONTEXT_NAME
    assert fields[1:4] == ["SCT^123037004^Anatomical Structure", "SCT^64033007^Kidney", "SCT^7771000^Left"]
    assert fields[4] == "Anatomic codes - DICOM master list" and fields[5:] == ["^^", "^^"]
    tumour = parse_slicer_terminology_entry(slicer_terminology_entry(vocab.get("pancreas_tumor")))
    assert tumour["type"].meaning == "Neoplasm" and tumour["anatomic_region"].value == "15776009"
    assert tumour["type_modifier"] is None
    for cls in vocab:
        assert len(slicer_terminology_entry(cls).split("~")) == 7


def test_term_json_lists_every_class_code(vocab: Vocabulary) -> None:
    with open(resource_path("Vocabulary", "MoME.term.json"), encoding="utf-8") as f:
        context = json.load(f)
    assert context["SegmentationCategoryTypeContextName"] == CONTEXT_NAME
    assert context["@schema"].endswith("segment-context-schema.json#")
    listed: set[tuple[str, str, str | None]] = set()
    for category in context["SegmentationCodes"]["Category"]:
        assert {"CodeMeaning", "CodingSchemeDesignator", "CodeValue", "showAnatomy", "Type"} <= set(category)
        for typ in category["Type"]:
            modifiers = typ.get("Modifier", [])
            for m in modifiers:
                assert len(m["recommendedDisplayRGBValue"]) == 3
                listed.add((category["CodeValue"], typ["CodeValue"], m["CodeValue"]))
            if "recommendedDisplayRGBValue" in typ:
                listed.add((category["CodeValue"], typ["CodeValue"], None))
    for cls in vocab:
        modifier = cls.type_modifier.value if cls.type_modifier else None
        assert (cls.category.value, cls.type.value, modifier) in listed, cls.key


# -- head-and-neck organs at risk (OpenKBP) -------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ("left parotid", "parotid_gland_left"),
        ("parotid gland left", "parotid_gland_left"),
        ("LeftParotid", "parotid_gland_left"),  # OpenKBP's file name
        ("Parotid_R", "parotid_gland_right"),  # TG-263
        ("rt parotid gland", "parotid_gland_right"),
        ("brain stem", "brainstem"),
        ("Brainstem", "brainstem"),
        ("mandible", "mandible"),
        ("lower jaw", "mandible"),
        ("Bone_Mandible", "mandible"),
        ("larynx", "larynx"),
        ("SpinalCord", "spinal_cord"),
        ("oesophagus", "esophagus"),
    ],
)
def test_head_and_neck_prompts(vocab: Vocabulary, text: str, key: str) -> None:
    assert parse_prompts(text, vocab).keys == [key]


def test_head_and_neck_codes_and_sides(vocab: Vocabulary) -> None:
    # SNOMED CT codes as DICOM PS3.16 lists them (CID 4031 / 4028 / 7140); see tools/build_vocabulary.py.
    expected = {"parotid_gland_left": "45289007", "parotid_gland_right": "45289007", "brainstem": "119238007",
                "mandible": "91609006", "larynx": "4596009", "spinal_cord": "2748008", "esophagus": "32849002"}
    for key, code in expected.items():
        cls = vocab.get(key)
        assert cls.type.value == code and cls.category.value == "123037004", key
    left, right = vocab.get("parotid_gland_left"), vocab.get("parotid_gland_right")
    assert (left.laterality, left.type_modifier.value) == ("left", "7771000")
    assert (right.laterality, right.type_modifier.value) == ("right", "24028007")
    assert left.color != right.color
    # An unpaired name means both sides, with a warning, like "kidneys".
    parsed = parse_prompts("parotid glands, brainstem", vocab)
    assert parsed.keys == ["parotid_gland_left", "parotid_gland_right", "brainstem"] and len(parsed.warnings) == 1
    # The Slicer terminology carries them, so a drawn "Parotid gland, Left" segment maps back.
    fields = slicer_terminology_entry(left).split("~")
    assert fields[2:4] == ["SCT^45289007^Parotid gland", "SCT^7771000^Left"]
