"""RISE only: its masks, its accumulator, and the method over the shared core."""
from explain_plugin.methods.rise.accumulator import SaliencyAccumulator
from explain_plugin.methods.rise.masks import MaskGenerator
from explain_plugin.methods.rise.method import SALIENCY_PIXELS_PER_CELL, Rise

__all__ = ["Rise", "MaskGenerator", "SaliencyAccumulator", "SALIENCY_PIXELS_PER_CELL"]
