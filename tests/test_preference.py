"""nstlib.preference: the vote file (round trip, atomic append, bad files, merging), the Bradley-Terry
fit (hand-computed cases, an independent maximiser, choix where it is installed, symmetry, the prior,
ties), its Fisher intervals, rank agreement, and the vote widget driven through its buttons."""
import json
import math
import os
import re

import numpy as np
import pytest
import torch
from PIL import Image

from nstlib import compare, preference
from nstlib.preference import (PreferenceWidget, append_vote, bradley_terry, confidence_intervals, fisher_covariance,
                               load_votes, make_vote, merge_votes, position_bias, rank_agreement, ranking,
                               ranking_table, results_from_compare, vote_agreement, win_matrix, win_probability)

T0 = "2026-05-01T10:00:00+00:00"


def _votes(spec, pair="tubingen|the_scream", voter="ada"):
    """Votes from (left, right, winner) triples, at distinct times."""
    return [make_vote(pair, a, b, w, voter, time=f"2026-05-01T10:{k // 60:02d}:{k % 60:02d}+00:00")
            for k, (a, b, w) in enumerate(spec)]


def _loglik(s, w):
    """l(s) = sum_{i != j} w_ij [s_i - log(exp(s_i) + exp(s_j))], written out independently of the module."""
    n = len(w)
    return sum(w[i][j] * (s[i] - np.logaddexp(s[i], s[j])) for i in range(n) for j in range(n) if i != j)


def _brute_force(w, prior):
    """Maximise the (smoothed) log-likelihood with scipy's BFGS, s_0 fixed at 0, then centre."""
    from scipy.optimize import minimize

    w = np.asarray(w, float) + prior / 2 * (1 - np.eye(len(w)))
    res = minimize(lambda t: -_loglik(np.concatenate([[0.0], t]), w), np.zeros(len(w) - 1), method="BFGS",
                   options={"gtol": 1e-10})
    s = np.concatenate([[0.0], res.x])
    return s - s.mean()


def _random_wins(true, games, seed):
    rng = np.random.default_rng(seed)
    n = len(true)
    w = np.zeros((n, n))
    for _ in range(games):
        i, j = rng.choice(n, 2, replace=False)
        if rng.random() < 1 / (1 + math.exp(true[j] - true[i])):
            w[i, j] += 1
        else:
            w[j, i] += 1
    return w


# ----------------------------------------------------------------------------- Bradley-Terry by hand

def test_two_methods_a_wins_three_of_four():
    """P(a beats b) = p_a / (p_a + p_b) = 3/4 at the maximum: p_a / p_b = 3, scores -+ log(3) / 2."""
    s = bradley_terry([[0, 3], [1, 0]], ["a", "b"], prior=0)
    assert math.exp(s["a"] - s["b"]) == pytest.approx(3, rel=1e-9)
    assert s["a"] == pytest.approx(math.log(3) / 2, rel=1e-9) and s["a"] + s["b"] == pytest.approx(0, abs=1e-12)
    assert win_probability(s, "a", "b") == pytest.approx(0.75)
    votes = _votes([("a", "b", "a"), ("b", "a", "b"), ("a", "b", "a"), ("a", "b", "b")])  # a: 3 wins, b: 1
    assert bradley_terry(votes, prior=0) == pytest.approx(s, rel=1e-9)


def test_the_prior_adds_half_a_virtual_win_each_way():
    """Two methods, prior c: p_a / p_b = (3 + c/2) / (1 + c/2); a larger prior pulls the scores to 0."""
    for c in (1.0, 2.0, 6.0):
        s = bradley_terry([[0, 3], [1, 0]], prior=c)
        assert math.exp(s[0] - s[1]) == pytest.approx((3 + c / 2) / (1 + c / 2), rel=1e-9)
    sizes = [abs(bradley_terry([[0, 3], [1, 0]], prior=c)[0]) for c in (0, 1, 4, 100)]
    assert sizes == sorted(sizes, reverse=True) and sizes[-1] < 0.02


