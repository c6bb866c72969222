"""The frequency spectrum of the Record: the token sets by train count (corpus.count_sets), each measured
in three frames, frame 0 and the last two (metrics.spectrum), and the phantoms' final speeds tested
against every other set's (metrics.compare.speed_tests). Read apart from the main pass, like the
detector: three random-access frames cost nothing beside it."""
from __future__ import annotations

import math

import numpy as np

from duckling import movie
from duckling.analyze import fields
from duckling.data import corpus
from duckling.metrics import cloud, compare, lattice, spectrum

LADDER_FROM = "natural_dead"  # the sets from here on, rarest first, are the ladder a count climbs


def label(b: dict) -> str:
    """How often a set's tokens occur, in words ('never (natural dead)', 'once', '2-3 times', ...)."""
    lo, hi = b["counts"]
    if lo is None:
        return "phantom"
    if lo == 0:
        return "never (natural dead)"
    if lo == hi:
        return "once" if lo == 1 else f"{lo:,} times"
    return f"{lo:,}+ times" if hi is None else f"{lo:,}–{hi:,} times"


def over_run(mv: movie.Movie, counts: np.ndarray, separator_id: int, dead_mask: np.ndarray) -> dict:
    """The spectrum record: per set (phantom, natural_dead, seen_1 .. seen_1001+) the quantities of
    spectrum.bin_metrics, its place on the dead-to-live distance scale, the speed tests against the
    phantoms, the counts at which tokens join the live cloud, and the sentences the book prints."""
    sets = corpus.count_sets(counts, separator_id, dead_mask)
    steps = np.asarray(mv.steps, dtype=np.int64)
    out = {"frame_steps": [], "bins": [], "joins": {"distance": None, "speed": None},
           "alpha": spectrum.ALPHA, "join_level": spectrum.JOIN_LEVEL, "definitions": definitions()}
    if steps.size < 2 or sets["phantom"].size == 0:
        out["answer"] = ("The movie has a single frame: no token has moved yet." if steps.size < 2 else
                         "This run has no phantom rows, so the spectrum has no dead reference.")
        out["rare"] = ""
        return out
    from duckling.analyze.stage import one_blas_thread  # here, not at the top: stage imports this module

    idx = (0, steps.size - 2, steps.size - 1)
    with one_blas_thread():  # OpenBLAS's threads cost several times their gain on these small products
        return _measure(out, sets, mv, steps, idx)


def _measure(out: dict, sets: dict, mv: movie.Movie, steps: np.ndarray, idx: tuple) -> dict:
    bits = [mv.frame(int(steps[i])) for i in idx]
    W0, Wp, W = (lattice.to_float32(b) for b in bits)
    gap = float(steps[-1] - steps[-2])
    ph = sets["phantom"]
    c_ph = cloud.centroid(W[ph])
    r_ph = cloud.radius(W[ph], c_ph)[0]
    m = c_ph - cloud.centroid(W0[ph])
    # count_sets lists count_bins' sets after the two dead ones, in COUNT_BINS order
    ranges = {"phantom": [None, None], "natural_dead": [0, 0],
              **{k: list(r) for k, r in zip(list(sets)[2:], corpus.COUNT_BINS, strict=True)}}
    speeds = {}
    for name, rows in sets.items():
        b, speeds[name] = spectrum.bin_metrics(W0[rows], Wp[rows], W[rows], bits[1][rows], bits[2][rows], gap,
                                               c_ph, r_ph, m)
        out["bins"].append({"name": name, "counts": ranges[name], **b})
    for b in out["bins"]:
        b["tests"] = (None if b["name"] == "phantom" else
                      compare.speed_tests(speeds["phantom"], speeds[b["name"]]))
    out.update(frame_steps=[int(steps[i]) for i in idx], gap=gap, phantom_rms_radius=r_ph)
    _scale(out)
    out["answer"], out["rare"] = _answer(out), _rare(out)
    return out


def _scale(out: dict) -> None:
    """Each set's place on the dead-to-live distance scale and the two join counts (in place)."""
    bins = out["bins"]
    ladder = [b for b in bins[[b["name"] for b in bins].index(LADDER_FROM):] if b["n"]]
    dead = bins[0]["dist_phantom"]  # the phantoms' own median distance from their centroid
    top = ladder[-1] if ladder else None
    out["reference"] = {"dist_dead": dead, "live_bin": top["name"] if top else None,
                        "dist_live": top["dist_phantom"] if top else math.nan}
    for b in bins:
        b["scale"] = spectrum.distance_scale(b["dist_phantom"], dead, out["reference"]["dist_live"])
    far = spectrum.join_index([b["scale"] >= spectrum.JOIN_LEVEL for b in ladder])
    fast = spectrum.join_index([b["tests"]["ks_p"] <= spectrum.ALPHA for b in ladder])
    out["joins"] = {"distance": None if far is None else ladder[far]["name"],
                    "speed": None if fast is None else ladder[fast]["name"]}


