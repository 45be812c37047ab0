"""Text branch: frozen open_clip text encoders and an embedding cache."""

from .cache import CachedTextEncoder
from .encoders import (
    PROMPT_TEMPLATE,
    CLIPEncoder,
    MiniLMEncoder,
    TextEncoder,
    TextEncoderUnavailableError,
    build_text_encoder,
    templated,
)

__all__ = [
    "PROMPT_TEMPLATE",
    "CLIPEncoder",
    "CachedTextEncoder",
    "MiniLMEncoder",
    "TextEncoder",
    "TextEncoderUnavailableError",
    "build_text_encoder",
    "templated",
]
