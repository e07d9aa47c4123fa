"""``python -m streams.dashboards``: write every dashboard to ``--out`` (one path a line)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from streams.dashboards.build import DEFAULT_OUT, write_all


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Generate the Grafana dashboards.")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--catalog", type=Path, default=None)
    args = parser.parse_args(argv)
    for path in write_all(args.out, args.catalog):
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
