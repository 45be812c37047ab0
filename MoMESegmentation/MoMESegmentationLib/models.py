"""The Model selector: which installed MoME models can be chosen, and what ``--model`` gets for each.

The list comes from the engine's model store (``mome.hub.ModelStore``); the active model is listed
first and selected by default, so a model fine-tuned and activated in the MoME Training module is
what Segment uses. The catalog is injected (:class:`ModelCatalog`) so the widget and tests do not
depend on the store's location, and so that a missing or older engine without ``mome.hub`` still
offers the bundled default model.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

DEFAULT_MODEL_NAME = "mome-mini"


@dataclass(frozen=True)
class ModelChoice:
    label: str  # shown in the combo box
    argument: str | None  # passed as --model (a package path); None lets the engine pick its default
    description: str = ""  # tooltip
    active: bool = False


class ModelCatalog(Protocol):
    def choices(self) -> list[ModelChoice]: ...


def _default_choice(note: str = "") -> ModelChoice:
    return ModelChoice(f"Default ({DEFAULT_MODEL_NAME} unless another model is active)", None,
                       note or "The engine picks the active model, else the model that comes with MoME.", active=True)


class HubModelCatalog:
    """Installed models from ``mome.hub.ModelStore``; ``store_factory`` replaces the store in tests."""

    def __init__(self, store_factory: Callable[[], Any] | None = None):
        self.store_factory = store_factory
        self.problem = ""  # why the store could not be read, for the log

    def _store(self) -> Any:
        if self.store_factory is not None:
            return self.store_factory()
        from mome.hub import ModelStore  # imported on demand: the engine may be absent at first

        return ModelStore()

    def choices(self) -> list[ModelChoice]:
        try:
            installed = list(self._store().installed())
        except Exception as exc:  # noqa: BLE001 - a broken store must not break the panel
            self.problem = f"{type(exc).__name__}: {exc}"
            logging.getLogger("MoME").info("MoME model store not available (%s); offering the default model",
                                           self.problem)
            return [_default_choice()]
        self.problem = ""
        if not installed:
            return [_default_choice()]
        installed.sort(key=lambda m: (not getattr(m, "active", False), m.name, str(m.version)))
        choices = []
        for model in installed:
            active = bool(getattr(model, "active", False))
            label = f"{model.name} {model.version}" + (" (active)" if active else "")
            tip = getattr(model, "description", "") or ""
            classes = getattr(model, "classes", ()) or ()
            if classes:
                tip += ("\n" if tip else "") + f"Trained on {len(classes)} structures."
            choices.append(ModelChoice(label, str(model.path), tip, active))
        return choices


def default_index(choices: list[ModelChoice], remembered: str | None = None) -> int:
    """Which entry to select: the active model (activating a model, e.g. after fine-tuning, is how a
    user says "use this one from now on"), else the remembered one if still installed, else the first."""
    for index, choice in enumerate(choices):
        if choice.active:
            return index
    for index, choice in enumerate(choices):
        if remembered is not None and choice.argument == remembered:
            return index
    return 0
