#!/usr/bin/python3
"""CT series for the header benchmark: N slices of 512x512 16-bit, explicit VR little endian,
each with a realistic header (about 150 elements, PHI in every identifying attribute, private
blocks, sequences) built by make_phi_corpus.py's builders. Deterministic for a given --seed.

Usage: make_ct_corpus.py --out DIR [--slices 400] [--size 512] [--seed N]
Writes DIR/ct/IM0001.dcm ... (about 0.5 MB each, 200 MB for 400 slices).
"""
import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import make_phi_corpus as phi  # noqa: E402


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", required=True)
    ap.add_argument("--slices", type=int, default=400)
    ap.add_argument("--size", type=int, default=512, help="rows = columns")
    ap.add_argument("--seed", type=int, default=1)
    a = ap.parse_args(argv)
    t0 = time.perf_counter()
    c = phi.build_ct_series(a.seed, a.slices, a.size, "ct", stream_to=a.out)
    print(f"{len(c.files)} CT slices {a.size}x{a.size} -> {a.out} in "
          f"{time.perf_counter() - t0:.1f} s", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
