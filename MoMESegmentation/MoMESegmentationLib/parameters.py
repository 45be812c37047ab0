"""The settings of one segmentation run, and how they are remembered between Slicer sessions."""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any, Protocol

#: Device choices: (value given to ``mome segment --device``, label shown in the panel).
DEVICES: tuple[tuple[str, str], ...] = (("auto", "Auto (GPU if available)"), ("cuda", "GPU"), ("cpu", "CPU"))
DEVICE_VALUES = tuple(value for value, _ in DEVICES)

SETTINGS_GROUP = "MoME/Segmentation"


class SettingsStore(Protocol):
    """The part of ``QSettings`` used here (tests pass a dict-backed stand-in)."""

    def value(self, key: str, default: Any = None) -> Any: ...

    def setValue(self, key: str, value: Any) -> None: ...  # noqa: N802 - Qt's name


@dataclass
class SegmentationParameters:
    prompts: str = ""
    model: str | None = None  # what ``--model`` gets: an installed package path or name; None = default
    device: str = "auto"
    fast: bool = False
    allow_free_text: bool = False
    show_3d: bool = True

    def validate(self) -> list[str]:
        """Problems that keep the run from starting, in words for the panel (empty = ready)."""
        problems = []
        if not self.prompts.strip(" ,;\n\t"):
            problems.append("Type the structures to segment, e.g. 'liver, spleen, left kidney', or add a preset.")
        if self.device not in DEVICE_VALUES:
            problems.append(f"Unknown device {self.device!r}; choose one of {', '.join(DEVICE_VALUES)}.")
        return problems

    # QSettings stores everything as strings on some platforms: read booleans back explicitly.
    def to_settings(self, settings: SettingsStore, group: str = SETTINGS_GROUP) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            settings.setValue(f"{group}/{f.name}", "" if value is None else value)

    @classmethod
    def from_settings(cls, settings: SettingsStore, group: str = SETTINGS_GROUP) -> "SegmentationParameters":
        defaults = cls()
        values: dict[str, Any] = {}
        for f in fields(cls):
            default = getattr(defaults, f.name)
            raw = settings.value(f"{group}/{f.name}", default)
            if isinstance(default, bool):
                values[f.name] = _as_bool(raw, default)
            elif f.name == "model":
                values[f.name] = str(raw) if raw not in (None, "") else None
            else:
                values[f.name] = str(raw) if raw is not None else default
        params = cls(**values)
        if params.device not in DEVICE_VALUES:
            params.device = defaults.device
        return params


def _as_bool(value: Any, default: bool) -> bool:
    if isinstance(value, bool):
        return value
    if value is None:
        return default
    return str(value).strip().lower() in ("1", "true", "yes", "on")
