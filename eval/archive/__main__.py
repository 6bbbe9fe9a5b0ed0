"""Build the archive set and measure top-5 hit rates: ``python -m eval.archive [--code CHECKOUT] [--out JSON]``.

``--code`` measures another checkout's ``kb`` (e.g. the commit before this work, unpacked with
``git archive f4e1b3f | tar -x -C /tmp/base``) on the same files and questions.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from eval.archive.build import build

HERE = Path(__file__).resolve().parent


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--code", type=Path, default=HERE.parents[1], help="checkout whose kb package is measured")
    ap.add_argument("--out", type=Path, default=HERE / "result_after.json")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = build(Path(tmp) / "files")
        env = {**os.environ, "PYTHONPATH": str(args.code.resolve())}
        subprocess.run([sys.executable, str(HERE / "run.py"), str(folder), str(Path(tmp) / "home"), "--out",
                        str(args.out)], env=env, check=True, cwd=tmp)


if __name__ == "__main__":
    main()
