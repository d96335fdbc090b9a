"""Black-box explanations (RISE, ReX) of OpenVINO models for Datumaro projects."""

__version__ = "0.1.0"
