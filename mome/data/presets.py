"""Label conventions of the ten public CT datasets the MoME paper trains on, and how each is laid out.

Each preset lists, for every label value, the dataset's own name for it (as its documentation gives
it) and the vocabulary key it means, or None where the vocabulary has no such class — those are
reported as unmapped by ``mome data import``, never dropped silently (``Testing/test_data_presets.py``
checks that every key exists and that the vocabulary's own name lookup agrees wherever it resolves
the dataset's name). The layouts are those of the public downloads; where a download is not images
plus label maps (DICOM series, PNG masks), ``layout`` is None and ``note`` says what to convert.

Label values that merge both sides ("kidney", "lungs", "adrenal") map to nothing: the vocabulary,
like the CLIP-Driven Universal Model's template, has only left and right classes, and splitting a
merged label by side is a geometric operation the importer does not do.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Pairs:
    """Image files matching ``images`` (a glob under the dataset folder; its last single ``*`` is the
    case id), each with the first existing label file among ``labels``: a path relative to the image's
    folder (``{id}`` = the case id), or a bare file name with ``{id}``, found anywhere below."""

    images: tuple[str, ...]
    labels: tuple[str, ...]


@dataclass(frozen=True)
class DatasetPreset:
    key: str
    title: str
    labels: dict[int, tuple[str, str | None]]  # value -> (the dataset's name, vocabulary key or None)
    source: str  # where the label table is documented
    layout: str | Pairs | None  # "msd" (imagesTr/labelsTr folders), a Pairs pattern, or None
    note: str = ""
    keep: Callable[[str], bool] | None = field(default=None, compare=False)  # case ids to import
    split: Callable[[str], str | None] | None = field(default=None, compare=False)  # fixed splits by id


def _number(case_id: str) -> int:
    digits = re.findall(r"\d+", case_id)
    return int(digits[-1]) if digits else -1


_BTCV = {
    1: ("spleen", "spleen"), 2: ("right kidney", "kidney_right"), 3: ("left kidney", "kidney_left"),
    4: ("gallbladder", "gallbladder"), 5: ("esophagus", "esophagus"), 6: ("liver", "liver"),
    7: ("stomach", "stomach"), 8: ("aorta", "aorta"), 9: ("inferior vena cava", "inferior_vena_cava"),
    10: ("portal vein and splenic vein", "portal_vein_and_splenic_vein"), 11: ("pancreas", "pancreas"),
    12: ("right adrenal gland", "adrenal_gland_right"), 13: ("left adrenal gland", "adrenal_gland_left"),
}

PRESETS: dict[str, DatasetPreset] = {p.key: p for p in [
    DatasetPreset(
        # Synapse "Multi-Atlas Labeling Beyond the Cranial Vault" (syn3193805), Abdomen: the 13 labels.
        # https://www.synapse.org/#!Synapse:syn3193805/wiki/217789
        "btcv", "BTCV (Multi-Atlas Labeling Beyond the Cranial Vault, abdomen)", _BTCV,
        "https://www.synapse.org/#!Synapse:syn3193805/wiki/217789",
        Pairs(images=("**/img/img*.nii.gz",), labels=("../label/label{id}.nii.gz",)),
        note="RawData.zip: RawData/Training/img/imgNNNN.nii.gz with RawData/Training/label/labelNNNN.nii.gz",
    ),
    DatasetPreset(
        # AMOS22 dataset.json "labels" (amos22.zip, https://zenodo.org/record/7262581) and the challenge
        # page https://amos22.grand-challenge.org/ (15 organs). Case numbers above 500 are MRI, which
        # nnU-Net's conversion script (nnunetv2/dataset_conversion/Dataset218_Amos2022_task1.py) leaves
        # out the same way.
        "amos22", "AMOS22 (abdominal multi-organ segmentation, CT part)",
        # Names as dataset.json spells them ("arota" included).
        {1: ("spleen", "spleen"), 2: ("right kidney", "kidney_right"), 3: ("left kidney", "kidney_left"),
         4: ("gall bladder", "gallbladder"), 5: ("esophagus", "esophagus"), 6: ("liver", "liver"),
         7: ("stomach", "stomach"), 8: ("arota", "aorta"), 9: ("postcava", "inferior_vena_cava"),
         10: ("pancreas", "pancreas"), 11: ("right adrenal gland", "adrenal_gland_right"),
         12: ("left adrenal gland", "adrenal_gland_left"), 13: ("duodenum", "duodenum"),
         14: ("bladder", "urinary_bladder"),
         15: ("prostate/uterus", None)},  # one label for two organs: map it with --map if you must
        "https://zenodo.org/record/7262581 (amos22/dataset.json); https://amos22.grand-challenge.org/",
        "msd", keep=lambda case_id: 0 <= _number(case_id) <= 500,
        note="imagesTr/labelsTr (train), imagesVa/labelsVa (val); MRI cases (numbers > 500) are skipped",
    ),
    DatasetPreset(
        # WORD README label table, https://github.com/HiLab-git/WORD (Luo et al., MedIA 2022).
        "word", "WORD (Whole abdominal ORgan Dataset)",
        {1: ("liver", "liver"), 2: ("spleen", "spleen"), 3: ("left_kidney", "kidney_left"),
         4: ("right_kidney", "kidney_right"), 5: ("stomach", "stomach"), 6: ("gallbladder", "gallbladder"),
         7: ("esophagus", "esophagus"), 8: ("pancreas", "pancreas"), 9: ("duodenum", "duodenum"),
         10: ("colon", "colon"), 11: ("intestine", "small_bowel"), 12: ("adrenal", None),  # both sides in one
         13: ("rectum", "rectum"), 14: ("bladder", "urinary_bladder"),
         15: ("Head_of_femur_L", "femur_head_left"), 16: ("Head_of_femur_R", "femur_head_right")},
        "https://github.com/HiLab-git/WORD", "msd",
        note="WORD-V0.1.0/imagesTr|imagesVal|imagesTs with labelsTr|labelsVal|labelsTs",
    ),
    DatasetPreset(
        # KiTS19 README (https://github.com/neheller/kits19): 0 background, 1 kidney, 2 tumor; KiTS21/23
        # (https://github.com/neheller/kits23) add 3 cyst. "kidney" is both kidneys in one label.
        "kits", "KiTS19/21/23 (kidney and kidney tumour segmentation)",
        {1: ("kidney", None), 2: ("tumor", "kidney_tumor"), 3: ("cyst", "kidney_cyst")},
        "https://github.com/neheller/kits19; https://github.com/neheller/kits23",
        Pairs(images=("**/case_*/imaging.nii.gz",), labels=("segmentation.nii.gz", "aggregated_MAJ_seg.nii.gz")),
        note="case_NNNNN/imaging.nii.gz with segmentation.nii.gz (KiTS19/23) or aggregated_MAJ_seg.nii.gz (KiTS21)",
    ),
    DatasetPreset(
        # LiTS (Bilic et al., MedIA 2023; https://competitions.codalab.org/competitions/17094): label 1 liver,
        # 2 tumour, in "Training Batch 1/2" as volume-N.nii with segmentation-N.nii.
        "lits", "LiTS (Liver Tumor Segmentation Benchmark)",
        {1: ("liver", "liver"), 2: ("tumor", "liver_tumor")},
        "https://competitions.codalab.org/competitions/17094; arXiv:1901.04056",
        Pairs(images=("**/volume-*.nii", "**/volume-*.nii.gz"),
              labels=("segmentation-{id}.nii", "segmentation-{id}.nii.gz")),
    ),
    DatasetPreset(
        # AbdomenCT-1K (https://github.com/JunMa11/AbdomenCT-1K): liver, kidney, spleen, pancreas, numbered
        # as in its FLARE21 subset (https://flare.grand-challenge.org/) and in the CLIP-Driven Universal
        # Model's label transfer (ljwztc/CLIP-Driven-Universal-Model utils/utils.py, dataset "08").
        "abdomenct-1k", "AbdomenCT-1K",
        {1: ("liver", "liver"), 2: ("kidney", None), 3: ("spleen", "spleen"), 4: ("pancreas", "pancreas")},
        "https://github.com/JunMa11/AbdomenCT-1K; https://flare.grand-challenge.org/",
        Pairs(images=("**/Case_*_0000.nii.gz",), labels=("Case_{id}.nii.gz",)),
        note="images Case_NNNNN_0000.nii.gz, masks Case_NNNNN.nii.gz (any folders below the dataset folder)",
    ),
    DatasetPreset(
        # CT-ORG README (TCIA, https://www.cancerimagingarchive.net/collection/ct-org/; Rister et al.,
        # Sci Data 2020): 1 liver, 2 bladder, 3 lungs, 4 kidneys, 5 bone, 6 brain; volume-N / labels-N;
        # cases 0-20 are the test split.
        "ct-org", "CT-ORG (CT volumes with multiple organ segmentations)",
        {1: ("liver", "liver"), 2: ("bladder", "urinary_bladder"), 3: ("lungs", None), 4: ("kidneys", None),
         5: ("bone", None), 6: ("brain", "brain")},
        "https://www.cancerimagingarchive.net/collection/ct-org/ (README: 'Organs are encoded as follows')",
        Pairs(images=("**/volume-*.nii.gz", "**/volume-*.nii"), labels=("labels-{id}.nii.gz", "labels-{id}.nii")),
        split=lambda case_id: "test" if 0 <= _number(case_id) <= 20 else None,
    ),
    DatasetPreset(
        # TCIA Pancreas-CT (Roth et al.; https://www.cancerimagingarchive.net/collection/pancreas-ct/): one
        # manually traced pancreas per scan, labelNNNN.nii.gz (value 1). Gibson et al.'s multi-organ
        # relabelling of these scans (https://zenodo.org/record/1169361) uses BTCV's numbers: preset btcv.
        "pancreas-ct", "Pancreas-CT (NIH, TCIA)", {1: ("pancreas", "pancreas")},
        "https://www.cancerimagingarchive.net/collection/pancreas-ct/",
        Pairs(images=("**/PANCREAS_*.nii.gz",), labels=("label{id}.nii.gz",)),
        note="the images are DICOM series: convert each to PANCREAS_NNNN.nii.gz (e.g. with dcm2niix or "
             "SimpleITK) anywhere below the folder that holds the labelNNNN.nii.gz files",
    ),
    DatasetPreset(
        # CHAOS (https://chaos.grand-challenge.org/Data/): the CT part annotates the liver only; masks are
        # PNG slices (liver 255) next to DICOM series. Converted volumes use 1 or 255 for the liver.
        "chaos", "CHAOS (Combined Healthy Abdominal Organ Segmentation, CT part)",
        {1: ("liver", "liver"), 255: ("liver", "liver")},
        "https://chaos.grand-challenge.org/Data/", None,
        note="CHAOS ships DICOM series with PNG masks: stack each case into image and label volumes "
             "(NIfTI) first, then import them with `mome data import pairs DIR --preset chaos --images ... "
             "--labels ...`",
    ),
    DatasetPreset(
        # AbdomenCT-1K's 50 cases with 12 organs (https://github.com/JunMa11/AbdomenCT-1K, "Further
        # extensions"), numbered as in the CLIP-Driven Universal Model's label transfer
        # (ljwztc/CLIP-Driven-Universal-Model utils/utils.py, dataset "13"): liver, kidney, spleen,
        # pancreas, aorta, IVC, stomach, gallbladder, esophagus, right/left adrenal gland, celiac trunk.
        "abdomenct-12organ", "AbdomenCT-12organ (AbdomenCT-1K subset with 12 organs)",
        {1: ("liver", "liver"), 2: ("kidney", None), 3: ("spleen", "spleen"), 4: ("pancreas", "pancreas"),
         5: ("aorta", "aorta"), 6: ("inferior vena cava", "inferior_vena_cava"), 7: ("stomach", "stomach"),
         8: ("gallbladder", "gallbladder"), 9: ("esophagus", "esophagus"),
         10: ("right adrenal gland", "adrenal_gland_right"), 11: ("left adrenal gland", "adrenal_gland_left"),
         12: ("celiac trunk", "celiac_trunk")},
        "https://github.com/JunMa11/AbdomenCT-1K; CLIP-Driven-Universal-Model utils/utils.py (dataset 13)",
        Pairs(images=("**/Case_*_0000.nii.gz",), labels=("Case_{id}.nii.gz",)),
        note="laid out like AbdomenCT-1K: Case_NNNNN_0000.nii.gz with Case_NNNNN.nii.gz",
    ),
]}

ALIASES = {"abdomenct1k": "abdomenct-1k", "ctorg": "ct-org", "pancreasct": "pancreas-ct", "amos": "amos22",
           "kits19": "kits", "kits21": "kits", "kits23": "kits", "abdomenct12organ": "abdomenct-12organ"}


def get_preset(name: str) -> DatasetPreset:
    key = name.strip().lower().replace("_", "-")
    key = ALIASES.get(key.replace("-", ""), key)
    if key not in PRESETS:
        raise ValueError(f"unknown dataset preset {name!r}; choose one of: {', '.join(PRESETS)}")
    return PRESETS[key]
