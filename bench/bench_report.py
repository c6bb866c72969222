#!/usr/bin/env python3
"""The report stage with Quarto (HTML + PDF) against the Jupyter fallback (HTML), on one run.

All engines execute each chapter once in one kernel; they differ in what turns the executed chapters
into pages: Quarto (an HTML book and a Typst PDF, two processes started before the first chapter
executes, each page rendered as soon as its chapter is done) or nbconvert. A third engine is the
baseline: Quarto started only once every chapter is executed (how the report stage rendered before).
Each round is a full `render(force=True)` with every engine, in an order that rotates from round to
round so that other load on the machine hits all alike. The goal is Quarto at most 1.3x the fallback,
both as the ratio of the medians and as the median of the rounds' own ratios (with their spread).
Wall and CPU seconds (this process and its children), the time spent executing chapters, the time
after it, and the load average before each render are recorded. Writes bench/results/report.json.

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
from duckling.book import quarto as quarto_book
from duckling.book import render
from duckling.errors import DucklingError
from duckling.io import read_json

TARGET = 1.3
ENGINES = ("fallback", "quarto", "quarto-after")  # quarto-after: Quarto started after execution


def cpu() -> float:
    return sum(r.ru_utime + r.ru_stime for r in (resource.getrusage(resource.RUSAGE_SELF),
                                                 resource.getrusage(resource.RUSAGE_CHILDREN)))


def spread(values: list[float]) -> dict:
    return {"median": round(statistics.median(values), 3), "min": round(min(values), 3),
            "max": round(max(values), 3)}


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

    runs = {e: [] for e in ENGINES}
    for i in range(a.rounds):
        for engine in ENGINES[i % len(ENGINES):] + ENGINES[:i % len(ENGINES)]:
            quarto_book.OVERLAP = engine != "quarto-after"
            load = os.getloadavg()[0]
            t0, c0 = time.perf_counter(), cpu()
            render.render(cfg, force=True, engine=engine.split("-")[0], progress=False)
            wall, cpus = time.perf_counter() - t0, cpu() - c0
            runs[engine].append({"wall_s": round(wall, 2), "cpu_s": round(cpus, 2), "load_1min": round(load, 2),
                                 "execute_s": round(executing[-1], 2), "after_s": round(wall - executing[-1], 2)})
            print(f"round {i + 1} {engine:12s} {wall:6.1f} s wall ({executing[-1]:.1f} s executing chapters), "
                  f"{cpus:6.1f} s CPU, load {load:.1f}", flush=True)
    quarto_book.OVERLAP = True
    med = {e: {k: round(statistics.median(r[k] for r in rs), 2) for k in rs[0]} for e, rs in runs.items()}
    ratio = med["quarto"]["wall_s"] / med["fallback"]["wall_s"]
    per_round = {e: [q["wall_s"] / f["wall_s"] for q, f in zip(runs[e], runs["fallback"])]
                 for e in ("quarto", "quarto-after")}
    res = {"benchmark": "report", "machine": machine_info(), "run": a.run, "frames": None, "chapters": None,
           "quarto": render._engine_label("quarto", quarto), "fallback": render._engine_label("fallback", None),
           "rounds": runs, "median": med, "quarto_over_fallback_wall": round(ratio, 3),
           "quarto_over_fallback_wall_per_round": spread(per_round["quarto"]),
           "quarto_after_over_fallback_wall_per_round": spread(per_round["quarto-after"]),
           "quarto_over_quarto_after_wall": round(med["quarto"]["wall_s"] / med["quarto-after"]["wall_s"], 3),
           "quarto_over_fallback_cpu": round(med["quarto"]["cpu_s"] / med["fallback"]["cpu_s"], 3),
           "target": TARGET, "met": ratio <= TARGET and statistics.median(per_round["quarto"]) <= TARGET,
           "outputs": str(cfg.report_dir)}
    try:
        res["frames"] = read_json(cfg.record_dir / "record.json")["provenance"]["frames"]
        res["chapters"] = len(render.chapters(render.source_dir(cfg)))
    except (OSError, KeyError, ValueError):
        pass
    r = res["quarto_over_fallback_wall_per_round"]
    print(f"report: Quarto {med['quarto']['wall_s']} s vs fallback {med['fallback']['wall_s']} s (median of "
          f"{a.rounds}): {ratio:.2f}x, per round {r['median']:.2f}x ({r['min']:.2f}-{r['max']:.2f}); "
          f"Quarto after execution {med['quarto-after']['wall_s']} s (target <= {TARGET}x)")
    write_result("report", res)


if __name__ == "__main__":
    main()