def test_a_method_that_never_lost_needs_the_prior():
    votes = _votes([("a", "b", "a"), ("a", "c", "a"), ("b", "c", "a"), ("c", "b", "a")])  # a never lost
    with pytest.raises(ValueError, match="a never lost"):
        bradley_terry(votes, prior=0)
    s = bradley_terry(votes)  # the default prior: finite, a first
    assert all(math.isfinite(v) for v in s.values()) and max(s, key=s.get) == "a"
    with pytest.raises(ValueError, match="c never won"):
        bradley_terry([[0, 1, 1], [1, 0, 1], [0, 0, 0]], ["a", "b", "c"], prior=0)
    with pytest.raises(ValueError, match="use prior > 0"):  # two groups never compared with each other
        bradley_terry([[0, 1, 0, 0], [1, 0, 0, 0], [0, 0, 0, 1], [0, 0, 1, 0]], prior=0)
    with pytest.raises(ValueError, match="prior must be"):
        bradley_terry([[0, 1], [1, 0]], prior=-1)


@pytest.mark.parametrize("prior", [0.0, 1.0])
def test_mm_finds_the_maximum_of_the_likelihood(prior):
    """The MM fixed point is the maximiser found by a general optimiser (scipy BFGS) of the same
    (smoothed) log-likelihood, and no nearby point is better."""
    w = _random_wins([0.8, 0.2, -0.1, -0.9], 120, seed=1)
    s = np.array(list(bradley_terry(w, prior=prior).values()))
    assert np.allclose(s, _brute_force(w, prior), atol=1e-5)
    ws = w + prior / 2 * (1 - np.eye(4))
    rng = np.random.default_rng(0)
    assert all(_loglik(s + 1e-3 * rng.standard_normal(4), ws) < _loglik(s, ws) for _ in range(20))


def test_matches_choix_where_it_is_installed():
    """choix (PyPI) is not a dependency; where it imports, its MM and its spectral estimator (ILSR) must
    give our scores, with no prior and with prior=2 (one virtual win each way: integer data choix
    takes). Where it does not, the scipy maximiser stands in, so this test never passes vacuously."""
    w = _random_wins([1.0, 0.3, -0.2, -1.1], 300, seed=0)
    try:
        import choix
    except ImportError:
        choix = None
    for prior in (0, 2):
        ours = np.array(list(bradley_terry(w, prior=prior).values()))
        ws = w + prior / 2 * (1 - np.eye(4))
        if choix is None:
            refs = [_brute_force(w, prior)]
        else:
            data = [(i, j) for i in range(4) for j in range(4) for _ in range(int(ws[i, j]))]
            refs = [choix.mm_pairwise(4, data, tol=1e-12), choix.ilsr_pairwise(4, data, tol=1e-12)]
        for ref in refs:
            assert np.allclose(ours, ref - np.mean(ref), atol=1e-6)


def test_symmetry():
    w = _random_wins([0.5, 0.0, -0.5], 60, seed=2)
    s = np.array(list(bradley_terry(w).values()))
    perm = [2, 0, 1]
    assert np.allclose(list(bradley_terry(w[np.ix_(perm, perm)]).values()), s[perm], atol=1e-9)  # relabelling
    assert np.allclose(list(bradley_terry(w.T).values()), -s, atol=1e-9)  # every result reversed
    assert np.allclose(list(bradley_terry([[0, 2, 5], [2, 0, 1], [5, 1, 0]]).values()), 0, atol=1e-9)  # all even
    # the order of the votes and which side each method was shown on do not matter
    votes = _votes([("a", "b", "a"), ("c", "a", "b"), ("b", "c", "tie"), ("c", "b", "a")])
    swapped = [dict(v, a=v["b"], b=v["a"], winner={"a": "b", "b": "a", "tie": "tie"}[v["winner"]]) for v in votes]
    assert bradley_terry(votes) == pytest.approx(bradley_terry(swapped[::-1]), abs=1e-12)


