"""Multi-scale superpixel sampling: masks that follow the image's structure."""
from explain_plugin.methods.segments.method import Segments
from explain_plugin.methods.segments.superpixels import superpixels

__all__ = ["Segments", "superpixels"]
