"""An under-trained-token detector scored against the truth Duckling knows.

Land and Bartolo (2024, "Fishing for Magikarp") find under-trained tokens of a trained model from
its unembedding matrix alone: rows that point where the known unused rows point are suspects.
Duckling knows the answer: the phantom rows are the known unused tokens, and the train counts say
which live tokens are dead (count 0) or rare. So the indicators can be scored:

    similarity_i     = cos(w_i, r),    r = mean of the reference rows w_j (j phantom)
    similarity_pc_i  = cos(w'_i, r'),  w' = w with the first principal component of all rows
                                       (about their mean) projected out; r' the mean of the w'_j

and, for the live tokens (the separator aside), with the natural dead as positives:

    auc              = P(similarity of a dead token > that of a seen one), ties counting 1/2
    precision_at_k   = |top-k by similarity  and  dead| / k,  k = the number of dead tokens
    spearman         = rank correlation of similarity with train count (negative: rarer, more alike)
"""
from __future__ import annotations

import numpy as np

from duckling.errors import DucklingError


def similarity(W: np.ndarray, reference: np.ndarray, remove_pc: bool = False) -> np.ndarray:
    """cos(w_i, r) for every row of W, r the mean of the rows `reference` (see the module)."""
    W = np.asarray(W, dtype=np.float64)
    if len(reference) == 0:
        raise DucklingError("detector: the reference set (known unused rows) is empty")
    if remove_pc:
        c = W - W.mean(0)
        v = np.linalg.svd(c, full_matrices=False)[2][0]  # the first principal axis
        W = W - np.outer(W @ v, v)
    r = W[reference].mean(0)
    norms = np.linalg.norm(W, axis=1) * np.linalg.norm(r)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(norms > 0, W @ r / norms, 0.0)


def auc(scores: np.ndarray, positive: np.ndarray) -> float:
    """P(score of a positive > score of a negative), ties 1/2 (the Mann-Whitney U / (n_p n_n))."""
    from scipy.stats import rankdata

    pos = np.asarray(positive, dtype=bool)
    n_p, n_n = int(pos.sum()), int((~pos).sum())
    if n_p == 0 or n_n == 0:
        return float("nan")
    ranks = rankdata(scores)
    return float((ranks[pos].sum() - n_p * (n_p + 1) / 2) / (n_p * n_n))


def precision_at_k(scores: np.ndarray, positive: np.ndarray) -> float:
    """Of the k highest scores, k = the number of positives, the fraction that are positive."""
    pos = np.asarray(positive, dtype=bool)
    k = int(pos.sum())
    if k == 0:
        return float("nan")
    top = np.argsort(-np.asarray(scores), kind="stable")[:k]
    return float(pos[top].mean())


def spearman(scores: np.ndarray, counts: np.ndarray) -> float:
    from scipy.stats import spearmanr

    if np.ptp(scores) == 0 or np.ptp(counts) == 0:
        return float("nan")
    return float(spearmanr(scores, counts).statistic)


def score(W: np.ndarray, phantom: np.ndarray, live: np.ndarray, counts: np.ndarray) -> dict:
    """Both indicators scored on the live tokens `live` (their train counts `counts`): dead = count 0."""
    dead = np.asarray(counts) == 0
    out = {}
    for name, pc in (("raw", False), ("pc_removed", True)):
        s = similarity(W, phantom, remove_pc=pc)[live]
        out[name] = {"auc": auc(s, dead), "precision_at_k": precision_at_k(s, dead),
                     "spearman_count": spearman(s, counts)}
    out["k"] = int(dead.sum())
    return out
