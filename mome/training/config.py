"""Training configuration (YAML/JSON), with defaults for every field."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import yaml


@dataclass
class ModelSection:
    size: str = "tiny"
    variant: str = "mome"
    text_encoder: str = "minilm"  # or "clip" (needs weights)
    # clip: a local open_clip ViT-B-32 checkpoint (OpenAI weights, e.g. open_clip_pytorch_model.bin);
    # training never downloads one. Only needed where the class names are embedded (preparation).
    text_encoder_weights: str = ""
    router_top_k: int | None = None


#: ``data.augment`` in a training config: a policy name, or true (= "standard") / false (= "none").
AUGMENTATION_POLICIES = ("none", "standard", "strong")


def augmentation_policy(augment: bool | str) -> str:
    """The policy name for a config's ``augment`` value; a clear error for anything else."""
    if augment is True or augment is False:
        return "standard" if augment else "none"
    if augment not in AUGMENTATION_POLICIES:
        raise ValueError(f"data.augment must be true, false or one of {list(AUGMENTATION_POLICIES)}, got {augment!r}")
    return str(augment)


@dataclass
class DataSection:
    manifest: str = ""
    # A folder written by ``mome train CONFIG --prepare-only FOLDER``; when set, the manifest is not read.
    prepared: str = ""
    spacing: tuple[float, float, float] = (1.5, 1.5, 1.5)
    patch_size: tuple[int, int, int] = (96, 96, 96)
    hu_window: tuple[float, float] = (-175.0, 250.0)
    crops_per_case: int = 2
    tumour_oversampling: float = 5.0
    # Heads/router cost grows with K: per step, train at most this many of the sample's labelled
    # classes (those present first, tumours always). 0 = all.
    max_classes_per_step: int = 0
    # Augmentation policy (sampling.augmentations): "none", "standard" (= true) or "strong".
    augment: bool | str = True
    # Crops are read and augmented in this many DataLoader worker processes (0: in the training
    # process), each keeping ``prefetch_factor`` batches ready.
    num_workers: int = 2
    prefetch_factor: int = 2
    # Processes that prepare cases from the manifest in parallel (each holds one case in memory).
    prepare_workers: int = 1


@dataclass
class OptimSection:
    steps: int = 2000
    lr: float = 1e-4
    weight_decay: float = 1e-5
    warmup_steps: int = 100
    grad_clip: float = 1.0
    accumulation: int = 1
    amp: str = "auto"  # auto | bf16 | fp16 | off (only used on CUDA)


@dataclass
class TrainConfig:
    name: str = "mome-custom"
    version: str = "1.0.0"
    description: str = ""
    output: str = "runs/mome-custom"
    seed: int = 0
    device: str = "auto"
    validate_every: int = 100
    checkpoint_every: int = 50
    # TensorBoard event files in <output>/tensorboard (rank 0): loss, lr, validation Dice, step and
    # data-wait times (training/tracking.py). false: none.
    tensorboard: bool = True
    model: ModelSection = field(default_factory=ModelSection)
    data: DataSection = field(default_factory=DataSection)
    optim: OptimSection = field(default_factory=OptimSection)
    # Fine-tuning: start from this package (name or path) and freeze by preset.
    base_model: str | None = None
    freeze: str = "none"  # none | backbone | backbone+experts | heads-only, see finetune.FREEZE_PRESETS
    classes: list[str] = field(default_factory=list)  # empty = every class in the manifest
    package_dtype: str = "float32"  # float16 halves the size of a model meant to be shipped
    # Which weights the package gets: "best" validation score, or the "last" step (then the reported
    # validation Dice is a clean held-out figure, not one the checkpoint was chosen on).
    keep: str = "best"

    def __post_init__(self):
        if self.package_dtype not in ("float32", "float16"):
            raise ValueError(f"package_dtype must be float32 or float16, got {self.package_dtype!r}")
        if self.keep not in ("best", "last"):
            raise ValueError(f"keep must be 'best' or 'last', got {self.keep!r}")
        augmentation_policy(self.data.augment)
        if not isinstance(self.tensorboard, bool):
            raise ValueError(f"tensorboard must be true or false, got {self.tensorboard!r}")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "TrainConfig":
        sections = {"model": ModelSection, "data": DataSection, "optim": OptimSection}
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"unknown training config keys {unknown}; known keys: {sorted(known)}")
        kwargs: dict[str, Any] = {}
        for key, value in data.items():
            if key in sections:
                sec = sections[key]
                sec_known = {f.name for f in fields(sec)}
                bad = sorted(set(value) - sec_known)
                if bad:
                    raise ValueError(f"unknown keys in '{key}': {bad}; known: {sorted(sec_known)}")
                value = {k: tuple(v) if isinstance(v, list) else v for k, v in value.items()}
                kwargs[key] = sec(**value)
            else:
                kwargs[key] = value
        return cls(**kwargs)

    @classmethod
    def load(cls, path: str | Path) -> "TrainConfig":
        path = Path(path)
        text = path.read_text()
        data = yaml.safe_load(text) if path.suffix in (".yaml", ".yml") else json.loads(text)
        cfg = cls.from_dict(data or {})
        # Relative paths in a config file are relative to the file, like the manifest's.
        for key in ("manifest", "prepared"):
            value = getattr(cfg.data, key)
            if value and not Path(value).is_absolute():
                setattr(cfg.data, key, str((path.parent / value).resolve()))
        weights = cfg.model.text_encoder_weights
        if weights and not Path(weights).expanduser().is_absolute():
            cfg.model.text_encoder_weights = str((path.parent / weights).resolve())
        base = cfg.base_model
        if base and ("/" in base or base.endswith(".zip")) and not Path(base).is_absolute():
            cfg.base_model = str((path.parent / base).resolve())  # a package path; a plain name stays a name
        return cfg
