#!/usr/bin/env python3
"""The report stage with Quarto (HTML + PDF) against the Jupyter fallback (HTML), on one run.

Both execute each chapter once in one kernel; they differ in what turns the executed notebooks into
pages: Quarto (an HTML book and a Typst PDF, two processes at once) or nbconvert. Rounds alternate
the two engines (fallback first, then Quarto first, ...) so that other load on the machine hits both
alike; each round is a full `render(force=True)`. The medians are compared; the goal is Quarto at
most 1.3x the fallback. Wall and CPU seconds (this process and its children) are recorded, and the
time spent executing chapters apart from the rest. Writes bench/results/report.json.

    DUCKLING_ROOT=/tmp/d invoke all --profile demo     # the run it renders, once
    DUCKLING_ROOT=/tmp/d python bench/bench_report.py [--run demo --rounds 3]
"""
from __future__ import annotations

import argparse
import os
import resource
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import machine_info, write_result

from duckling import config
from duckling.book import render
from duckling.errors import DucklingError
from duckling.io import read_json

TARGET = 1.3


def cpu() -> float:
    return sum(r.ru_utime + r.ru_stime for r in (resource.getrusage(resource.RUSAGE_SELF),
                                                 resource.getrusage(resource.RUSAGE_CHILDREN)))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--run", default="demo")
    ap.add_argument("--rounds", type=int, default=3, help="renders with each engine, interleaved")
    a = ap.parse_args()
    quarto = render._quarto()
    if quarto is None:
        sys.exit("error: bench_report: no Quarto (put one on PATH: bash ../shared/tools/quarto/install.sh PREFIX)")
    root = os.environ.get("DUCKLING_ROOT", ".")
    try:
        cfg = config.load(a.run, root)
    except DucklingError as e:
        sys.exit(f"error: bench_report: {e} (make the run first: DUCKLING_ROOT={root} invoke all --profile demo)")

    executing = []
    execute = render._execute

    def timed_execute(*args, **kw):  # the shared part: executing the chapters
        t0 = time.perf_counter()
        out = execute(*args, **kw)
        executing.append(time.perf_counter() - t0)
        return out
    render._execute = timed_execute

    runs = {"fallback": [], "quarto": []}
    for i in range(a.rounds):
        for engine in ("fallback", "quarto")[:: 1 if i % 2 == 0 else -1]:
            t0, c0 = time.perf_counter(), cpu()
            render.render(cfg, force=True, engine=engine, progress=False)
            wall, cpus = time.perf_counter() - t0, cpu() - c0
            runs[engine].append({"wall_s": round(wall, 2), "cpu_s": round(cpus, 2),
                                 "execute_s": round(executing[-1], 2), "pages_s": round(wall - executing[-1], 2)})
            print(f"round {i + 1} {engine:8s} {wall:6.1f} s wall ({executing[-1]:.1f} s executing chapters), "
                  f"{cpus:6.1f} s CPU", flush=True)
    med = {e: {k: round(statistics.median(r[k] for r in rs), 2) for k in rs[0]} for e, rs in runs.items()}
    ratio = med["quarto"]["wall_s"] / med["fallback"]["wall_s"]
    res = {"benchmark": "report", "machine": machine_info(), "run": a.run, "frames": None,
           "quarto": render._engine_label("quarto", quarto), "fallback": render._engine_label("fallback", None),
           "rounds": runs, "median": med, "quarto_over_fallback_wall": round(ratio, 3),
           "quarto_over_fallback_cpu": round(med["quarto"]["cpu_s"] / med["fallback"]["cpu_s"], 3),
           "target": TARGET, "met": ratio <= TARGET, "outputs": str(cfg.report_dir)}
    try:
        res["frames"] = read_json(cfg.record_dir / "record.json")["provenance"]["frames"]
    except (OSError, KeyError, ValueError):
        pass
    print(f"report: Quarto {med['quarto']['wall_s']} s vs fallback {med['fallback']['wall_s']} s (median of "
          f"{a.rounds}): {ratio:.2f}x (target <= {TARGET}x)")
    write_result("report", res)


if __name__ == "__main__":
    main()
