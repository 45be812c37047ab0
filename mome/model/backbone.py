"""Vision branch: MONAI's Swin UNETR, returning every decoder stage instead of logits."""

from __future__ import annotations

import inspect

import torch
from monai.networks.nets import SwinUNETR
from torch import nn

from .attention import use_chunked_window_attention


# Older MONAI (< 1.6) has no fused-attention option and keeps its explicit attention.
_HAS_FLASH_OPTION = "use_flash_attention" in inspect.signature(SwinUNETR.__init__).parameters


class MoMESwinUNETR(SwinUNETR):
    """MONAI's Swin UNETR (Hatamizadeh et al., arXiv 2201.01266) returning every decoder stage: the
    multi-scale features MoME's experts are made of (arXiv 2510.26996).

    Module names match MONAI (``swinViT``, ``encoder*``, ``decoder*``), so MONAI's self-supervised
    Swin weights load with ``load_from``. The segmentation conv ``out`` of the parent is dropped:
    MoME's class heads replace it, and an unused parameter would break DDP.

    Window attention runs through PyTorch's fused ``scaled_dot_product_attention`` at inference
    (MONAI's ``use_flash_attention``, MONAI ≥ 1.6): the same values within float rounding, about
    1.6× faster on the CPU, with fewer window-sized intermediates (the scores and their softmax stay
    inside the fused kernel). Training on the CPU runs it a few windows at a time and keeps only
    ``q``, ``k``, ``v`` for the backward pass (``attention.py``: a bounded training peak); training
    on a GPU keeps MONAI's explicit attention.

    Args:
        in_channels: image channels.
        feature_size: Swin UNETR feature size ``f`` (a multiple of 12).
        use_checkpoint: gradient checkpointing in the transformer.

    Shapes (``forward``), for an input ``B×C_in×X×Y×Z`` (sizes multiples of 32), a list
    ``[dec4, dec3, dec2, dec1, dec0, out]`` of ``B×16f×X/32…``, ``B×8f×X/16…``, ``B×4f×X/8…``,
    ``B×2f×X/4…``, ``B×f×X/2…`` and ``B×f×X×Y×Z``.
    """

    def __init__(self, in_channels: int = 1, feature_size: int = 48, use_checkpoint: bool = False):
        fused_attention = {"use_flash_attention": True} if _HAS_FLASH_OPTION else {}
        super().__init__(
            in_channels=in_channels,
            out_channels=1,
            feature_size=feature_size,
            drop_rate=0.0,
            attn_drop_rate=0.0,
            dropout_path_rate=0.0,
            use_checkpoint=use_checkpoint,
            spatial_dims=3,
            use_v2=False,
            **fused_attention,
        )
        self.out = nn.Identity()
        use_chunked_window_attention(self.swinViT)

    def forward(self, x_in: torch.Tensor) -> list[torch.Tensor]:  # type: ignore[override]
        if not torch.jit.is_scripting() and not torch.jit.is_tracing():
            self._check_input_size(x_in.shape[2:])
        hidden = self.swinViT(x_in, self.normalize)
        enc0 = self.encoder1(x_in)
        enc1 = self.encoder2(hidden[0])
        enc2 = self.encoder3(hidden[1])
        enc3 = self.encoder4(hidden[2])
        dec4 = self.encoder10(hidden[4])
        dec3 = self.decoder5(dec4, hidden[3])
        dec2 = self.decoder4(dec3, enc3)
        dec1 = self.decoder3(dec2, enc2)
        dec0 = self.decoder2(dec1, enc1)
        out = self.decoder1(dec0, enc0)
        return [dec4, dec3, dec2, dec1, dec0, out]
