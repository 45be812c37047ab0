"""The MoME network (``MoME``) and its configuration (``MoMEConfig``)."""

from .config import DECODER_STAGES, SIZES, MoMEConfig
from .network import MoME

__all__ = ["DECODER_STAGES", "SIZES", "MoME", "MoMEConfig"]