def test_ties_are_skipped_or_count_half():
    votes = _votes([("a", "b", "a"), ("a", "b", "b"), ("a", "b", "a"), ("a", "b", "tie"), ("a", "b", "tie")])
    _, w = win_matrix(votes)
    assert w.tolist() == [[0, 2], [1, 0]]
    _, w = win_matrix(votes, ties="half")
    assert w.tolist() == [[0, 3], [2, 0]]
    assert math.exp(2 * bradley_terry(votes, prior=0)["a"]) == pytest.approx(2)
    assert math.exp(2 * bradley_terry(votes, prior=0, ties="half")["a"]) == pytest.approx(1.5)
    with pytest.raises(ValueError, match="ties must be"):
        win_matrix(votes, ties="drop")


def test_win_matrix_names_and_bad_matrices():
    votes = _votes([("gatys", "adain", "a"), ("johnson", "adain", "b")])
    names, w = win_matrix(votes)
    assert names == ["adain", "gatys", "johnson"] and w.tolist() == [[0, 0, 1], [1, 0, 0], [0, 0, 0]]
    order = ["johnson", "gatys", "adain", "stylebank"]
    names, w = win_matrix(votes, order)
    assert w[1, 2] == 1 and w[2, 0] == 1 and w.sum() == 2
    assert list(bradley_terry(votes, order)) == order
    with pytest.raises(ValueError, match="johnson, which is not in methods"):
        win_matrix(votes, ["adain", "gatys"])
    for bad, match in [([[0, 1, 2], [1, 0, 1]], "square"), ([[0, -1], [1, 0]], ">= 0"), ([[1, 1], [1, 0]], "diagonal"),
                       ([[0]], "at least 2"), ([], "at least 2")]:
        with pytest.raises(ValueError, match=match):
            bradley_terry(bad)


# ----------------------------------------------------------------------------- intervals

def test_fisher_interval_two_methods_by_hand():
    """a beats b 3 of 4: I on d = s_a - s_b is N pi (1 - pi) = 4 * 3/4 * 1/4 = 3/4, so var(d) = 4/3 and
    var(s_a) = var(d) / 4 = 1/3."""
    _, cov = fisher_covariance([[0, 3], [1, 0]], prior=0)
    assert np.allclose(cov, np.array([[1, -1], [-1, 1]]) / 3)
    ci = confidence_intervals([[0, 3], [1, 0]], ["a", "b"], prior=0)
    half = 1.959963985 * math.sqrt(1 / 3)
    assert ci["a"] == pytest.approx((math.log(3) / 2 - half, math.log(3) / 2 + half), rel=1e-6)
    assert confidence_intervals([[0, 3], [1, 0]], prior=0, level=0.5)[0][1] < ci["a"][1]
    with pytest.raises(ValueError, match="level"):
        confidence_intervals([[0, 3], [1, 0]], level=95)


def test_fisher_covariance_is_the_inverse_of_the_numerical_hessian():
    """C = (-H)^+ on the mean-0 subspace, H the Hessian of the smoothed log-likelihood, here by central
    differences (projected onto that subspace: the differences' rounding leaves a tiny component
    along 1 that a plain pseudo-inverse would blow up)."""
    w = _random_wins([0.6, 0.1, -0.7], 40, seed=3)
    s = np.array(list(bradley_terry(w).values()))
    ws = w + 0.5 * (1 - np.eye(3))
    h, e = np.zeros((3, 3)), 1e-4 * np.eye(3)
    for i in range(3):
        for j in range(3):
            h[i, j] = (_loglik(s + e[i] + e[j], ws) - _loglik(s + e[i] - e[j], ws) - _loglik(s - e[i] + e[j], ws)
                       + _loglik(s - e[i] - e[j], ws)) / (4e-8)
    _, cov = fisher_covariance(w)
    proj = np.eye(3) - 1 / 3
    assert np.allclose(np.linalg.pinv(cov), -h, atol=1e-3)
    assert np.allclose(cov, np.linalg.pinv(proj @ -h @ proj), atol=1e-5)
    assert np.allclose(cov.sum(axis=1), 0, atol=1e-10)  # scores are centred: a common shift has no variance


