"""Errors shown to the person using Slicer: a sentence they can act on, with the technical details kept.

The engine reports failures as ``{"event": "error", "message": ..., "details": ...}`` (its messages
are already written for users) or, when it crashes, only through its exit code and log. This module
turns both into a :class:`FriendlyError` whose ``message`` says what happened and what to do, and
whose ``details`` keep everything a developer needs (engine message, traceback, last log lines).
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from .process import EXIT_CANCELLED, EXIT_REQUEST_ERROR


class FriendlyError(Exception):
    """An error whose ``message`` is meant for the user and ``details`` for the log / "Show details"."""

    def __init__(self, message: str, details: str = ""):
        super().__init__(message)
        self.message = message
        self.details = details

    def __str__(self) -> str:
        return self.message


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
     "list, or tick 'Allow names the model was not trained on'.", True),
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
                           log_tail: Sequence[str] = (), missing_output: bool = False) -> FriendlyError:
    """The user-facing error for a failed run (exit code, the engine's error event, its last log lines)."""
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
