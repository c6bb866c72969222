#!/usr/bin/env python3
"""Mutation testing of the answer layer with mutmut: the share of one-line changes the tests catch.

The answer layer: the Record's summaries and verdicts, the phantom-vs-natural-dead comparison, the
cooling fit, the forces comparison, the frequency spectrum and the motion field's parts (SCOPE), and
the lines of the training loop that compute or write its logs (LOGGING, picked out of the loop's other
functions by their text). mutmut copies the tree to mutants/, mutates the files that pyproject's
[tool.mutmut] names, and runs, for each mutant, the tests of its test selection (the fast known-answer
files) that reach the mutated function. A surviving mutant is listed with the reason it is harmless
(REASONS) or as unexplained. Writes bench/results/mutants.json.

    python bench/mutants.py [--max-children 2]      # or: invoke mutants
"""
from __future__ import annotations

import argparse
import ast
import difflib
import fnmatch
import json
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import machine_info, write_result

REPO = Path(__file__).resolve().parents[1]
TARGET = 0.90
SCOPE = ("duckling.analyze.stage.x__learning__*", "duckling.analyze.stage.x__read_evals__*", "duckling.analyze.stage.x__compare__*",
         "duckling.analyze.stage.x__lifecycle__*", "duckling.analyze.stage.x__summaries__*",
         "duckling.metrics.compare.*", "duckling.metrics.cooling.x_late_slope__*",
         "duckling.metrics.lattice.x_fimbulwinter_verdict__*", "duckling.metrics.lattice.x__onset__*",
         "duckling.metrics.why.*", "duckling.metrics.spectrum.*", "duckling.metrics.shear.*",
         "duckling.train.loop.x_lr_at__*", "duckling.train.loop.x__stash_phantom_mass__*",
         "duckling.train.loop.xǁCsvLogǁwrite__*", "duckling.train.loop.xǁStepLogǁslot__*", "duckling.train.loop.xǁStepLogǁadd__*",
         "duckling.train.model.x_phantom_mass_from_grad__*")
# functions of the training loop that do more than log: only their mutants on a logging line count, a
# line that names one of LOGGING and is none of NOT_LOGGING (opening a log for a resume, the progress
# bar, the throughput clock, the force recorder)
LINES_OF = ("duckling.train.loop.x_run__*", "duckling.train.loop.x_train_step__*", "duckling.train.loop.xǁStepLogǁ__init____*",
            "duckling.train.loop.xǁStepLogǁflush__*")
LOGGING = re.compile(r"\b(bpb_scale|stats|pending|evals|csv|vals|vl|gnorm|loss|last_loss|lr|slot|flush)\b")
NOT_LOGGING = re.compile(r"CsvLog\(|set_postfix|^\s*tps = |\bkeep = |\bpull\b")

