"""Run every benchmark in turn, each in its own process, each printing its own table.

    .venv/bin/python bench/run.py [NAME ...]     # e.g. intake feeds; default: all

Each benchmark runs its baseline in the same command, so the ratios hold on any machine.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ORDER = ["intake", "feeds", "message", "delivery", "web", "workers", "sources", "console"]


def main(argv: list[str]) -> int:
    names = argv or [n for n in ORDER if (HERE / f"bench_{n}.py").exists()]
    failed = []
    for name in names:
        script = HERE / f"bench_{name}.py"
        print(f"\n== bench/{script.name}", flush=True)
        start = time.perf_counter()
        code = subprocess.call([sys.executable, str(script)], cwd=HERE.parent)
        took = time.perf_counter() - start
        print(f"(bench/{script.name}: {took:.0f} s, exit {code})", flush=True)
        if code:
            failed.append(name)
    if failed:
        print(f"failed: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