def test_intervals_cover_the_truth_about_as_often_as_promised():
    """200 simulated studies (fixed seed): the 95% intervals hold the true centred score about 95% of
    the time."""
    true = np.array([0.7, 0.2, -0.3, -0.6])
    true -= true.mean()
    hits = 0
    for seed in range(200):
        ci = confidence_intervals(_random_wins(true, 240, seed=100 + seed))
        hits += sum(lo <= t <= hi for (lo, hi), t in zip(ci.values(), true))
    assert 0.91 <= hits / 800 <= 0.99


def test_ranking_rows_and_table():
    votes = _votes([("a", "b", "a"), ("b", "a", "b"), ("a", "c", "a"), ("c", "a", "tie"), ("b", "c", "a"),
                    ("c", "b", "b")])
    rows = ranking(votes)
    assert [r["method"] for r in rows] == ["a", "b", "c"] and [r["rank"] for r in rows] == [1, 2, 3]
    assert [(r["wins"], r["losses"], r["ties"]) for r in rows] == [(3, 0, 1), (2, 2, 0), (0, 3, 1)]
    assert all(r["low"] < r["score"] < r["high"] for r in rows)
    table = ranking_table(votes)
    assert "95% interval" in table and "6 votes by 1 voter(s)" in table and "ties skipped" in table
    assert table.index(" a ") < table.index(" b ") < table.index(" c ")


# ----------------------------------------------------------------------------- agreement and bias

def test_rank_agreement_sign_and_known_values():
    bt = {"gatys": 0.9, "adain": 0.3, "johnson": -0.2, "stylebank": -1.0}
    distance = {"gatys": 0.1, "adain": 0.2, "johnson": 0.3, "stylebank": 0.4}  # lower is better: same order
    r = rank_agreement(distance, bt, better="lower")
    assert (r["spearman"], r["kendall"], r["n"]) == (pytest.approx(1), pytest.approx(1), 4)
    assert r["kendall_p"] == pytest.approx(1 / 12)  # 2 of the 24 orders are as extreme
    assert rank_agreement(distance, bt, better="higher")["kendall"] == pytest.approx(-1)
    one_swap = {"gatys": 0.2, "adain": 0.1, "johnson": 0.3, "stylebank": 0.4, "other": 9.0}  # extra keys ignored
    r = rank_agreement(one_swap, bt, better="lower")
    assert r["kendall"] == pytest.approx(4 / 6) and r["spearman"] == pytest.approx(1 - 6 * 2 / (4 * 15))
    assert r["methods"] == ["gatys", "adain", "johnson", "stylebank"]
    assert math.isnan(rank_agreement(dict.fromkeys(bt, 1.0), bt, better="higher")["spearman"])
    with pytest.raises(ValueError, match="better must be"):
        rank_agreement(distance, bt, better="smaller")
    with pytest.raises(ValueError, match="at least 3"):
        rank_agreement({"gatys": 1, "adain": 2}, bt, better="higher")


def test_position_bias_counts_the_left_image():
    votes = _votes([("a", "b", "a")] * 8 + [("a", "b", "b")] * 2 + [("a", "b", "tie")] * 3)
    bias = position_bias(votes)
    assert (bias["left"], bias["right"], bias["ties"], bias["left_share"]) == (8, 2, 3, 0.8)
    assert bias["p_value"] == pytest.approx(2 * (45 + 10 + 1) / 1024)  # two-sided binomial, n = 10
    assert math.isnan(position_bias([])["left_share"])


# ----------------------------------------------------------------------------- the vote file

