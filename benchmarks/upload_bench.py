"""What identifying and staging an upload costs: hashing every byte, and writing the one staged copy.

Prints JSON: for a file of --mb megabytes (default 1024, the upload limit), the seconds to hash it in memory
(content_digest) and to stage it (StagedFile: write and hash in one pass), and the rates.
Run: .venv/bin/python benchmarks/upload_bench.py [--mb 1024]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from analysis.uploads import StagedFile, content_digest  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mb", type=int, default=1024, help="size of the upload in MB (default: %(default)s)")
    args = parser.parse_args()
    data = np.random.default_rng(0).integers(0, 256, args.mb << 20, np.uint8).tobytes()

    started = time.perf_counter()
    content_digest(data)
    hashing_s = time.perf_counter() - started

    started = time.perf_counter()
    staged = StagedFile(data, "mp4")
    staging_s = time.perf_counter() - started
    staged.close()
    print(json.dumps({"mb": args.mb, "hash_s": round(hashing_s, 3), "hash_mb_per_s": round(args.mb / hashing_s),
                      "stage_and_hash_s": round(staging_s, 3),
                      "stage_mb_per_s": round(args.mb / staging_s)}, indent=1))


if __name__ == "__main__":
    main()
