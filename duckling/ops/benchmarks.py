"""Run the scripts in bench/ (each prints a summary and writes bench/results/<name>.json)."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parents[2] / "bench"


def run_all(only: str = "") -> int:
    scripts = sorted(p for p in BENCH.glob("bench_*.py") if only in p.name)
    if not scripts:
        print(f"bench: no benchmark matches {only!r} in {BENCH}", file=sys.stderr)
        return 1
    worst = 0
    for p in scripts:
        print(f"bench: {p.name}")
        worst = max(worst, subprocess.call([sys.executable, str(p)]))
    return worst