def test_vote_file_round_trip(tmp_path):
    path = tmp_path / "votes" / "ada.json"  # the folder is made
    votes = _votes([("adain", "gatys", "a"), ("gatys", "johnson", "tie"), ("johnson", "adain", "b")])
    for k, v in enumerate(votes, 1):
        assert append_vote(path, v) == k
    assert load_votes(path) == votes
    text = path.read_text()
    assert len(text.splitlines()) == 4 + 3 and json.loads(text) == {"votes": votes}  # one vote per line
    assert [p.name for p in path.parent.iterdir()] == ["ada.json"]  # no temporary file left
    v = make_vote("c|s", "x", "y", "a", "bo")
    assert v["time"].endswith("+00:00")


def test_append_is_atomic(tmp_path, monkeypatch):
    """A crash before the rename (here os.replace fails) leaves the old file whole and no stray file."""
    path = tmp_path / "ada.json"
    votes = _votes([("a", "b", "a"), ("b", "a", "b")])
    append_vote(path, votes[0])
    before = path.read_bytes()

    def crash(*args):
        raise OSError("power cut")

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(OSError, match="power cut"):
        append_vote(path, votes[1])
    monkeypatch.undo()
    assert path.read_bytes() == before and load_votes(path) == votes[:1]
    assert [p.name for p in tmp_path.iterdir()] == ["ada.json"]


def test_bad_vote_files_get_one_line_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="no vote file"):
        load_votes(tmp_path / "none.json")
    cases = {
        "broken.json": ('{"votes": [\n  {"pair": 1,\n', "broken JSON at line 3"),
        "list.json": ("[]", re.escape('expected {"votes": [...]}')),
        "binary.json": (b"\xff\xfe\x00", "not UTF-8"),
    }
    for name, (content, match) in cases.items():
        path = tmp_path / name
        path.write_bytes(content if isinstance(content, bytes) else content.encode())
        with pytest.raises(ValueError, match=match) as e:
            load_votes(path)
        assert "\n" not in str(e.value)
        with pytest.raises(ValueError):  # a file that is not a vote file is never overwritten
            append_vote(path, make_vote("c|s", "x", "y", "a", "ada"))
        assert path.read_bytes() == (content if isinstance(content, bytes) else content.encode())
    good = make_vote("c|s", "x", "y", "a", "ada", time=T0)
    for change, match in [({"winner": "left"}, "vote 2: winner must be"), ({"b": "x"}, "same method"),
                          ({"voter": ""}, "voter must be"), ({"time": "yesterday"}, "ISO 8601"),
                          ({"winer": "a"}, "unknown field 'winer'")]:
        path = tmp_path / "bad.json"
        path.write_text(json.dumps({"votes": [good, {**good, **change}]}))
        with pytest.raises(ValueError, match=match):
            load_votes(path)
    path.write_text(json.dumps({"votes": [{k: v for k, v in good.items() if k != "pair"}]}))
    with pytest.raises(ValueError, match="vote 1: no field pair"):
        load_votes(path)


def test_merge_pools_files_and_drops_identical_records(tmp_path):
    ada = _votes([("a", "b", "a"), ("b", "c", "b")], voter="ada")
    bo = _votes([("a", "b", "a"), ("c", "a", "tie")], voter="bo")  # the same choice as ada's first, another voter
    for name, votes in [("ada.json", ada), ("bo.json", bo)]:
        for v in votes:
            append_vote(tmp_path / name, v)
    (tmp_path / "ada copy.json").write_bytes((tmp_path / "ada.json").read_bytes())
    files = [tmp_path / "ada.json", tmp_path / "bo.json", tmp_path / "ada copy.json"]
    merged = merge_votes(files, out=tmp_path / "class.json")
    assert merged == ada + bo
    assert load_votes(tmp_path / "class.json") == merged
    assert merge_votes([tmp_path / "ada.json"] * 2) == ada


