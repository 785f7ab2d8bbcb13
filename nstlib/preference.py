"""A human preference study: people vote between two stylisations of the same content x style pair,
and the Bradley-Terry model turns the votes into one score per method (notebook 10).

No metric of nstlib.metrics is "the" quality of a stylisation; what evaluations fall back on is
people's judgement in a user study. This module runs such a study in a notebook and analyses it:

    results = results_from_compare("runs/compare")              # {pair id: {method: image}}
    w = PreferenceWidget(results, "votes/ada.json", voter="ada")
    display(w.widget)                                            # left / can't tell / right
    votes = merge_votes(["votes/ada.json", "votes/bo.json"])     # a class pools its files
    print(ranking_table(votes))                                  # Bradley-Terry scores, 95% intervals
    rank_agreement(gram_means, bradley_terry(votes), better="lower")   # does a metric agree with people?
    vote_agreement(votes, gram_values, better="lower")           # ... vote by vote, on the same pair

The vote record. A JSON file {"votes": [...]}, one vote per line, each

    {"pair": "tubingen|the_scream", "a": "adain", "b": "gatys", "winner": "a", "voter": "ada",
     "time": "2026-05-01T10:15:00+00:00"}

"pair" names the content x style pair (`pair_id`: "content|style"), "a" is the method shown on the
LEFT and "b" the one on the right (so the record keeps the position, and `position_bias` can check
whether people prefer the left image), "winner" is "a", "b" or "tie" ("can't tell"), "time" an ISO
8601 timestamp. Every vote is written at once, atomically (nstlib.files.atomic_write): a crash or
a closed tab loses at most the click in progress, never the file. One file per voter; `merge_votes`
pools them and drops identical records (the same file copied twice).

The model (Bradley & Terry 1952; Zermelo 1929). Method i has a strength p_i > 0 and

    P(i beats j) = p_i / (p_i + p_j) = 1 / (1 + exp(s_j - s_i)),       s_i = log p_i  (the score)

With w_ij the number of times i beat j, n_ij = w_ij + w_ji and W_i = sum_j w_ij, the log-likelihood is

    l(p) = sum_{i != j} w_ij [log p_i - log(p_i + p_j)]

Only differences of scores are identified; the scores are normalised to mean 0. They are fitted by
the MM algorithm (Hunter 2004, "MM algorithms for generalized Bradley-Terry models", Ann. Statist.
32(1); Zermelo's iteration), which increases l at every step:

    p_i <- W_i / sum_{j != i} n_ij / (p_i + p_j)         for all i at once, then divide by the geometric mean

Design decisions, stated once:

* Ties are recorded but skipped by the fit (ties="skip", the default): the Bradley-Terry model has no
  tie, and a "can't tell" says nothing about which of the two is better. ties="half" counts a tie as
  half a win for each side instead (the chess convention), which pulls tied methods together.
* The prior (PRIOR = 1): every pair of methods gets `prior` virtual games, half won by each side
  (w_ij += prior/2 for all i != j). Each pair's virtual games multiply the likelihood by
  pi^(prior/2) (1 - pi)^(prior/2), pi = P(i beats j): the kernel of a symmetric Beta, largest at
  pi = 1/2. So a method that never lost (or never won, or was never compared) still has a finite
  score, pulled towards the others', and the fit is the same MM on the smoothed counts. With
  prior=0 the plain maximum-likelihood scores exist only if every method can be reached from every
  other through a chain of wins (Ford 1957; Hunter 2004, Assumption 1); otherwise a ValueError
  says which method never lost or never won.
* Confidence intervals come from the Fisher information (a Laplace approximation), not a bootstrap:
  they are deterministic, need no seed, and are instant, so a notebook can recompute them after every vote. For the
  scores s the information is the weighted graph Laplacian

      I = sum_{i<j} n_ij pi_ij (1 - pi_ij) (e_i - e_j)(e_i - e_j)^T      (observed = expected here)

  with the virtual games included in n_ij; the covariance of the mean-0 scores is its pseudo-inverse
  C = I^+ and the interval is s_i -+ z se_i, se_i = sqrt(C_ii) (z = 1.96 for 95%). Each interval is
  about one score against the mean; whether a beats b is about s_a - s_b, whose variance is
  C_aa + C_bb - 2 C_ab. The intervals treat votes as independent: many votes from one voter are
  correlated, so with few voters they are too narrow (a bootstrap over voters would widen them).
"""
from __future__ import annotations

