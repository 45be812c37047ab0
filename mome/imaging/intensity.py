"""CT intensities as the network sees them."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

#: Value of points outside a CT's field of view when it is resampled.
AIR_HU = -1024.0


def scale_intensity(hu: np.ndarray, window: Sequence[float]) -> np.ndarray:
    """Clip HU to ``window`` and map it linearly onto [0, 1], as float32 (MONAI's
    ``ScaleIntensityRange`` with clipping)."""
    low, high = float(window[0]), float(window[1])
    out = np.clip(hu, low, high, dtype=np.float32)
    out -= low
    out /= high - low
    return out