# ----------------------------------------------------------------------------- the widget

def _results(tmp_path):
    """Two pairs: three methods (tensors, a PNG path) and two methods."""
    png = tmp_path / "gatys.png"
    Image.new("RGB", (16, 12), (0, 255, 0)).save(png)
    grey = torch.full((1, 3, 12, 16), 0.5)
    return {"tubingen|the_scream": {"adain": grey, "gatys": png, "johnson": torch.rand(3, 12, 16)},
            "astronaut|starry_night": {"adain": grey, "stylebank": torch.zeros(1, 3, 12, 16)}}


def test_the_widget_records_each_click(tmp_path):
    path = tmp_path / "ada.json"
    w = PreferenceWidget(_results(tmp_path), path, voter="ada", seed=0,
                         references={"tubingen|the_scream": [torch.ones(1, 3, 8, 8), torch.zeros(3, 8, 8)]})
    assert w.total == 4 and w.progress.value.startswith("0 of 4 pairs")
    shown = []
    for button, winner in [(w.left_button, "a"), (w.tie_button, "tie"), (w.right_button, "b")]:
        pair, left, right = w.current
        assert w.left_image.value[:8] == b"\x89PNG\r\n\x1a\n" and w.right_image.value
        assert pair.split("|")[0] in w.title.value and left not in w.title.value  # blind: no method names
        button.click()  # what the browser does: the button's on_click handlers run
        shown.append((pair, left, right, winner))
    votes = load_votes(path)  # each vote is on disk at once
    assert [(v["pair"], v["a"], v["b"], v["winner"]) for v in votes] == shown
    assert all(v["voter"] == "ada" for v in votes) and w.progress.value.startswith("3 of 4 pairs")
    w.left_button.click()
    assert w.current is None and w.left_button.disabled and "All pairs judged" in w.title.value
    w.vote("a")  # nothing left: no vote
    planned = {(v["pair"], frozenset((v["a"], v["b"]))) for v in load_votes(path)}
    assert len(load_votes(path)) == 4 and len(planned) == 4  # every pair of methods once


def test_the_widget_resumes_and_keeps_voters_apart(tmp_path):
    path = tmp_path / "class.json"
    w = PreferenceWidget(_results(tmp_path), path, voter="ada", seed=1)
    w.left_button.click()
    w.right_button.click()
    again = PreferenceWidget(_results(tmp_path), path, voter="ada", seed=2)  # the cell run again
    assert (again.judged, again.total, len(again.queue)) == (2, 4, 2)
    assert again.progress.value.startswith("2 of 4")
    judged = {(v["pair"], frozenset((v["a"], v["b"]))) for v in load_votes(path)}
    assert all((p, frozenset((a, b))) not in judged for p, a, b in again.queue)
    assert PreferenceWidget(_results(tmp_path), path, voter="bo").judged == 0


def test_the_widget_randomises_sides_and_order():
    results = {f"c{k}|s": {m: torch.zeros(1, 3, 4, 4) for m in ("adain", "gatys", "johnson")} for k in range(10)}
    plans = [PreferenceWidget(results, "unused.json", voter="ada", seed=s).queue for s in (0, 1)]
    lefts = [left for _, left, _ in plans[0]]
    assert plans[0] != plans[1] and sorted(plans[0]) != plans[0]
    assert {lefts.count(m) for m in ("adain", "gatys", "johnson")} != {10}  # not always the same side
    assert any(left == "johnson" for _, left, right in plans[0])  # the later name shows on the left too
    assert PreferenceWidget(results, "unused.json", voter="ada", seed=0).queue == plans[0]  # the seed fixes it


def test_the_widget_shows_a_failed_write_and_keeps_the_pair(tmp_path, monkeypatch):
    w = PreferenceWidget(_results(tmp_path), tmp_path / "ada.json", voter="ada", seed=0)
    first = w.current

    def full_disk(path, vote):
        raise OSError("No space left on device")

    monkeypatch.setattr(preference, "append_vote", full_disk)
    w.left_button.click()
    assert w.current == first and w.judged == 0 and "not saved: No space left" in w.progress.value