import itertools
import json
import math
import os
import random
from datetime import datetime, timezone
from pathlib import Path
from statistics import NormalDist
from typing import Mapping, Sequence, Union

import numpy as np

from .files import atomic_write

PRIOR = 1.0  # virtual games per pair of methods, half won by each (see the module docstring)
LEVEL = 0.95  # confidence level of the intervals
TIES = ("skip", "half")  # what the fit does with a tie
WINNERS = ("a", "b", "tie")  # a: the left image won, b: the right one, tie: "can't tell"
FIELDS = ("pair", "a", "b", "winner", "voter", "time")
TOL, MAX_ITER = 1e-10, 100_000  # MM stops when no score moves by more than TOL

Vote = dict  # {"pair", "a", "b", "winner", "voter", "time"}, see the module docstring


# ----------------------------------------------------------------------------- the vote record

def pair_id(content: str, style: str) -> str:
    """The id of a content x style pair in a vote record: "content|style"."""
    return f"{content}|{style}"


def make_vote(pair: str, a: str, b: str, winner: str, voter: str, time: str | None = None) -> Vote:
    """One checked vote record; `a` was shown on the left, `b` on the right; `time` defaults to now (UTC)."""
    if time is None:
        time = datetime.now(timezone.utc).isoformat(timespec="seconds")
    vote = {"pair": pair, "a": a, "b": b, "winner": winner, "voter": voter, "time": time}
    _check_vote(vote, "the vote")
    return vote


def _check_vote(vote, where: str) -> None:
    """A ValueError naming `where` and the problem, unless `vote` is a well-formed record."""
    if not isinstance(vote, Mapping):
        raise ValueError(f"{where} is not a JSON object but {type(vote).__name__}")
    missing = [k for k in FIELDS if k not in vote]
    unknown = [k for k in vote if k not in FIELDS]
    if missing or unknown:
        problem = f"no field {', '.join(missing)}" if missing else f"unknown field {', '.join(map(repr, unknown))}"
        raise ValueError(f"{where}: {problem} (a vote has {', '.join(FIELDS)})")
    for k in ("pair", "a", "b", "voter", "time"):
        if not isinstance(vote[k], str) or not vote[k].strip():
            raise ValueError(f"{where}: {k} must be a non-empty string, got {vote[k]!r}")
    if vote["a"] == vote["b"]:
        raise ValueError(f"{where}: a and b are the same method {vote['a']!r}")
    if vote["winner"] not in WINNERS:
        raise ValueError(f"{where}: winner must be 'a' (left), 'b' (right) or 'tie', got {vote['winner']!r}")
    try:
        datetime.fromisoformat(vote["time"])
    except ValueError:
        raise ValueError(f"{where}: time {vote['time']!r} is not an ISO 8601 timestamp") from None