# why a surviving mutant is harmless: (function, pattern of the mutated line, reason)
REASONS = (
    ("*", r"asarray\((speed_[ab]|c_\w+|frozen_frac|cold_frac|speed_q)(, (dtype=)?None|, )\)|astype\(None\)",
     "dtype left to numpy: astype(None) is float64, and for real inputs scipy's tests, the subtraction and "
     "the comparisons and logarithms after compute in float64 either way"),
    ("*.x_speed_tests", r'"ab"\.rindex', "the names are one letter: index and rindex agree"),
    ("*.x_speed_tests", r'mannwhitneyu\(a, b, (alternative="TWO-SIDED")?\)',
     "two-sided is mannwhitneyu's default, and scipy reads the alternative in lower case"),
    ("*.x_drift_angle", r"axial=None\)|angle_between\(da, db, \)", "axial defaults to False, and None is as false"),
    ("*.x_late_slope", r"late = s > start", "start (1 - 1e-12) is never exactly a step: > and >= keep the same frames"),
    ("*.x_late_slope", r"intercept=float\(y\[1\]\)", "a flat series: y[1] is y[0]"),
    ("*.x__compare", r't\.get\("ks_p", (None)?\)', "speed_tests always returns ks_p: the default is never used"),
    ("*.x__compare", r"p >= 0\.01", "differs only at a p-value of exactly 0.01, which no KS test of real speeds gives"),
    ("*.x_lr_at", r"max\(2, cfg\.steps - warmup\)",
     "steps - warmup = 1 leaves one cosine step, at progress 0 either way"),
    ("*.x_lr_at", r"min\(2\.0, progress\)", "progress < 1 at every step < steps: the cap never binds"),
    ("*.x_train_step", r'cfg\.grad_clip or float\((None|"XXinfXX"|"INF")\)',
     "the no-clipping fallback, evaluated only with grad_clip 0, which no fast test trains with (and INF reads as inf)"),
    ("*.x_run", r"(train_step|evaluate)\(.*device, None[,)]",
     "precision None acts as fp32 on the CPU, where the tests train: autocast and the bf16 rounding are off either way"),
    ("*.x_run", r"log\.slot\(\), (precision,|device, step \+ 1)",
     "an argument dropped, so the rest shift into places (CUDA autocast, pure-bf16 rounding, the force recorder) "
     "that an fp32 run on the CPU leaves off"),
    ("*.x_run", r"LOG_EVERY or is_eval and is_ckpt|!= LOG_EVERY",
     "changes only when rows are written (every step, or at LOG_EVERY rows and the end), not which rows or values"),
    ("*.x_run", r"return finish\(",
     "an argument of train.json's bookkeeping (fingerprint, precision, resumed_from, frames, seconds), not a log"),
    ("*.x_over_gaps", r"reduceat\(seg, starts, \)", "axis 0 is reduceat's default"),
    ("*.x_over_gaps", r"reshape\(-2, ", "numpy reads any negative length as the one to infer"),
    ("*.x_over_gaps", r"asarray\(frame_steps, (dtype=None)?\)", "frame steps are integers: numpy's default integer is int64"),
    ("*.x_frozen_fraction", r"lattice_displacement\(bits_prev, bits\)\[1\]",
     "L1 = 0 exactly when Linf = 0: either says no coordinate crossed a cell"),
    ("*.x_parts", r"d = A\.shape\[1\]", "a linear field is square (d, d)"),
    ("*.x_linear_field", r"if n < d - 1:", "n <= d rows leave X_c^T X_c singular (rank n - 1), which solve refuses too"),
    ("*.x_linear_field", r"asarray\(D, (dtype=None)?\)", "D meets X_c, float64, only in X_c^T D: numpy computes it in float64"),
    ("*.x_expected_speed", r"asarray\(adam_rms, (dtype=None)?\)", "its one product is with a float64: numpy computes it in float64"),
    ("*.x_ratio_spread", r"r = np\.asarray\(ratio, (dtype=None)?\)",
     "numpy's quantile returns float64 and interpolates float32 ratios as it does float64 ones, and "
     "|r - 1| <= 0.05 decides the same in float32 (r - 1 is exact there, and no float32 difference falls "
     "between 0.05 and float32(0.05))"),
    ("*.x_gap", r"asarray\([ab], (dtype=None)?\)", "a - b with the other side float64: numpy computes it in float64"),
    ("*StepLog*", r'float\("NAN"\)', "float reads NAN as nan"),
    ("*StepLog*", r"torch\.zeros\(LOG_EVERY, 3, (device=None)?\)",
     "the stats buffer on the default device (the CPU) holds the same values; only a CUDA run would sync more"),
    ("*StepLog*", r"torch\.zeros\(LOG_EVERY, 4, ", "a fourth column of the stats buffer is never read"),
    ("*StepLog*", r"round\((tps, (None|2)?|1)\)", "tokens_per_s is wall-clock throughput, not a computed answer: "
     "its rounding is not checked"),
)


def reason(mutant: str, new_lines: list[str]) -> str:
    func = mutant.rpartition("__mutmut_")[0]
    for pattern, line, why in REASONS:
        if fnmatch.fnmatch(func, pattern) and any(re.search(line, x) for x in new_lines):
            return why
    return "unexplained"