def test_the_widget_refuses_bad_input(tmp_path):
    (tmp_path / "broken.json").write_text("{")
    with pytest.raises(ValueError, match="not a vote file"):
        PreferenceWidget(_results(tmp_path), tmp_path / "broken.json", voter="ada")
    with pytest.raises(ValueError, match="voter"):
        PreferenceWidget(_results(tmp_path), tmp_path / "v.json", voter=" ")
    with pytest.raises(ValueError, match="at least 2 methods"):
        PreferenceWidget({"c|s": {"adain": torch.zeros(1, 3, 4, 4)}}, tmp_path / "v.json", voter="ada")
    with pytest.raises(FileNotFoundError, match="no image file"):
        PreferenceWidget({"c|s": {"a": tmp_path / "none.png", "b": torch.zeros(1, 3, 4, 4)}}, tmp_path / "v.json",
                         voter="ada")
    with pytest.raises(ValueError, match=r"c\|s / b: give a PNG path or a tensor"):
        PreferenceWidget({"c|s": {"a": torch.zeros(1, 3, 4, 4), "b": torch.zeros(2, 3, 4, 4)}}, tmp_path / "v.json",
                         voter="ada")


def test_results_from_a_comparison_folder(tmp_path):
    pairs = [compare.Pair("tubingen", "the_scream"), compare.Pair("astronaut", "starry_night")]
    for method in ("adain", "gatys"):
        for pair in pairs:
            path = compare.image_path(tmp_path, method, pair)  # the names nstlib.compare writes
            path.parent.mkdir(parents=True, exist_ok=True)
            Image.new("RGB", (8, 8)).save(path)
    Image.new("RGB", (8, 8)).save(compare.image_path(tmp_path, "johnson", compare.Pair("chelsea", "the_scream")))
    results = results_from_compare(tmp_path)
    assert sorted(results) == ["astronaut|starry_night", "tubingen|the_scream"]  # chelsea has one method only
    assert sorted(results["tubingen|the_scream"]) == ["adain", "gatys"]
    assert PreferenceWidget(results, tmp_path / "v.json", voter="ada").total == 2
    with pytest.raises(FileNotFoundError, match="python -m nstlib compare"):
        results_from_compare(tmp_path / "nothing")


def test_vote_agreement_counts_votes_the_metric_gets_right():
    v = lambda pair, a, b, winner: make_vote(pair, a, b, winner, "ada")
    votes = [v("p|s", "gatys", "adain", "a"),   # gatys won; distance 1 < 2: agrees
             v("p|s", "adain", "gatys", "a"),   # adain won; 2 > 1: disagrees
             v("q|s", "gatys", "adain", "b"),   # adain won on q; 3 < 5: agrees
             v("q|s", "gatys", "adain", "tie"),  # a tie: not counted
             v("q|s", "gatys", "johnson", "a"),  # johnson has no value on q: not counted
             v("r|s", "gatys", "adain", "a")]   # equal values on r: no opinion, not counted
    values = {("p|s", "gatys"): 1.0, ("p|s", "adain"): 2.0, ("q|s", "gatys"): 5.0, ("q|s", "adain"): 3.0,
              ("r|s", "gatys"): 4.0, ("r|s", "adain"): 4.0}
    assert vote_agreement(votes, values, better="lower") == {"agreement": 2 / 3, "agree": 2, "n": 3}
    # the same values as a "higher is better" measure get exactly the other votes right
    assert vote_agreement(votes, values, better="higher") == {"agreement": 1 / 3, "agree": 1, "n": 3}
    assert math.isnan(vote_agreement(votes[3:], values, better="lower")["agreement"])
    with pytest.raises(ValueError, match="better must be"):
        vote_agreement(votes, values, better="smaller")