def load_votes(path: str | os.PathLike) -> list[Vote]:
    """The votes of a vote file, every record checked; a one-line error for a missing file, a file
    that is not JSON or not a vote file, or a bad record (its number, from 1)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no vote file {path}")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError:
        raise ValueError(f"{path} is not a vote file (not UTF-8 text)") from None
    except json.JSONDecodeError as e:
        raise ValueError(f"{path} is not a vote file (broken JSON at line {e.lineno}, "
                         f"column {e.colno}: {e.msg})") from None
    if not isinstance(data, dict) or not isinstance(data.get("votes"), list):
        raise ValueError(f'{path} is not a vote file (expected {{"votes": [...]}})')
    for i, vote in enumerate(data["votes"], 1):
        _check_vote(vote, f"{path}, vote {i}")
    return data["votes"]


def save_votes(path: str | os.PathLike, votes: Sequence[Vote]) -> Path:
    """Write `votes` (checked) to `path` atomically, one vote per line."""
    for i, vote in enumerate(votes, 1):
        _check_vote(vote, f"vote {i}")
    lines = ",\n".join("    " + json.dumps({k: v[k] for k in FIELDS}, ensure_ascii=False) for v in votes)
    text = '{\n  "votes": [\n' + lines + "\n  ]\n}\n" if votes else '{\n  "votes": []\n}\n'
    with atomic_write(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return Path(path)


def append_vote(path: str | os.PathLike, vote: Vote) -> int:
    """Add one vote to the file (made if missing) and return how many it now holds. The whole file
    is rewritten through atomic_write: a crash leaves the old file or the new one, never half. A
    file that is not a vote file is an error, never overwritten (it may hold someone's votes)."""
    _check_vote(vote, "the vote")
    votes = load_votes(path) if Path(path).exists() else []
    votes.append(dict(vote))
    save_votes(path, votes)
    return len(votes)


def merge_votes(paths: Sequence[str | os.PathLike], out: str | os.PathLike | None = None) -> list[Vote]:
    """The votes of several files, in order, identical records kept once (the same vote file handed
    in twice counts once; two real votes differ in pair, methods, voter or time, to the second).
    Written to `out` if given."""
    seen, merged = set(), []
    for path in paths:
        for vote in load_votes(path):
            key = json.dumps(vote, sort_keys=True)
            if key not in seen:
                seen.add(key)
                merged.append(vote)
    if out is not None:
        save_votes(out, merged)
    return merged


def position_bias(votes: Sequence[Vote]) -> dict:
    """Do voters prefer the left image? Counts of decisive votes won by the left ("a") and right
    ("b") image, ties, the left's share, and the two-sided binomial test of share = 1/2
    (scipy.stats.binomtest; nan without decisive votes)."""
    from scipy.stats import binomtest

    left = sum(v["winner"] == "a" for v in votes)
    right = sum(v["winner"] == "b" for v in votes)
    decisive = left + right
    return {"left": left, "right": right, "ties": len(votes) - decisive,
            "left_share": left / decisive if decisive else math.nan,
            "p_value": float(binomtest(left, decisive, 0.5).pvalue) if decisive else math.nan}


# ----------------------------------------------------------------------------- Bradley-Terry

Data = Union[Sequence[Vote], np.ndarray, Sequence[Sequence[float]]]


def win_matrix(votes: Sequence[Vote], methods: Sequence[str] | None = None,
               ties: str = "skip") -> tuple[list[str], np.ndarray]:
    """(methods, w): w[i, j] = how many times method i beat method j (float64, (n, n)), pooled over
    every pair and voter. `methods` fixes the order (default: sorted names); a vote about another
    method is an error. ties="skip" ignores ties, "half" adds 1/2 to w[i, j] and to w[j, i]."""
    if ties not in TIES:
        raise ValueError(f"ties must be one of {TIES}, got {ties!r}")
    for i, vote in enumerate(votes, 1):
        _check_vote(vote, f"vote {i}")
    names = sorted({m for v in votes for m in (v["a"], v["b"])}) if methods is None else list(methods)
    if len(set(names)) != len(names):
        raise ValueError(f"methods must be distinct, got {names}")
    index = {m: i for i, m in enumerate(names)}
    unknown = sorted({m for v in votes for m in (v["a"], v["b"])} - set(index))
    if unknown:
        raise ValueError(f"votes about {', '.join(unknown)}, which is not in methods {names}")
    w = np.zeros((len(names), len(names)))
    for v in votes:
        a, b = index[v["a"]], index[v["b"]]
        if v["winner"] == "a":
            w[a, b] += 1
        elif v["winner"] == "b":
            w[b, a] += 1
        elif ties == "half":
            w[a, b] += 0.5
            w[b, a] += 0.5
    return names, w


def _matrix(data: Data, methods: Sequence | None, ties: str) -> tuple[list, np.ndarray]:
    """Votes or a win matrix as (names, w); a matrix's names are `methods` or 0 .. n-1."""
    if isinstance(data, (list, tuple)) and all(isinstance(v, Mapping) for v in data):
        names, w = win_matrix(data, methods, ties)
    else:
        w = np.asarray(data, dtype=np.float64)
        if w.ndim != 2 or w.shape[0] != w.shape[1]:
            raise ValueError(f"a win matrix must be square (n, n), got shape {w.shape}")
        if not np.isfinite(w).all() or (w < 0).any():
            raise ValueError("a win matrix holds counts: finite and >= 0")
        if np.diag(w).any():
            raise ValueError("a win matrix's diagonal must be 0 (a method does not play itself)")
        names = list(range(len(w))) if methods is None else list(methods)
        if len(names) != len(w):
            raise ValueError(f"{len(names)} method names for a {len(w)} x {len(w)} win matrix")
    if len(names) < 2:
        raise ValueError(f"a ranking needs at least 2 methods, got {names}")
    return names, w


def _smoothed(w: np.ndarray, prior: float) -> np.ndarray:
    """w + prior/2 virtual wins each way for every pair of methods (the prior)."""
    if not (prior >= 0 and math.isfinite(prior)):
        raise ValueError(f"prior must be a number >= 0, got {prior}")
    return w + prior / 2 * (1 - np.eye(len(w)))


def _check_estimable(w: np.ndarray, names: list) -> None:
    """With no prior the maximum-likelihood scores are finite only if every method reaches every
    other through a chain of wins (the win graph is strongly connected; Hunter 2004, Assumption 1)."""
    reach = (w > 0) | np.eye(len(w), dtype=bool)
    for _ in range(max(1, math.ceil(math.log2(len(w))))):  # paths of length 1, 2, 4, ... >= n - 1
        reach = reach | ((reach.astype(np.int64) @ reach.astype(np.int64)) > 0)
    if reach.all():
        return
    never_lost = [str(names[i]) for i in range(len(w)) if not w[:, i].any()]
    never_won = [str(names[i]) for i in range(len(w)) if not w[i].any()]
    what = "; ".join(filter(None, [never_lost and f"{', '.join(never_lost)} never lost (score +inf)",
                                   never_won and f"{', '.join(never_won)} never won (score -inf)"]))
    raise ValueError(f"with prior=0 the maximum-likelihood scores do not exist: "
                     f"{what or 'some methods were never beaten by the others'}; use prior > 0")


def mm_step(w: np.ndarray, p: np.ndarray) -> np.ndarray:
    """One MM update of the strengths p (n,) on the win matrix w (n, n), w_ij = wins of i over j
    (zero diagonal), then divided by their geometric mean (only ratios p_i / p_j are identified):

        p_i <- W_i / sum_{j != i} n_ij / (p_i + p_j),   W_i = sum_j w_ij,  n_ij = w_ij + w_ji

    (Hunter 2004, Eq. 3). Notebook 10's graded exercise writes it."""
    games = w + w.T  # n_ij, zero diagonal
    p_new = w.sum(axis=1) / (games / (p[:, None] + p[None, :])).sum(axis=1)
    return p_new / np.exp(np.log(p_new).mean())


def _fit(w: np.ndarray, tol: float, max_iter: int) -> np.ndarray:
    """Hunter's MM (`mm_step`) on the (smoothed) win matrix w (n, n): the scores s = log p, mean 0."""
    s = np.zeros(len(w))
    for _ in range(max_iter):
        s_new = np.log(mm_step(w, np.exp(s)))
        s_new -= s_new.mean()  # exactly 0 already, up to rounding
        if np.abs(s_new - s).max() < tol:
            return s_new
        s = s_new
    raise RuntimeError(f"Bradley-Terry MM did not converge in {max_iter} iterations (tol {tol}); "
                       "the votes are nearly separable: use a larger prior")


def _scores(data: Data, methods, prior: float, ties: str, tol: float, max_iter: int):
    names, w = _matrix(data, methods, ties)
    if prior == 0:
        _check_estimable(w, names)
    ws = _smoothed(w, prior)
    return names, w, ws, _fit(ws, tol, max_iter)


def bradley_terry(data: Data, methods: Sequence | None = None, *, prior: float = PRIOR, ties: str = "skip",
                  tol: float = TOL, max_iter: int = MAX_ITER) -> dict:
    """The Bradley-Terry scores s_i = log p_i, mean 0, fitted by MM (module docstring) with `prior`
    virtual games per pair. `data`: a list of votes, or a win matrix w (n, n) with w[i, j] = wins of
    i over j. Returns {method: score}, in `methods` order (votes: sorted names; a matrix: 0 .. n-1
    unless `methods` names them). P(i beats j) = 1 / (1 + exp(s_j - s_i)): `win_probability`."""
    names, _, _, s = _scores(data, methods, prior, ties, tol, max_iter)
    return {m: float(v) for m, v in zip(names, s)}


def _covariance(ws: np.ndarray, s: np.ndarray) -> np.ndarray:
    """The pseudo-inverse of the Fisher information at the scores s, virtual games included."""
    pi = 1 / (1 + np.exp(s[None, :] - s[:, None]))  # pi[i, j] = P(i beats j)
    a = (ws + ws.T) * pi * pi.T  # n_ij pi_ij pi_ji: the edge weights, zero diagonal
    info = np.diag(a.sum(axis=1)) - a  # the graph Laplacian; I 1 = 0: a common shift is not identified
    return np.linalg.pinv(info, hermitian=True)  # the covariance of the mean-0 scores (1 is its null space)


def fisher_covariance(data: Data, methods: Sequence | None = None, *, prior: float = PRIOR, ties: str = "skip",
                      tol: float = TOL, max_iter: int = MAX_ITER) -> tuple[list, np.ndarray]:
    """(methods, C): the covariance (n, n) of the mean-0 scores, the pseudo-inverse of the Fisher
    information I = sum_{i<j} n_ij pi_ij (1 - pi_ij) (e_i - e_j)(e_i - e_j)^T at the fit (virtual
    games included), pi_ij = P(i beats j)."""
    names, _, ws, s = _scores(data, methods, prior, ties, tol, max_iter)
    return names, _covariance(ws, s)


def confidence_intervals(data: Data, methods: Sequence | None = None, *, level: float = LEVEL,
                         prior: float = PRIOR, ties: str = "skip") -> dict:
    """{method: (low, high)}: s_i -+ z se_i, se_i = sqrt(C_ii) from `fisher_covariance`, z the normal
    quantile of (1 + level) / 2 (1.96 for 95%)."""
    if not 0 < level < 1:
        raise ValueError(f"level must lie in (0, 1), got {level}")
    names, _, ws, s = _scores(data, methods, prior, ties, TOL, MAX_ITER)
    z = NormalDist().inv_cdf((1 + level) / 2)
    se = np.sqrt(np.clip(np.diag(_covariance(ws, s)), 0, None))
    return {m: (float(v - z * e), float(v + z * e)) for m, v, e in zip(names, s, se)}


def win_probability(scores: Mapping, i, j) -> float:
    """P(i beats j) = p_i / (p_i + p_j) = 1 / (1 + exp(s_j - s_i)) under the fitted scores."""
    return 1 / (1 + math.exp(scores[j] - scores[i]))


def ranking(votes: Sequence[Vote], methods: Sequence[str] | None = None, *, level: float = LEVEL,
            prior: float = PRIOR, ties: str = "skip") -> list[dict]:
    """One row per method, best first: rank, method, score, low, high (the interval), and its raw
    wins, losses and ties over all pairs and voters."""
    scores = bradley_terry(votes, methods, prior=prior, ties=ties)
    ci = confidence_intervals(votes, methods, level=level, prior=prior, ties=ties)
    rows = []
    for m in scores:
        mine = [v for v in votes if m in (v["a"], v["b"])]
        won = sum((v["winner"] == "a") == (v["a"] == m) for v in mine if v["winner"] != "tie")
        tied = sum(v["winner"] == "tie" for v in mine)
        rows.append({"method": m, "score": scores[m], "low": ci[m][0], "high": ci[m][1],
                     "wins": won, "losses": len(mine) - won - tied, "ties": tied})
    rows.sort(key=lambda r: -r["score"])
    return [{"rank": k, **r} for k, r in enumerate(rows, 1)]


def ranking_table(votes: Sequence[Vote], methods: Sequence[str] | None = None, *, level: float = LEVEL,
                  prior: float = PRIOR, ties: str = "skip") -> str:
    """`ranking` as printable text, with what the columns mean below it."""
    rows = ranking(votes, methods, level=level, prior=prior, ties=ties)
    width = max(6, *(len(r["method"]) for r in rows))
    interval = f"{level:.0%} interval"
    header = f"{'rank':>4}  {'method':<{width}}  {'score':>6}  {interval:>16}  {'wins':>5} {'losses':>6} {'ties':>5}"
    lines = [header, "-" * len(header)]
    for r in rows:
        lines.append(f"{r['rank']:>4}  {r['method']:<{width}}  {r['score']:>6.2f}  "
                     f"[{r['low']:>6.2f}, {r['high']:>6.2f}]  {r['wins']:>5} {r['losses']:>6} {r['ties']:>5}")
    voters = len({v["voter"] for v in votes})
    lines.append(f"{len(votes)} votes by {voters} voter(s); score: Bradley-Terry log-strength (mean 0), "
                 "P(i beats j) = 1 / (1 + exp(s_j - s_i));")
    lines.append(f"interval: Fisher information; prior: {prior:g} virtual game(s) per pair of methods; "
                 f"ties {'skipped' if ties == 'skip' else 'count half a win each'}")
    return "\n".join(lines)


def _sign(better: str) -> float:
    """+1 for a measure where higher is better, -1 for a distance (lower is better)."""
    if better not in ("higher", "lower"):
        raise ValueError(f"better must be 'higher' or 'lower' (for a distance), got {better!r}")
    return 1.0 if better == "higher" else -1.0


def rank_agreement(metric_scores: Mapping[str, float], bt_scores: Mapping[str, float], *, better: str) -> dict:
    """How well a metric's per-method values order the methods as people did: Spearman's rho and
    Kendall's tau-b (scipy.stats) between the metric and the Bradley-Terry scores, over the methods
    both have (at least 3).

    Sign convention: `better` ("higher" or "lower", nstlib.metrics.METRICS' third column) is required;
    for a distance (lower is better) the metric is negated first, so +1 always means the metric ranks
    the methods exactly as people did and -1 exactly backwards. nan when the metric is constant.
    'kendall_p' is Kendall's exact two-sided p-value; with 4 methods even a perfect agreement has
    p = 1/12, so read rho and tau as descriptions, not tests."""
    from scipy.stats import kendalltau, spearmanr

    sign = _sign(better)
    common = [m for m in bt_scores if m in metric_scores]
    if len(common) < 3:
        raise ValueError(f"a rank correlation needs at least 3 methods in both, got {common}")
    x = np.array([sign * float(metric_scores[m]) for m in common])
    y = np.array([float(bt_scores[m]) for m in common])
    if np.ptp(x) == 0 or np.ptp(y) == 0:  # no ranking to compare (scipy would warn and give nan)
        return {"spearman": math.nan, "kendall": math.nan, "kendall_p": math.nan, "n": len(common), "methods": common}
    tau = kendalltau(x, y)
    return {"spearman": float(spearmanr(x, y).statistic), "kendall": float(tau.statistic),
            "kendall_p": float(tau.pvalue), "n": len(common), "methods": common}


def vote_agreement(votes: Sequence[Vote], values: Mapping[tuple[str, str], float], *, better: str) -> dict:
    """How often a metric picks the image the voter picked: the fraction of decided votes in which the
    winner has the better metric value on that pair (the "2AFC score" of image-quality studies),

        agreement = #{votes v : winner(v) is better than loser(v) by the metric on pair(v)} / n

    over the n votes that are not ties, whose two images both have a value, and whose values differ
    (a metric that cannot tell two images apart has no opinion). 0.5 is a coin; 1 always agrees.
    values: {(pair id, method): metric value}; better: "higher" or "lower" as in rank_agreement.
    Unlike rank_agreement on per-method means, each vote compares two results of the same pair, so
    a metric that varies more between paintings than between methods (the Gram distance does) is not
    confounded by which pairs each method could do. The votes of one voter are not independent:
    read the rate as a description, not a test."""
    sign = _sign(better)
    agree = n = 0
    for v in votes:
        if v["winner"] == "tie":
            continue
        a, b = values.get((v["pair"], v["a"])), values.get((v["pair"], v["b"]))
        if a is None or b is None or a == b:
            continue
        winner_better = sign * (float(a) - float(b)) > 0
        agree += winner_better == (v["winner"] == "a")
        n += 1
    return {"agreement": agree / n if n else math.nan, "agree": agree, "n": n}


# ----------------------------------------------------------------------------- the widget

def results_from_compare(out_dir: str | os.PathLike) -> dict[str, dict[str, Path]]:
    """{pair id: {method: PNG path}} from the images a comparison wrote (nstlib.compare: images/
    <method>__<content>__<style>.png), pairs with at least two methods only."""
    from .compare import IMAGES_DIR

    folder = Path(out_dir) / IMAGES_DIR
    if not folder.is_dir():
        raise FileNotFoundError(f"no comparison images in {folder}; run `python -m nstlib compare` first")
    results: dict[str, dict[str, Path]] = {}
    for path in sorted(folder.glob("*.png")):
        parts = path.stem.split("__")
        if len(parts) == 3:
            results.setdefault(pair_id(parts[1], parts[2]), {})[parts[0]] = path
    return {p: r for p, r in results.items() if len(r) >= 2}


def _png(image) -> tuple[bytes, str]:
    """An image as (bytes, format) for ipywidgets.Image: a file's own bytes, or a (1, 3, H, W) or
    (3, H, W) tensor in [0, 1] encoded as PNG."""
    import io

    from .images import to_pil

    if isinstance(image, (str, os.PathLike)):
        path = Path(image)
        return path.read_bytes(), "jpeg" if path.suffix.lower() in (".jpg", ".jpeg") else path.suffix.lower()[1:]
    buf = io.BytesIO()
    to_pil(image).save(buf, format="PNG")
    return buf.getvalue(), "png"


def _check_image(image, where: str) -> None:
    import torch

    if isinstance(image, (str, os.PathLike)):
        if not Path(image).is_file():
            raise FileNotFoundError(f"{where}: no image file {image}")
    elif not (torch.is_tensor(image) and image.dim() in (3, 4) and image.shape[-3] == 3
              and (image.dim() == 3 or image.shape[0] == 1)):
        raise ValueError(f"{where}: give a PNG path or a tensor (1, 3, H, W) in [0, 1], got "
                         f"{tuple(image.shape) if torch.is_tensor(image) else type(image).__name__}")


class PreferenceWidget:
    """A blind two-image vote: the results of two methods for the same content x style pair side by
    side, in random left/right order, and the buttons "left", "can't tell" and "right".

        w = PreferenceWidget(results, "votes/ada.json", voter="ada")   # results: {pair id: {method: image}}
        display(w.widget)

    Each unordered pair of methods of each content x style pair is shown once, in a random order
    (`seed` fixes it). A click writes the vote at once (`append_vote`, atomic) and shows the next;
    "k of n pairs" counts them. Reopening the same file with the same voter resumes: pairs already
    judged by that voter are not shown again. Images are PNG paths or tensors (1, 3, H, W) in
    [0, 1]; `references` ({pair id: [content, style]}) shows the inputs small above the pair. The
    method names are never shown. Works with ipywidgets 7.7 (Colab) and 8.
    """

    def __init__(self, results: Mapping[str, Mapping[str, object]], path: str | os.PathLike, voter: str, *,
                 references: Mapping[str, Sequence] | None = None, seed: int | None = None, width: int = 320):
        import ipywidgets as widgets

        if not isinstance(voter, str) or not voter.strip():
            raise ValueError("voter must be a non-empty name (it keeps each person's votes apart)")
        for pair, images in results.items():
            if len(images) < 2:
                raise ValueError(f"pair {pair!r} has {len(images)} result(s); a vote needs at least 2 methods")
            for method, image in images.items():
                _check_image(image, f"{pair} / {method}")
        for pair, images in (references or {}).items():
            for k, image in enumerate(images):
                _check_image(image, f"{pair} / reference {k}")
        self.results, self.path, self.voter = results, Path(path), voter.strip()
        self.references = references or {}
        self.width = width
        done = {(v["pair"], frozenset((v["a"], v["b"]))) for v in (load_votes(path) if self.path.exists() else [])
                if v["voter"] == self.voter}  # a corrupt file stops here, before any vote is taken
        rng = random.Random(seed)
        plan = []
        for pair, images in results.items():
            for a, b in itertools.combinations(list(images), 2):
                plan.append((pair, *((b, a) if rng.random() < 0.5 else (a, b))))  # (pair, left, right)
        rng.shuffle(plan)
        self.total = len(plan)
        self.queue = [c for c in plan if (c[0], frozenset(c[1:])) not in done]
        self.judged = self.total - len(self.queue)

        self.title = widgets.HTML()
        self.inputs = widgets.HBox()
        self.left_image = widgets.Image(width=str(width))
        self.right_image = widgets.Image(width=str(width))
        self.left_button = widgets.Button(description="left", button_style="info")
        self.tie_button = widgets.Button(description="can't tell")
        self.right_button = widgets.Button(description="right", button_style="info")
        self.left_button.on_click(lambda _: self.vote("a"))
        self.tie_button.on_click(lambda _: self.vote("tie"))
        self.right_button.on_click(lambda _: self.vote("b"))
        self.progress = widgets.Label()
        self.widget = widgets.VBox([self.title, self.inputs, widgets.HBox([self.left_image, self.right_image]),
                                    widgets.HBox([self.left_button, self.tie_button, self.right_button]),
                                    self.progress])
        self._show()

    @property
    def current(self) -> tuple[str, str, str] | None:
        """(pair id, left method, right method) on screen, None when all are judged."""
        return self.queue[0] if self.queue else None

    def vote(self, winner: str) -> None:
        """Record `winner` ('a': left, 'b': right, 'tie') for the pair on screen and show the next;
        what the buttons call. A failed write is shown and the pair stays, so no vote is lost."""
        if self.current is None:
            return
        pair, left, right = self.current
        try:
            append_vote(self.path, make_vote(pair, left, right, winner, self.voter))
        except (OSError, ValueError) as e:
            self.progress.value = f"not saved: {e}"
            return
        self.queue.pop(0)
        self.judged += 1
        self._show()

    def _show(self) -> None:
        import ipywidgets as widgets

        self.progress.value = f"{self.judged} of {self.total} pairs judged; votes in {self.path}"
        if self.current is None:
            self.title.value = "<b>All pairs judged: thank you.</b>"
            self.inputs.children = ()
            for w in (self.left_image, self.right_image):
                w.layout.display = "none"
            for b in (self.left_button, self.tie_button, self.right_button):
                b.disabled = True
            return
        pair, left, right = self.current
        content, _, style = pair.partition("|")
        self.title.value = (f"<b>Which stylisation is better?</b> {content}"
                            + (f" in the style of {style}" if style else "")
                            + " (the order is random; choose \"can't tell\" if neither is)")
        self.inputs.children = tuple(widgets.Image(value=v, format=f, width=str(self.width // 3))
                                     for v, f in map(_png, self.references.get(pair, ())))
        self.left_image.value, self.left_image.format = _png(self.results[pair][left])
        self.right_image.value, self.right_image.format = _png(self.results[pair][right])