def mutated_lines(path: Path) -> dict[str, tuple[list[str], list[str]]]:
    """Per mutant function in a mutmut-mutated file: (original lines it changes, their replacements)."""
    tree = ast.parse(path.read_text())
    src = path.read_text().splitlines()
    funcs = {n.name: src[n.lineno:n.end_lineno] for n in ast.walk(tree)  # the body, without the def line
             if isinstance(n, ast.FunctionDef) and "__mutmut_" in n.name}
    out = {}
    for name, body in funcs.items():
        base, _, n = name.rpartition("__mutmut_")
        if n == "orig" or f"{base}__mutmut_orig" not in funcs:
            continue
        diff = list(difflib.unified_diff(funcs[f"{base}__mutmut_orig"], body, lineterm="", n=0))[2:]
        out[name] = ([d[1:] for d in diff if d.startswith("-")], [d[1:] for d in diff if d.startswith("+")])
    return out


def mutmut(names: list[str], max_children: int) -> None:
    # the console script, not `python -m mutmut`: mutmut's workers fork from its own __main__
    subprocess.run([str(Path(sys.executable).with_name("mutmut")), "run", "--max-children", str(max_children), *names],
                   cwd=REPO, check=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--max-children", type=int, default=2, help="mutants tested side by side")
    a = ap.parse_args()
    from mutmut.stats import status_by_exit_code

    shutil.rmtree(REPO / "mutants", ignore_errors=True)  # from scratch: mutmut's cache would keep stale verdicts
    t0 = time.perf_counter()
    mutmut(list(SCOPE), a.max_children)  # generates every mutant of the [tool.mutmut] files, tests SCOPE's
    lines = {}
    for p in (REPO / "mutants" / "duckling").rglob("*.py"):  # a module's mutants are keyed by its dotted name
        if p.with_name(p.name + ".meta").exists():
            module = ".".join(p.relative_to(REPO / "mutants").with_suffix("").parts)
            lines.update({f"{module}.{k}": v for k, v in mutated_lines(p).items()})
    logging = sorted(k for k, (old, _) in lines.items() if any(fnmatch.fnmatch(k, g) for g in LINES_OF)
                     and any(LOGGING.search(x) and not NOT_LOGGING.search(x) for x in old))
    mutmut(logging, a.max_children)
    seconds = time.perf_counter() - t0

    status = {}
    for meta in (REPO / "mutants" / "duckling").rglob("*.meta"):
        for k, code in json.loads(meta.read_text())["exit_code_by_key"].items():
            if k in logging or any(fnmatch.fnmatch(k, g) for g in SCOPE):
                status[k] = status_by_exit_code[code]
    if not status:
        sys.exit("mutants: no mutant matched SCOPE; check its names against the modules under duckling/")
    counts = {s: sum(v == s for v in status.values()) for s in sorted(set(status.values()))}
    caught = counts.get("killed", 0) + counts.get("timeout", 0)
    score = caught / len(status)
    survivors = []
    for k in sorted(k for k, v in status.items() if v != "killed" and v != "timeout"):
        old, new = lines.get(k, ([], []))
        survivors.append({"mutant": k, "status": status[k], "from": [x.strip() for x in old],
                          "to": [x.strip() for x in new], "reason": reason(k, new)})
    result = {"command": "invoke mutants", "tool": "mutmut " + _version(), "scope": list(SCOPE),
              "logging_lines_of": list(LINES_OF),
              "logging_lines": LOGGING.pattern, "not_logging_lines": NOT_LOGGING.pattern, "mutants": len(status), "counts": counts, "score": round(score, 4),
              "target": TARGET, "seconds": round(seconds, 1), "max_children": a.max_children,
              "survivors": survivors, "machine": machine_info()}
    write_result("mutants", result)
    print(f"mutants: {caught} of {len(status)} caught ({score:.1%}, target {TARGET:.0%}) in {seconds:.0f}s; "
          f"{len(survivors)} survivors")
    for s in survivors:
        print(f"  {s['mutant']}: {' | '.join(s['to']) or '(removed)'}  <- {s['reason']}")
    sys.exit(0 if score >= TARGET and all(s["reason"] != "unexplained" for s in survivors) else 1)


def _version() -> str:
    from importlib.metadata import version

    return version("mutmut")


if __name__ == "__main__":
    main()
