"""The under-trained-token detector on matrices whose answer is known by construction."""
import numpy as np
import pytest

from duckling.metrics import detector


def test_similarity_is_the_cosine_to_the_reference_mean():
    W = np.array([[1.0, 0.0], [0.0, 2.0], [3.0, 3.0], [1.0, 1.0]])
    # reference rows 0 and 1: mean (0.5, 1.0); cos with (3, 3) is (1.5 + 3) / (sqrt(1.25) * sqrt(18))
    s = detector.similarity(W, np.array([0, 1]))
    assert s[2] == pytest.approx(4.5 / (np.sqrt(1.25) * np.sqrt(18)))
    assert s[0] == pytest.approx(0.5 / np.sqrt(1.25))


def test_removing_the_first_component_removes_a_shared_offset():
    rng = np.random.default_rng(0)
    offset = np.zeros(16)
    offset[0] = 50.0
    W = rng.normal(size=(400, 16)) + offset * rng.uniform(0.5, 1.5, (400, 1))  # one big shared direction
    ref = np.arange(20)
    W[ref, 1] += 3.0  # the unused rows share a small direction of their own
    raw, pc = detector.similarity(W, ref), detector.similarity(W, ref, remove_pc=True)
    assert raw[20:].min() > 0.9  # the shared offset makes every row look like the reference
    assert pc[ref].mean() > 0.5 > abs(pc[20:].mean())  # without it, only the unused rows do


def test_scores_by_hand():
    scores = np.array([0.9, 0.8, 0.7, 0.1, 0.8])
    positive = np.array([True, False, True, False, False])
    # pairs (pos, neg): 0.9 beats all 3; 0.7 beats only 0.1: (3 + 1) / 6
    assert detector.auc(scores, positive) == pytest.approx(4 / 6)
    assert detector.auc(np.array([1.0, 1.0]), np.array([True, False])) == 0.5  # a tie counts half
    # k = 2: the top two are 0.9 (positive) and the first 0.8 (negative)
    assert detector.precision_at_k(scores, positive) == 0.5
    assert detector.auc(-scores, positive) == pytest.approx(2 / 6)  # the flipped detector


def test_a_detector_that_knows_finds_every_dead_token():
    rng = np.random.default_rng(1)
    d, rows, live = 32, 1000, 800
    W = rng.normal(size=(rows, d))
    unused = rng.normal(size=d) * 3
    W[live:] = unused + rng.normal(size=(rows - live, d)) * 0.1  # phantom rows
    counts = rng.integers(1, 500, live)
    counts[:100] = 0
    W[:100] = unused + rng.normal(size=(100, d)) * 0.1  # dead live tokens sit with them
    got = detector.score(W, np.arange(live, rows), np.arange(live), counts)
    assert got["k"] == 100
    assert got["raw"]["auc"] == 1.0 and got["raw"]["precision_at_k"] == 1.0
    assert got["raw"]["spearman_count"] < -0.25  # the top eighth has the lowest counts, the rest no order
    W[:100] = rng.normal(size=(100, d))  # dead tokens like any other: the detector is at chance
    assert abs(detector.score(W, np.arange(live, rows), np.arange(live), counts)["raw"]["auc"] - 0.5) < 0.1


def test_the_record_scores_the_detector_over_the_movie(tmp_path):
    """A movie in which the dead live tokens join the phantom rows: found at the end, not at the start."""
    import torch

    from duckling import movie
    from duckling.analyze import stage

    rng = np.random.default_rng(2)
    rows, live, d, sep = 300, 200, 16, 199
    start = rng.normal(size=(rows, d)).astype(np.float32)
    target = rng.normal(size=d).astype(np.float32) * 2
    counts = rng.integers(1, 50, live)
    counts[:50] = 0
    joins = np.r_[np.arange(50), np.arange(live, rows)]  # dead live ids and the phantom rows

    def frame(t):
        w = start.copy()
        w[joins] += (t / 10) * (target - start[joins]) * 0.95
        return t, torch.from_numpy(w)

    mv = movie.write_movie(tmp_path, (frame(t) for t in range(11)), shard_frames=4)
    got = stage.detector_over_time(mv, np.arange(live, rows), counts, sep, 4)
    assert got["steps"][-1] == 10 and got["k"] == 50 and got["base_rate"] == 50 / 199
    assert got["raw"]["auc"][-1] == 1.0 and got["raw"]["precision_at_k"][-1] == 1.0
    assert got["raw"]["auc"][0] < got["raw"]["auc"][-1]
