"""Solutions to the exercises of notebook 10 (measuring quality); tests/test_solutions.py checks them."""
import torch


# ----------------------------------------------------------------------------- the graded exercise
# check("bradley_terry_step", bradley_terry_step)

def bradley_terry_step(wins: torch.Tensor, strengths: torch.Tensor) -> torch.Tensor:
    """One MM update of the Bradley-Terry strengths (Hunter 2004): with W_i = sum_j wins[i, j] (the
    wins of i) and n_ij = wins[i, j] + wins[j, i] (the games between i and j),
    p_i <- W_i / sum_{j != i} n_ij / (p_i + p_j), then divided by the geometric mean so that the
    scores log p have mean 0. wins: (K, K), zero diagonal; strengths: (K,) positive."""
    games = wins + wins.T  # (K, K), zero diagonal: the j = i term adds nothing
    new = wins.sum(dim=1) / (games / (strengths[:, None] + strengths[None, :])).sum(dim=1)
    return new / torch.exp(torch.log(new).mean())


# ----------------------------------------------------------------------------- more exercises

def pair_bootstrap(votes, n: int = 1000, level: float = 0.95, seed: int = 0) -> dict:
    """Bradley-Terry score intervals that respect how the votes were collected: resample the
    content x style pairs (not single votes) with replacement, refit, and take the percentiles.
    Votes on one pair share its images, so they are not independent; the Fisher intervals of
    nstlib.preference assume they are. Returns {method: (low, high)}; a method missing from a
    resample (all its pairs left out) keeps the resamples that have it."""
    import numpy as np

    from nstlib.preference import bradley_terry

    by_pair = {}
    for v in votes:
        by_pair.setdefault(v["pair"], []).append(v)
    pairs = sorted(by_pair)
    methods = sorted({m for v in votes for m in (v["a"], v["b"])})
    rng = np.random.default_rng(seed)
    draws = {m: [] for m in methods}
    for _ in range(n):
        sample = [v for i in rng.integers(0, len(pairs), len(pairs)) for v in by_pair[pairs[i]]]
        scores = bradley_terry(sample)  # the default prior keeps every score finite
        for m, s in scores.items():
            draws[m].append(s)
    tail = (1 - level) / 2 * 100
    return {m: (float(np.percentile(d, tail)), float(np.percentile(d, 100 - tail))) for m, d in draws.items() if d}
