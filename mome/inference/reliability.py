"""How far each requested structure can be trusted with a given model, and what is refused.

Every structure gets one status (see :mod:`mome.package.evidence` for how the package's held-out
figures decide it): ``validated``, ``weak``, ``not_validated``, ``not_learned``, or ``zero_shot``
when the model was never trained on it and can only guess from the name's text embedding.

Policy, as a cautious clinical tool: a guess must never look like a result. So

* ``zero_shot`` structures are refused unless the user opts in (``--allow-zero-shot``);
* ``not_learned`` structures are refused too, unless the user opts in (``--allow-not-learned``):
  their figures say the model does not find them, so what comes back is noise in the shape of an
  organ (the issue's 1,058-voxel "gallbladder" at Dice 0.00), and a mark that is easy to overlook
  is not enough;
* ``weak`` and ``not_validated`` structures are segmented, with their status in the .seg.nrrd
  segment tags, the statistics, the JSON ``done`` event and the console summary.

Structures segmented only because the user opted in (not learned, zero-shot) also carry their
status in their name ("gallbladder (not learned)") in the .seg.nrrd, DICOM-SEG, preview legend and
label-map legends, so that anyone who opens the file later sees it. Weak ones keep their plain
name: it is what Slicer matches when a segmentation is updated, and it names the terminology.

Nothing here imports torch: the CLI refuses before reading the CT, and the Slicer panel can call
:func:`assess` on ``read_package_json(...)`` as the user types.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

from ..package.evidence import STATUS_LABELS, class_statuses
from .errors import ClassNotSupportedError

ZERO_SHOT = "zero_shot"
#: Statuses shown in the segment's name, not only in its tags and the statistics: the opted-in ones.
MARKED_STATUSES = ("not_learned", ZERO_SHOT)
#: The opt-in flag of ``mome segment`` for each refused status.
OPT_IN_FLAGS = {ZERO_SHOT: "--allow-zero-shot", "not_learned": "--allow-not-learned"}


@dataclass(frozen=True)
class Reliability:
    """One requested structure with its status and the one-line reason for it."""

    key: str
    name: str
    status: str  # validated | weak | not_validated | not_learned | zero_shot
    reason: str

    @property
    def label(self) -> str:
        return "zero-shot" if self.status == ZERO_SHOT else STATUS_LABELS[self.status]

    @property
    def display_name(self) -> str:
        """The name outputs show: marked when the structure is not learned or zero-shot."""
        return f"{self.name} ({self.label})" if self.status in MARKED_STATUSES else self.name

    def to_dict(self) -> dict[str, str]:
        """Fields of the JSON ``done`` event's class entries (and the statistics)."""
        return {"status": self.status, "status_label": self.label, "evidence": self.reason,
                "display_name": self.display_name}


class UnreliableStructureError(ClassNotSupportedError):
    """Requested structures this model would only guess; ``refused`` lists them."""

    def __init__(self, message: str, refused: Sequence[Reliability]):
        super().__init__(message)
        self.refused = list(refused)

    def event_fields(self) -> dict[str, Any]:
        return {"refused": [{"key": r.key, "name": r.name, **r.to_dict(),
                             "opt_in_flag": OPT_IN_FLAGS.get(r.status)} for r in self.refused]}


def assess(classes: Sequence[Any], meta: Mapping[str, Any]) -> list[Reliability]:
    """A :class:`Reliability` per class (anything with ``key`` and ``name``: vocabulary or package
    classes), for the model whose ``model.json`` is ``meta``."""
    statuses = class_statuses(meta)
    model = f"{meta.get('name')} {meta.get('version')}"
    out = []
    for cls in classes:
        status = statuses.get(cls.key)
        if status is None:
            out.append(Reliability(cls.key, cls.name, ZERO_SHOT,
                                   f"model {model} was never trained on it: a guess from the name alone"))
        else:
            out.append(Reliability(cls.key, cls.name, status.status, status.reason))
    return out


def refuse_unreliable(assessed: Sequence[Reliability], meta: Mapping[str, Any], allow_zero_shot: bool = False,
                      allow_not_learned: bool = False) -> None:
    """Raise :class:`UnreliableStructureError` for what the policy refuses (module docstring)."""
    free_text_ok = bool((meta.get("text") or {}).get("allows_free_text", True))
    allowed = {ZERO_SHOT: allow_zero_shot and free_text_ok, "not_learned": allow_not_learned}
    refused = [r for r in assessed if r.status in allowed and not allowed[r.status]]
    if not refused:
        return
    model = f"{meta.get('name')} {meta.get('version')}"
    parts = []
    zero_shot = [r for r in refused if r.status == ZERO_SHOT]
    if zero_shot:
        how = (f"pass {OPT_IN_FLAGS[ZERO_SHOT]} to segment {'it' if len(zero_shot) == 1 else 'them'} anyway, "
               "marked zero-shot" if free_text_ok else "its package does not allow untrained structures")
        parts.append(f"{model} was never trained on {_names(zero_shot)} ({how})")
    not_learned = [r for r in refused if r.status == "not_learned"]
    if not_learned:
        figures = "; ".join(f"{r.name}: {r.reason}" for r in not_learned)
        parts.append(f"{model} has not learned {_names(not_learned)} ({figures}; pass "
                     f"{OPT_IN_FLAGS['not_learned']} to segment {'it' if len(not_learned) == 1 else 'them'} anyway, "
                     "marked not learned)")
    usable = [r for r in assess(_package_classes(meta), meta) if r.status != "not_learned"]
    offer = ", ".join(r.name for r in usable) or "nothing reliably"
    raise UnreliableStructureError(f"{'. '.join(parts)}. This model segments: {offer} (`mome classes`).", refused)


def _names(items: Sequence[Reliability]) -> str:
    return ", ".join(repr(r.name) for r in items)


class Structure(NamedTuple):
    """Key and name: all :func:`assess` needs of a class (vocabulary, package or free text)."""

    key: str
    name: str


def _package_classes(meta: Mapping[str, Any]) -> list[Structure]:
    return [Structure(c["key"], c.get("name", c["key"])) for c in meta.get("classes", [])]
