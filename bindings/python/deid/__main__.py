"""``python3 -m deid``: a thin command line over the binding (same calls as the API)."""
from __future__ import annotations

import argparse
import sys
from typing import List, Optional

from . import _api


def _options_epilog() -> str:
    try:
        opts = _api.options()
    except OSError as exc:  # library not found: --help still works
        return f"(options unavailable: {exc})"
    width = max(map(len, opts), default=0)
    return "options (--option NAME, repeatable):\n" + "\n".join(
        f"  {name:<{width}}  {text}" for name, text in opts.items())


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python3 -m deid", formatter_class=argparse.RawDescriptionHelpFormatter,
        description="De-identify DICOM files with libdeid (PS3.15 Annex E Basic Profile).",
        epilog=_options_epilog())
    sub = p.add_subparsers(dest="command", required=True)
    sub.add_parser("version", help="print the library version and features")
    sub.add_parser("options", help="list the de-identification options")
    kg = sub.add_parser("keygen", help="write a new random key file (mode 0600)")
    kg.add_argument("path")

    def common(sp: argparse.ArgumentParser) -> None:
        sp.add_argument("--key", required=True, help="key file (created when missing)")
        sp.add_argument("--option", action="append", default=[], metavar="NAME",
                        help="enable an option (see `options`); repeatable")
        sp.add_argument("--recipe", help="JSON recipe overriding actions per tag")

    f = sub.add_parser("file", help="de-identify one file")
    f.add_argument("input")
    f.add_argument("output")
    common(f)
    b = sub.add_parser("batch", help="de-identify a directory tree")
    b.add_argument("input")
    b.add_argument("output")
    b.add_argument("headers", nargs="?", help="headers/keys.csv directory (default: output)")
    common(b)
    b.add_argument("--workers", type=int, default=0, help="worker threads (0 = all cores)")
    b.add_argument("--resume", action="store_true", help="skip files already done")
    b.add_argument("--flat", action="store_true", help="do not mirror the input tree")
    b.add_argument("--quiet", action="store_true", help="no progress line")
    return p


def _progress(p: _api.Progress) -> None:
    print(f"\r{p.done}/{p.total} files, {p.failed} failed", end="", file=sys.stderr, flush=True)


def main(argv: Optional[List[str]] = None) -> int:
    args = _parser().parse_args(argv)
    try:
        if args.command == "version":
            print(f"libdeid {_api.version()} ({','.join(_api.features())})")
        elif args.command == "options":
            for name, text in _api.options().items():
                print(f"{name}\t{text}")
        elif args.command == "keygen":
            with _api.Key.generate() as key:
                key.save(args.path)
        elif args.command == "file":
            with _api.Profile(args.key, args.option, args.recipe) as profile:
                profile.deidentify(args.input, output=args.output)
        else:
            with _api.Batch(args.input, args.output, args.headers, key=args.key,
                            options=args.option, recipe=args.recipe, workers=args.workers,
                            resume=args.resume, flat=args.flat,
                            progress=None if args.quiet else _progress) as batch:
                s = batch.run()
            if not args.quiet:
                print(file=sys.stderr)
            print(f"found {s.found}, ok {s.ok}, skipped {s.skipped}, failed {s.failed} "
                  f"in {s.seconds_total:.2f} s" + (" (cancelled)" if s.cancelled else ""))
            return 1 if s.failed else 0
    except _api.DeidError as exc:
        print(f"deid: {exc}", file=sys.stderr)
        return 1
    except OSError as exc:
        print(f"deid: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
