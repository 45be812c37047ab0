"""The MoME network (``MoME``) and its configuration (``MoMEConfig``).

Reference: A. Rezvani, X. Yan, A. T. Wu, K. Han, P. Khosravi, X. Xie, "MoME: Mixture of Visual Language
Medical Experts for Medical Imaging Segmentation", arXiv 2510.26996, 2025.

One concept per file: ``backbone`` (Swin UNETR returning its decoder stages), ``experts`` (one expert
per decoder scale), ``router`` (text-guided pixel-wise gates), ``heads`` (text-conditioned dynamic
class heads), ``network`` (the assembly), ``config``.
"""

from .config import DECODER_STAGES, SIZES, MoMEConfig
from .network import MoME

__all__ = ["DECODER_STAGES", "SIZES", "MoME", "MoMEConfig"]
