"""``python -m relgrad.datasets``: list the data sets, or prepare one for ``relgrad train``.

Usage::

    python -m relgrad.datasets list
    python -m relgrad.datasets prepare NAME SRC OUT [--force]
    python -m relgrad.datasets prepare TOY OUT [--n-train N] [--n-val N] [--n-test N] [--seed S]

Exit status: 0 success, 1 error (a missing or damaged file, a missing dependency),
2 usage error.
"""

from __future__ import annotations

import argparse
import sys
from typing import List, Optional

from ._registry import DATASETS, dataset, prepare


def _list() -> int:
    for kind, title in (
        ("tabular", "tabular (MAF's preprocessing and splits)"),
        ("image", "images (uint8)"),
        ("toy", "2-D toys (generated)"),
    ):
        print(f"{title}:")
        for d in DATASETS.values():
            if d.kind != kind:
                continue
            needs = f"  [needs {d.needs}]" if d.needs else ""
            print(f"  {d.name:<13} {d.description}{needs}")
            if d.files:
                print(f"  {'':<13} files: {d.files}; download: {d.where}")
    return 0


def _prepare(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    try:
        d = dataset(args.name)
    except ValueError as e:
        parser.error(str(e))
    options = {}
    if d.kind == "toy":
        if len(args.paths) != 1:
            parser.error(f"{d.name} is generated: give only OUT (prepare {d.name} OUT)")
        src, out = None, args.paths[0]
        options = {"n_train": args.n_train, "n_val": args.n_val, "n_test": args.n_test, "seed": args.seed}
    else:
        if len(args.paths) != 2:
            parser.error(
                f"give SRC and OUT: prepare {d.name} SRC OUT (SRC holds {d.files}; download: {d.where})"
            )
        if any(v is not None for v in (args.n_train, args.n_val, args.n_test, args.seed)):
            parser.error("--n-train, --n-val, --n-test and --seed are for the toy sets only")
        src, out = args.paths
    options = {k: v for k, v in options.items() if v is not None}

    def progress(message: str) -> None:
        print(message, file=sys.stderr, flush=True)

    info = prepare(d.name, src, out, overwrite=args.force, progress=progress, **options)
    shapes = ", ".join(f"{s} {' x '.join(map(str, v['shape']))}" for s, v in info["splits"].items())
    print(f"prepared {d.name} in {out}: {shapes} ({info['splits']['train']['dtype']}); see {out}/info.json")
    # MAF's sets are standardised already; images and toys keep relgrad's automatic choice.
    flags = " --preprocess none" if d.kind == "tabular" else ""
    print(f"train: relgrad train --data {out}/train.npy --val {out}/val.npy --test {out}/test.npy{flags}")
    return 0


def main(argv: Optional[List[str]] = None) -> int:
    """The command line; returns the exit status."""
    parser = argparse.ArgumentParser(
        prog="python -m relgrad.datasets",
        description="The data sets of the paper, from the publishers' files, as .npy files for relgrad train.",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("list", help="list the data sets, their files and where to download them")
    p = sub.add_parser(
        "prepare",
        help="write OUT/train.npy, val.npy, test.npy and info.json",
        description="Read a data set from the publisher's files in SRC (toy sets: generate it) and write "
        "OUT/train.npy, OUT/val.npy, OUT/test.npy and OUT/info.json.",
    )
    p.add_argument("name", metavar="NAME", help="data set (python -m relgrad.datasets list)")
    p.add_argument(
        "paths",
        nargs="+",
        metavar="SRC OUT",
        help="SRC: directory (or file) of the publisher's files; OUT: output directory",
    )
    p.add_argument("--force", action="store_true", help="overwrite files in OUT")
    for flag in ("--n-train", "--n-val", "--n-test"):
        p.add_argument(flag, type=int, default=None, help="toy sets: rows of the split (default 5000)")
    p.add_argument("--seed", type=int, default=None, help="toy sets: seed of the generator (default 0)")
    args = parser.parse_args(argv)
    if args.command == "list":
        return _list()
    try:
        return _prepare(args, parser)
    except (FileNotFoundError, FileExistsError, ImportError, ValueError) as e:
        # ValueError: DataFormatError (a damaged file) and bad toy options (an odd n for 2spirals)
        print(f"error: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
