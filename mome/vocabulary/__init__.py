"""Known structures, their codes and colours, and prompt parsing.

Typical use::

    from mome.vocabulary import load_vocabulary, parse_prompts

    vocab = load_vocabulary()
    parsed = parse_prompts("liver, L kidney; IVC", vocab)
    parsed.keys  # ['liver', 'kidney_left', 'inferior_vena_cava']
"""

from .classes import KINDS, StructureClass, Vocabulary, default_vocabulary_path, load_vocabulary
from .codes import Code, SegmentDescriptor
from .names import canonical_name, normalize_name
from .presets import PRESETS, preset_classes, preset_keys, preset_names, preset_prompt_text
from .prompts import PROMPT_SEPARATORS, ParsedPrompts, UnknownStructureError, free_text_class, parse_prompts, split_prompt_text
from .table import classes_as_json, format_classes_table
from .terminology import (
    ALGORITHM_NAME_TAG,
    ALGORITHM_TYPE_TAG,
    ANATOMIC_CONTEXT_NAME,
    CONTEXT_NAME,
    GENERAL_ANATOMY_CONTEXT_NAME,
    TERMINOLOGY_TAG,
    build_terminology_context,
    parse_slicer_terminology_entry,
    slicer_terminology_entry,
)

__all__ = [
    "ALGORITHM_NAME_TAG",
    "ALGORITHM_TYPE_TAG",
    "ANATOMIC_CONTEXT_NAME",
    "CONTEXT_NAME",
    "GENERAL_ANATOMY_CONTEXT_NAME",
    "KINDS",
    "PRESETS",
    "PROMPT_SEPARATORS",
    "Code",
    "ParsedPrompts",
    "SegmentDescriptor",
    "StructureClass",
    "TERMINOLOGY_TAG",
    "UnknownStructureError",
    "Vocabulary",
    "build_terminology_context",
    "canonical_name",
    "classes_as_json",
    "default_vocabulary_path",
    "format_classes_table",
    "free_text_class",
    "load_vocabulary",
    "normalize_name",
    "parse_prompts",
    "parse_slicer_terminology_entry",
    "preset_classes",
    "preset_keys",
    "preset_names",
    "preset_prompt_text",
    "slicer_terminology_entry",
    "split_prompt_text",
]