def _who(b: dict) -> str:
    return "the natural dead tokens (never seen)" if b["name"] == LADDER_FROM else f"the tokens seen {label(b)}"


def _g(x, spec: str = ".3g") -> str:
    return format(x, spec) if x is not None and math.isfinite(x) else "n/a"


def _answer(out: dict) -> str:
    """At what count tokens join the live cloud, by distance and by final speed."""
    by = {b["name"]: b for b in out["bins"]}
    ref, r = out["reference"], out["phantom_rms_radius"]
    if ref["live_bin"] is None:
        return "No live token occurs in the run, so there is no live cloud to join."
    live, dead = by[ref["live_bin"]], ref["dist_dead"]
    if out["joins"]["distance"] is None:
        text = (f"By distance, no count has left the dead cloud: {_who(live)} sit no farther from the phantom "
                f"centroid ({_g(ref['dist_live'])}) than the phantoms themselves ({_g(dead)}).")
    else:
        j = by[out["joins"]["distance"]]
        text = (f"By distance, tokens join the live cloud once seen {label(j)}: from {_who(j)} on, every set's"
                if j["name"] != LADDER_FROM else "By distance, even the natural dead tokens sit with the live: "
                "every set's")
        text += (f" median distance from the phantom centroid is at least {spectrum.JOIN_LEVEL:.0%} of the way "
                 f"from the phantoms' own ({_g(dead)}, {_g(dead / r, '.2f')} phantom radii) to that of "
                 f"{_who(live)} ({_g(ref['dist_live'])}, {_g(ref['dist_live'] / r, '.2f')} radii).")
    return text + " " + _by_speed(out)


def _by_speed(out: dict) -> str:
    """Which sets' final speeds the KS test tells apart from the phantoms'."""
    ladder = [b for b in out["bins"][1:] if b["n"]]
    differ = [b for b in ladder if b["tests"]["ks_p"] <= spectrum.ALPHA]
    same = [b for b in ladder if b not in differ]
    a = spectrum.ALPHA
    if out["joins"]["speed"] is not None:
        j = next(b for b in ladder if b["name"] == out["joins"]["speed"])
        text = f"By final speed, every set from {_who(j)} on moves differently from the phantoms (KS p ≤ {a})"
        return text + (f"; {_list(same)} do not." if same else ".")
    if not differ:
        return f"By final speed, no set is told apart from the phantoms (KS p > {a} for each)."
    return (f"By final speed, {_list(differ)} move differently from the phantoms (KS p ≤ {a}); {_list(same)} "
            "do not.")


def _list(bins: list) -> str:
    names = [_who(b) for b in bins]
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


def _rare(out: dict) -> str:
    """Whether tokens seen once or 2-3 times behave like dead ones, beside the natural dead."""
    parts, by = [], {b["name"]: b for b in out["bins"]}
    live = _who(by[out["reference"]["live_bin"]]) if out["reference"]["live_bin"] else "the live tokens"
    for b in out["bins"]:
        if b["name"] not in (LADDER_FROM, "seen_1", "seen_2-3") or not b["n"]:
            continue
        near = math.isfinite(b["scale"]) and b["scale"] < spectrum.JOIN_LEVEL
        p = b["tests"]["ks_p"]
        alike = math.isfinite(p) and p > spectrum.ALPHA
        how = ("behave like dead ones" if near and alike else "behave like live ones" if not (near or alike)
               else "sit with the dead but move differently" if near else "have left the dead cloud but move like it")
        who = _who(b)
        parts.append(f"{who[0].upper()}{who[1:]}, {b['n']:,} of them, {how}: {_g(b['scale'], '.2f')} of the way "
                     f"from the phantoms to {live} by distance, final speeds {'alike' if alike else 'different'} "
                     f"(KS p = {_g(p, '.2g')}; median {_g(b['final_speed'])} per step against the phantoms' "
                     f"{_g(by['phantom']['final_speed'])}).")
    return " ".join(parts)


def definitions() -> dict[str, dict]:
    """The spectrum's definitions, as Methods prints them: {name: {"series": [], "doc": docstring}}."""
    return fields.documented((spectrum.bin_metrics, spectrum.swarm_alignment, spectrum.frozen_fraction,
                              spectrum.distance_scale, spectrum.join_index, compare.speed_tests))
