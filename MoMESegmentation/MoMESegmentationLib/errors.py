"""Errors shown to the person using Slicer: a sentence they can act on, with the technical details kept.

The engine reports failures as ``{"event": "error", "message": ..., "details": ...}`` (its messages
are already written for users) or, when it crashes, only through its exit code and log. This module
turns both into a :class:`FriendlyError` whose ``message`` says what happened and what to do, and
whose ``details`` keep everything a developer needs (engine message, traceback, last log lines).

Two refusals carry their reasons as data (the engine's ``error`` event has them as ``refused`` and
``input_check``; the logic finds the same before it starts the engine): :class:`RefusedStructuresError`
(structures the model would only guess) and :class:`InputCheckError` (a volume that does not look
like CT in Hounsfield units). Their messages name the panel's check box or button, or, for a
script, the keyword argument that overrides them (:meth:`for_script`).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from .parameters import (
    ALLOW_NOT_LEARNED_ARGUMENT,
    ALLOW_NOT_LEARNED_LABEL,
    ALLOW_ZERO_SHOT_ARGUMENT,
    ALLOW_ZERO_SHOT_LABEL,
    SEGMENT_ANYWAY_LABEL,
    SKIP_INPUT_CHECK_ARGUMENT,
)
from .process import EXIT_CANCELLED, EXIT_REQUEST_ERROR


class FriendlyError(Exception):
    """An error whose ``message`` is meant for the user and ``details`` for the log / "Show details"."""

    def __init__(self, message: str, details: str = ""):
        super().__init__(message)
        self.message = message
        self.details = details

    def __str__(self) -> str:
        return self.message


PANEL, SCRIPT = "panel", "script"  # who reads a message: how to override differs


class RefusedStructuresError(FriendlyError):
    """Structures the model would only guess, refused because the user did not opt in.

    ``refused``: one dict per structure as the engine's ``error`` event lists them (``name``,
    ``status`` ``not_learned``/``zero_shot``, ``status_label``, ``evidence``, ``display_name``).
    ``offer``: the structures this model does segment; ``zero_shot_possible``: False when the
    model's package forbids untrained structures (then no opt-in helps for them).
    """

    def __init__(self, refused: list[Mapping[str, Any]], model: str = "", offer: list[str] | None = None,
                 zero_shot_possible: bool = True, details: str = "", audience: str = PANEL):
        self.refused = [dict(r) for r in refused]
        self.model = model or "The selected model"
        self.offer = list(offer or [])
        self.zero_shot_possible = zero_shot_possible
        self.audience = audience
        super().__init__(self._message(), details)

    def _message(self) -> str:
        script = self.audience == SCRIPT
        lines = [f"{self.model} would only guess {'this structure' if len(self.refused) == 1 else 'these structures'}"
                 ", so MoME did not segment anything:"]
        for r in self.refused:
            lines.append(f"  • {refusal_line(r, self.model)}")
        statuses = {r.get("status") for r in self.refused}
        opt_ins = []
        if "not_learned" in statuses:
            opt_ins.append(ALLOW_NOT_LEARNED_ARGUMENT if script else f"'{ALLOW_NOT_LEARNED_LABEL}'")
        if "zero_shot" in statuses and self.zero_shot_possible:
            opt_ins.append(ALLOW_ZERO_SHOT_ARGUMENT if script else f"'{ALLOW_ZERO_SHOT_LABEL}'")
        them = "it" if len(self.refused) == 1 else "them"
        advice = f"Remove {them} from the list or choose a model that segments {them}"
        if opt_ins:
            how = ("pass " if script else "tick ") + " and ".join(opt_ins)
            example = self.refused[0].get("display_name") or self.refused[0].get("name")
            advice += (f"; or, to see the guess anyway, {how}: MoME then marks it in the segment's name, "
                       f"e.g. '{example}'")
        lines += ["", advice + "."]
        if self.offer:
            lines += ["", f"{self.model} segments: {', '.join(self.offer)}."]
        return "\n".join(lines)

    def for_script(self) -> "RefusedStructuresError":
        return RefusedStructuresError(self.refused, self.model, self.offer, self.zero_shot_possible, self.details,
                                      SCRIPT)


def refusal_line(refused: Mapping[str, Any], model: str = "") -> str:
    """One refused structure in words, e.g. "spleen — not learned (Dice 0.00 on 1 patient ...)"."""
    name = refused.get("name", "?")
    if refused.get("status") == "zero_shot":
        key = str(refused.get("key", ""))
        why = "not a name MoME knows" if key.startswith("free_text_") else "never trained on it"
        return f"{name} — zero-shot: {model or 'the model'} was {why}; it would be a guess from the name alone"
    return f"{name} — not learned ({refused.get('evidence', 'no figures')})"


class InputCheckError(FriendlyError):
    """The volume does not look like CT in Hounsfield units (``check``: the engine's ``InputCheck``
    as a dict: ``code``, ``message``, ``overridable``, ``measurements``). ``overridable`` ones may be
    segmented anyway (the panel asks; scripts pass ``skip_input_check=True``); damage never."""

    def __init__(self, check: Mapping[str, Any], details: str = "", audience: str = PANEL):
        self.check = dict(check)
        self.audience = audience
        super().__init__(self._message(), details)

    @property
    def overridable(self) -> bool:
        return bool(self.check.get("overridable"))

    @property
    def code(self) -> str:
        return str(self.check.get("code", ""))

    def _message(self) -> str:
        from mome.io.plausibility import OVERRIDE_FLAG

        reason = str(self.check.get("message", ""))
        if self.overridable:
            # The engine's advice names its command-line flag; say what overrides it here instead.
            how = f"pass {SKIP_INPUT_CHECK_ARGUMENT}" if self.audience == SCRIPT else f"choose '{SEGMENT_ANYWAY_LABEL}'"
            reason = _sentence(reason.replace(f"pass {OVERRIDE_FLAG}", how))
            return f"This volume does not look like a CT in Hounsfield units.\n\n{reason}"
        return f"This volume is damaged, so MoME will not segment it.\n\n{_sentence(reason)}"

    def for_script(self) -> "InputCheckError":
        return InputCheckError(self.check, self.details, SCRIPT)


# (pattern in the engine's message or log, what the user should read, whether to add the engine's
# own sentence: it names the problem precisely, e.g. the suggestions for a misspelt structure).
# First match wins.
_RULES: tuple[tuple[str, str, bool], ...] = (
    (r"out of memory|OutOfMemoryError|Unable to allocate|MemoryError",
     "The computer ran out of memory while segmenting. Tick 'Fast' mode, choose fewer structures, or "
     "close other programs and try again. If a GPU is used, choosing 'CPU' as device also helps.", False),
    (r"No module named '?(torch|monai|open_clip|safetensors|nrrd|einops|transformers|highdicom|scipy|yaml)",
     "Python packages that MoME needs are missing or broken. Click Segment again and accept the "
     "installation, then restart Slicer. If it keeps failing, reinstall PyTorch in the PyTorch Utils module.",
     False),
    (r"No module named '?mome",
     "The MoME engine files are missing from this Slicer installation. Reinstall the MoME extension "
     "from the Extensions Manager.", False),
    (r"sees no CUDA GPU|(cuda|gpu)\b.{0,40}(not available|unavailable)|Torch not compiled with CUDA",
     "No usable graphics card (GPU) was found. Choose 'Auto' or 'CPU' as the device; segmenting on the "
     "CPU is slower but gives the same result.", False),
    (r"checksum|integrity check|SHA-?256 mismatch",
     "The model files are damaged or incomplete (their checksum does not match). Reinstall the model, "
     "or choose another model.", False),
    (r"model .{0,80}is not installed|model package .{0,200}does not exist",
     "The selected model is not installed on this computer. Choose another model in the Model list, or "
     "install it with the MoME Training module.", True),
    (r"unknown structure",
     "MoME does not know one of the structure names. Check the spelling, pick names from the completion "
     f"list, or tick '{ALLOW_ZERO_SHOT_LABEL}'.", True),
    (r"cannot be segmented with this model|no structures to segment",
     "The selected model cannot segment one of the requested structures. Remove it from the list or "
     "choose another model.", True),
    (r"text encoder",
     "MoME needs its text encoder to understand a structure name the model was not trained on, and it is "
     "not available here. Use names from the completion list.", True),
    (r"ImageReadError|cannot be used|not a 3D|single slice|colou?r image|\b4D\b|Hounsfield",
     "The input volume cannot be segmented by MoME.", True),
)

# Command-line advice that makes no sense inside Slicer.
_CLI_ONLY = re.compile(r"\s*(Run `[^`]*`[^.]*\.|Use --[a-z-]+[^.]*\.?|pass --[a-z-]+[^.;]*[.;]?)", re.IGNORECASE)


def translate_engine_error(exit_code: int | None, engine_message: str = "", engine_details: str = "",
                           log_tail: Sequence[str] = (), missing_output: bool = False,
                           event: Mapping[str, Any] | None = None,
                           renames: Mapping[str, str] | None = None) -> FriendlyError:
    """The user-facing error for a failed run (exit code, the engine's error event, its last log lines).

    ``event`` is the whole ``error`` event: its ``refused`` or ``input_check`` field becomes a
    :class:`RefusedStructuresError` or :class:`InputCheckError`. ``renames`` replaces names the
    user never saw (the temporary input file) with the ones they know (the volume's)."""
    for old, new in (renames or {}).items():
        engine_message = engine_message.replace(old, new)
    log_text = "\n".join(log_tail)
    haystack = "\n".join([engine_message, engine_details, log_text])
    details_parts = []
    if engine_message:
        details_parts.append(f"MoME reported: {engine_message}")
    if exit_code is not None:
        details_parts.append(f"exit code: {exit_code}{_signal_note(exit_code)}")
    if engine_details:
        details_parts.append(engine_details.rstrip())
    if log_tail:
        details_parts.append("last output lines:\n" + log_text)
    details = "\n\n".join(details_parts)

    if exit_code == EXIT_CANCELLED:
        return FriendlyError("The segmentation was cancelled; nothing was changed.", details)
    event = event or {}
    if event.get("refused"):
        model = re.match(r"(.+?) (?:was never trained on|has not learned) ", engine_message)
        offer = re.search(r"This model segments: (.*?)(?: \(`mome classes`\))?\.?$", engine_message)
        return RefusedStructuresError(
            list(event["refused"]), model.group(1) if model else "", offer.group(1).split(", ") if offer else [],
            zero_shot_possible="does not allow untrained" not in engine_message, details=details)
    if isinstance(event.get("input_check"), Mapping):
        check = dict(event["input_check"])
        for old, new in (renames or {}).items():
            check["message"] = str(check.get("message", "")).replace(old, new)
        return InputCheckError(check, details)
    if missing_output:
        return FriendlyError("MoME finished but did not produce a segmentation file. "
                             "This is a bug; the details below help the developers.", details)
    for pattern, text, add_engine_sentence in _RULES:
        if re.search(pattern, haystack, flags=re.IGNORECASE):
            engine_sentence = _sentence(engine_message)
            if add_engine_sentence and engine_sentence:
                text += f"\n\n{engine_sentence}"
            return FriendlyError(text, details)
    if exit_code == EXIT_REQUEST_ERROR and engine_message:
        return FriendlyError(_sentence(engine_message), details)
    if exit_code is not None and exit_code < 0 or exit_code in (137, 139, -9, -11, 3221225477):
        return FriendlyError("The segmentation process stopped unexpectedly (it may have run out of "
                             "memory). Try 'Fast' mode or the CPU device, and close other programs.", details)
    return FriendlyError("MoME stopped because of an unexpected error. The details below can help the "
                         "developers; please include them when you report the problem.", details)


def _sentence(text: str) -> str:
    text = _CLI_ONLY.sub("", text).strip()
    if text.lower().startswith("internal error:"):
        text = text.split(":", 1)[1].strip()
    if text and text[0].islower():
        text = text[0].upper() + text[1:]
    if text and text[-1] not in ".!?":
        text += "."
    return text


def _signal_note(exit_code: int) -> str:
    if exit_code < 0:
        return f" (killed by signal {-exit_code})"
    if exit_code > 128 and exit_code - 128 in (6, 9, 11, 15):
        return f" (killed by signal {exit_code - 128})"
    return ""
