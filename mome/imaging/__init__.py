"""The model grid: how a CT and its labels are brought to the orientation/spacing a model expects.

Training and inference must prepare images identically (a flip between the two would swap left
and right organs), so both call these functions.
"""

from .grid import intensity_to_unit, to_model_grid

__all__ = ["intensity_to_unit", "to_model_grid"]
