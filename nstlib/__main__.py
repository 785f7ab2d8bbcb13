"""Command line: `python -m nstlib info` reports versions, the device, quick mode, and where the
weights and images are looked up and which of them are present."""
from __future__ import annotations

import argparse
import importlib.util
import sys

from . import data, runtime, weights
from .download import cache_dir


def info() -> str:
    lines = [runtime.describe()]
    has_tv = importlib.util.find_spec("torchvision") is not None
    lines.append(f"torchvision: {'installed' if has_tv else 'not installed'} (nstlib does not need it)")

    override = weights.weights_dir_override()
    lines.append("")
    lines.append("weights, looked up in:")
    lines.append(f"  {weights.ENV_VAR} = {override if override else '(not set)'}")
    lines.append(f"  cache = {cache_dir('weights')}")
    for name, e in weights.REGISTRY.items():
        local = weights.find_local(e.arch, e.source)
        status = f"found     {local}" if local else f"not found (downloads {e.bytes / 1e6:.0f} MB on first use)"
        lines.append(f"  {name:<18} {status}")

    override = data.data_dir_override()
    lines.append("")
    lines.append("images, looked up in:")
    lines.append(f"  NSTLIB_DATA_DIR = {override if override else '(not set)'}")
    lines.append(f"  cache = {cache_dir('images')}")
    for kind in data.KINDS:
        names = data.list_images(kind)
        missing = [n for n in names if data.find_local(n) is None]
        found = len(names) - len(missing)
        line = f"  {kind:<8} {found} of {len(names)} found"
        if missing:
            line += f"; downloaded on first use: {', '.join(missing)}"
        lines.append(line)
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m nstlib", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("info", help="versions, device, quick mode, weights and data found")
    args = parser.parse_args(argv)
    if args.command == "info":
        print(info())
    return 0


if __name__ == "__main__":
    sys.exit(main())
