"""Older home of RISE's masks: see ``explain_plugin.methods.rise.masks``."""
from explain_plugin.methods.rise.masks import MaskGenerator  # noqa: F401
