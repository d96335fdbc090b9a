"""``python -m explain_plugin.samples known|build [--out DIR]``: make the sample projects."""
from __future__ import annotations

import argparse
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m explain_plugin.samples")
    sub = parser.add_subparsers(dest="what", required=True)
    known = sub.add_parser("known", help="the known-answer project (tiny exact models)")
    known.add_argument("--out", type=Path, default=Path("sample_projects/known_answer"))
    known.add_argument("--overwrite", action="store_true")
    real = sub.add_parser("build", help="the real-model project (EfficientNet-Lite0, SSD)")
    real.add_argument("--out", type=Path, default=Path("sample_projects/real"))
    real.add_argument("--overwrite", action="store_true")
    args = parser.parse_args(argv)
    if args.what == "known":
        from explain_plugin.samples.known_project import build

        print(f"Known-answer project at '{build(args.out, overwrite=args.overwrite)}'")
    else:
        from explain_plugin.samples.real_project import build

        print(f"Real-model sample project at '{build(args.out, overwrite=args.overwrite)}'")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
