"""MoME: text-prompted CT segmentation with a Mixture of Vision-Language Medical Experts.

The engine package. It never imports Slicer or Qt, so the same code runs in a terminal, a training
cluster and the background process the Slicer modules launch.
"""

__version__ = "0.1.0"
