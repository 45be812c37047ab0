"""Label names → vocabulary keys, and the ten dataset presets' label tables (no files needed)."""

from __future__ import annotations

import pytest

from mome.data import PRESETS, get_preset
from mome.data.names import MappingError, parse_overrides, resolve_names
from mome.vocabulary import load_vocabulary

VOCAB = load_vocabulary()


@pytest.mark.parametrize("names, context, expected", [
    # Decathlon tasks call their lesion "cancer"/"tumour"; the task (or the lone organ label) says whose.
    (["liver", "cancer"], "Liver", ["liver", "liver_tumor"]),
    (["pancreas", "cancer"], "Pancreas", ["pancreas", "pancreas_tumor"]),
    (["Vessel", "Tumour"], "HepaticVessel", ["hepatic_vessel", "hepatic_vessel_tumor"]),
    (["colon cancer primaries"], "Colon", ["colon_tumor"]),
    (["cancer"], "Lung", ["lung_tumor"]),
    (["kidney", "tumor", "cyst"], "", [None, "kidney_tumor", "kidney_cyst"]),
    # Synonyms and sides, however written.
    (["Kidney (L)", "right_kidney", "postcava", "Head_of_femur_R", "intestine"], "",
     ["kidney_left", "kidney_right", "inferior_vena_cava", "femur_head_right", "small_bowel"]),
    # Never guessed: a merged bilateral label, and a lesion among several organs with no task context.
    (["Lungs", "Kidneys"], "", [None, None]),
    (["liver", "spleen", "tumor"], "", ["liver", "spleen", None]),
])
def test_names_resolve_in_context(names, context, expected):
    assert list(resolve_names(names, VOCAB, context).values()) == expected


def test_user_mappings_override_and_are_checked():
    overrides = parse_overrides(["prostate/uterus=prostate", "Lungs=null"])
    assert overrides == {"prostate/uterus": "prostate", "Lungs": None}
    assert resolve_names(["prostate/uterus", "lungs", "liver"], VOCAB, overrides=overrides) == {
        "prostate/uterus": "prostate", "lungs": None, "liver": "liver"}
    with pytest.raises(MappingError, match="not NAME=KEY"):
        parse_overrides(["liver"])
    with pytest.raises(MappingError, match="closest: liver"):
        resolve_names(["liver"], VOCAB, overrides={"liver": "livr"})


def test_presets_cover_the_papers_ten_datasets_with_sources():
    assert set(PRESETS) == {"btcv", "amos22", "word", "kits", "lits", "abdomenct-1k", "ct-org", "pancreas-ct",
                            "chaos", "abdomenct-12organ"}
    for preset in PRESETS.values():
        assert preset.source.startswith("http"), preset.key
        assert preset.layout is not None or preset.note, f"{preset.key}: say what to convert"
        assert 0 not in preset.labels


def test_preset_keys_exist_and_agree_with_the_vocabularys_own_reading():
    """Every key is a vocabulary class; and wherever the vocabulary resolves the dataset's own name on its
    own, it gives the preset's key (a typo in either would show here)."""
    for preset in PRESETS.values():
        names = [name for name, _ in preset.labels.values()]
        resolved = resolve_names(names, VOCAB)
        for value, (name, key) in preset.labels.items():
            assert key is None or key in VOCAB, f"{preset.key} {value}: {key}"
            if resolved[name] is not None:
                assert resolved[name] == key, f"{preset.key} {value} {name!r}: {resolved[name]} vs {key}"


def test_preset_names_are_forgiving_and_unknown_ones_list_the_choices():
    assert get_preset("KiTS21").key == "kits" and get_preset("CT_ORG").key == "ct-org"
    assert get_preset("AbdomenCT-1K").key == "abdomenct-1k"
    with pytest.raises(ValueError, match="choose one of: btcv"):
        get_preset("brats")
