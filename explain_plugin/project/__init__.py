"""Datumaro-compatible projects (format v1 of 0.1.x and v2 of 0.2 .. 1.11)."""
from explain_plugin.project.project import Project

__all__ = ["Project"]
