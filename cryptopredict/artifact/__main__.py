"""`python -m cryptopredict.artifact served SRC DST`: the API's copy of an artifact (`copy_served`).

The Dockerfile's train stage runs it, and the api stage copies DST: the image serves every answer
without Prophet's fitted models, the backtest charts and the report, which the report stage keeps.
"""

from __future__ import annotations

import argparse
import sys

from cryptopredict.artifact.export import copy_served
from cryptopredict.errors import ArtifactError


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m cryptopredict.artifact", description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="command", required=True)
    served = sub.add_parser("served", help="copy an artifact without the files kept for the record")
    served.add_argument("src", help="the artifact folder (train.py --out)")
    served.add_argument("dst", help="a new or empty folder for the API's copy")
    args = p.parse_args(argv)
    try:
        copied, left = copy_served(args.src, args.dst)
    except (ArtifactError, ValueError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"copied {copied} file(s) and the manifest to {args.dst}; left out {left} kept for the record")
    return 0


if __name__ == "__main__":
    sys.exit(main())
