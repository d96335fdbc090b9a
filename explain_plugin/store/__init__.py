"""A dataset run saved into the project: a Datumaro-format dataset under
``explanations/<run>/`` plus heatmaps, overlays, run.json, metrics.csv, report.html."""
