"""Graded exercises: the learner writes the core of each method, `check` compares it with the
library's reference and answers with a specific hint.

    from nstlib.exercises import check
    check("gram", my_gram)
    # ✓ gram: 6 cases match nstlib.losses.gram, values and gradients (exactly)

A wrong answer raises `ExerciseError` (an AssertionError, so a notebook cell shows it in red)
whose message is the hint and the case it failed on, e.g.

    ExerciseError: gram: off by a factor M = H*W = 20: divide F F^T by the number of positions M = H*W (4 x 5)
      case 1/6: batch 2, 3 channels, H x W = 4 x 5 (float64)

The exercises, by the notebook that teaches them (each one's reference solution is in
notebooks/solutions/nbNN.py):

    01  content_loss(features, target)              L = 1/2 sum (F - P)^2             losses.content_loss
    01  closure(optimizer, image, loss_fn)          zero grads, loss, backward, return the loss
    02  gram(features)                              G = F F^T / M, (B, N, N)          losses.gram
    03  style_layer_loss(g, a)                      ||G - A||_F^2 / (4 N^2)           losses.style_layer_loss
    03  style_loss(features, targets, weights)      sum_l w_l E_l                     losses.style_loss
    03  total_loss(content, style, alpha, beta)     alpha L_content + beta L_style
    03  tv_loss(image)                              sum of squared neighbour differences  losses.tv_loss
    04  mmd2_unbiased(x, y, sigma2)                 Gaussian-kernel MMD^2, U-statistic  mmd.mmd2(unbiased=True)
    05  adain(content, style, eps)                  sigma_s (x - mu_c) / sigma_c + mu_s  adain.adain
    05  adain_style_loss(output_feats, style_feats) sum_l mse(mu) + mse(sigma)        adain.decoder_losses
    06  bank_conv(features, weight)                 K_i (x) F, reflection padding     a StyleBank bank
    06  autoencoder_step(step, T)                   the (T+1) alternation             stylebank_training
    07  lsgan_generator_loss(fake_scores)           mean (D(G(a)) - 1)^2              cyclegan.lsgan_loss
    07  lsgan_discriminator_loss(real, fake)        0.5 (mean (D(b) - 1)^2 + mean D(G(a))^2)
    07  cycle_loss(reconstructed, original)         mean |F(G(a)) - a|                cyclegan.cycle_loss
    08  instance_norm(x, gamma, beta, eps)          gamma (x - mu) / sqrt(var + eps) + beta, eps 1e-3
    08  johnson_gram(features)                      F F^T / (C H W)                   johnson.johnson_gram
    09  mrf_energy(features, style_patches)         sum_i ||Psi_i - Psi_NN(i)||^2, NN by correlation  mrf.mrf_loss
    09  matting_energy(output, laplacian)           sum_c V_c^T M V_c                 photorealism.matting_loss
    10  bradley_terry_step(wins, strengths)         p_i <- W_i / sum_j n_ij / (p_i + p_j), geometric mean 1  preference.mm_step

How a function is checked. Each exercise has a few cases: float64 inputs (the answer is an
identity, so it must match to ~1e-9 relative), batch > 1, non-square maps with channels !=
positions (a transposed matrix then has the wrong shape), and edge cases (a constant channel, one
row, identical inputs). On each case the learner's function runs on fresh copies of the inputs,
and in this order:

1. an exception is reported with its message (its traceback is chained above the hint);
2. the inputs must be unchanged (no in-place edits);
3. the result must be a tensor (not None, a Python number or a NumPy array) of the inputs' dtype;
4. shape and values must match the reference. If they do not, the answer is compared with a
   catalogue of known mistakes, each computed on the same case (a Gram matrix without / M, a
   biased std, a sum for a mean, ...); then with generic hints (NaN, wrong shape, off by a
   constant factor, named when it equals a size of the case such as M = H*W);
5. with the inputs requiring gradients, the output must stay on the autograd graph and its
   gradient (of a random weighting of the output) must match the reference's.

Two exercises are not tensor functions and have checkers of their own: `closure` is called once
with an SGD optimizer whose image holds a stale gradient (it must not step, must leave the image,
return the loss and leave exactly the new gradient), then must make L-BFGS converge on a
quadratic; `autoencoder_step` is compared step by step for T = 2, 3, 5 and 1.

`ExerciseError.key` names the hint and `.exercise` the exercise; tests/test_exercises.py triggers
every hint with a deliberately wrong implementation. `EXERCISES` is the registry.
"""
from __future__ import annotations

import difflib
import numbers
from dataclasses import dataclass, field
from typing import Any, Callable

import torch
import torch.nn.functional as F

from . import adain as adain_lib
from . import cyclegan, johnson, losses, mmd, mrf, photorealism, preference

__all__ = ["check", "ExerciseError", "EXERCISES"]


class ExerciseError(AssertionError):
    """A wrong answer to an exercise; the message is the hint, `key` names it."""

    def __init__(self, message: str, key: str = "values", exercise: str | None = None):
        super().__init__(message)
        self.key, self.exercise = key, exercise


@dataclass
class Mistake:
    """A known mistake: `wrong(*inputs)` computes the mistaken answer on a case (a tuple: several
    ways to make it); when the learner's answer equals it (or, with shape_only, has its shape),
    `hint` is the answer, formatted with the case's context. Mistakes without `wrong` are detected by
    their exercise's own checker."""

    key: str
    hint: str
    wrong: Callable[..., torch.Tensor] | tuple[Callable[..., torch.Tensor], ...] | None = None
    shape_only: bool = False


@dataclass
class Case:
    label: str  # what the learner reads: "batch 2, 3 channels, H x W = 4 x 5"
    args: tuple
    context: dict[str, Any] = field(default_factory=dict)  # the numbers hints quote: {M}, {N}, ...
    factors: dict[str, float] = field(default_factory=dict)  # sizes a constant factor is named by


@dataclass
class Exercise:
    name: str
    notebook: int
    signature: str
    reference_name: str
    run: Callable[[Exercise, Callable], str]  # checks a function, returns the success line's detail
    mistakes: tuple[Mistake, ...] = ()
    reference: Callable | None = None
    cases: Callable[[], list[Case]] | None = None
    arg_names: tuple[str, ...] = ()
    grad: tuple[str, ...] = ()  # the arguments whose gradients are compared


EXERCISES: dict[str, Exercise] = {}


def check(name: str, fn: Callable, *, quiet: bool = False) -> bool:
    """Check the learner's `fn` for exercise `name` (see the module docstring for the list).
    Prints one line and returns True when it matches the reference; raises ExerciseError with a
    specific hint when it does not, ValueError for an unknown exercise."""
    if name not in EXERCISES:
        close = difflib.get_close_matches(name, EXERCISES, n=1)
        guess = f" Did you mean {close[0]!r}?" if close else ""
        raise ValueError(f"unknown exercise {name!r}.{guess} The exercises are: {', '.join(EXERCISES)}")
    ex = EXERCISES[name]
    if not callable(fn):
        raise ExerciseError(f"{name}: pass the function itself, check({name!r}, {ex.signature.split('(')[0]}), "
                            f"not what it returns (got a {type(fn).__name__})", "not_callable", name)
    try:
        with torch.enable_grad():
            detail = ex.run(ex, fn)
    except ExerciseError as err:  # raised afresh: the notebook shows the hint, not the checker's frames
        raise ExerciseError(str(err), err.key, err.exercise) from err.__cause__
    if not quiet:
        print(f"✓ {name}: {detail}")
    return True


# ----------------------------------------------------------------------------- the shared checker

def _fail(ex: Exercise, key: str, hint: str, where: str = "", cause: BaseException | None = None):
    message = f"{ex.name}: {hint}" + (f"\n  {where}" if where else "")
    raise ExerciseError(message, key, ex.name) from cause


def _copy(obj, requires_grad: bool = False):
    """A fresh copy of a case's input (tensors, or dicts and lists of them), optionally a leaf
    that requires gradients."""
    if torch.is_tensor(obj):
        t = obj.detach().clone()
        return t.requires_grad_(requires_grad and t.is_floating_point())
    if isinstance(obj, dict):
        return {k: _copy(v, requires_grad) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(_copy(v, requires_grad) for v in obj)
    return obj


def _leaves(obj, label: str):
    """(label, tensor) for every tensor in a (nested) input, in order."""
    if torch.is_tensor(obj):
        yield label, obj
    elif isinstance(obj, dict):
        for k, v in obj.items():
            yield from _leaves(v, f"{label}[{k!r}]")
    elif isinstance(obj, (list, tuple)):
        for i, v in enumerate(obj):
            yield from _leaves(v, f"{label}[{i}]")


def _same(a, b) -> bool:
    if torch.is_tensor(a):
        return torch.is_tensor(b) and a.shape == b.shape and bool(((a == b) | (a.isnan() & b.isnan())).all())
    if isinstance(a, dict):
        return isinstance(b, dict) and a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)):
        return isinstance(b, (list, tuple)) and len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    return a == b


def _close(a: torch.Tensor, b: torch.Tensor, rtol: float = 1e-9) -> bool:
    """Same shape, NaN/inf in the same places, and |a - b| <= rtol * max|b| (max|b| at least 1e-3)."""
    a, b = a.detach().double(), b.detach().double()
    if a.shape != b.shape:
        return False
    fa, fb = torch.isfinite(a), torch.isfinite(b)
    if not torch.equal(fa, fb) or not _same(a[~fa], b[~fb]):
        return False
    if not fb.any():
        return True
    scale = max(float(b[fb].abs().max()), 1e-3)
    return float((a[fb] - b[fb]).abs().max()) <= rtol * scale


def _max_diff(a: torch.Tensor, b: torch.Tensor) -> float:
    a, b = a.detach().double(), b.detach().double()
    finite = torch.isfinite(a) & torch.isfinite(b)
    return float((a[finite] - b[finite]).abs().max()) if finite.any() else 0.0


def _call(ex: Exercise, fn: Callable, args: tuple, where: str, key: str = "exception",
          when: str = "", then: str = ""):
    try:
        return fn(*args)
    except Exception as e:  # the learner's own error, reported with its message
        hint = f"{when}your function raised {type(e).__name__}: {str(e).rstrip('.')}{then}"
        if isinstance(e, TypeError):
            hint += f" (the exercise calls {ex.signature})"
        _fail(ex, key, hint, where, cause=e)


def _check_returns_tensor(ex: Exercise, got, where: str) -> None:
    if got is None:
        _fail(ex, "returns_none", "returns None: did you forget the `return` statement?", where)
    if isinstance(got, numbers.Number):
        _fail(ex, "returns_number", f"returns a number ({type(got).__name__} {got!r}), not a tensor: keep the "
              "result a tensor (no .item(), float() or math.* functions), so that autograd can follow it", where)
    if type(got).__module__.split(".")[0] == "numpy":
        _fail(ex, "returns_numpy", "returns a NumPy array: compute with torch operations, so that the result stays "
              "a tensor on the autograd graph", where)
    if not torch.is_tensor(got):
        _fail(ex, "returns_other", f"returns a {type(got).__name__}, expected a tensor: {ex.signature}", where)


def _name_factor(r: float, factors: dict[str, float]) -> str:
    for label, v in factors.items():
        for value, says in ((v, f" = {label}: a division by {label} is missing?"),
                            (1 / v, f" = 1/({label}): an extra division by {label}?"),
                            (v * v, f" = ({label})^2: a division by ({label})^2 is missing?"),
                            (1 / (v * v), f" = 1/({label})^2: an extra division by ({label})^2?")):
            if v not in (0, 1) and abs(r - value) <= 1e-6 * abs(value):
                return says
    return ": check the constants and the normalisation"


def _diagnose(ex: Exercise, case: Case, got: torch.Tensor, expected: torch.Tensor, where: str) -> None:
    """The learner's answer differs from the reference on `case`: find the most specific hint."""
    for shape_only in (False, True):
        for m in ex.mistakes:
            if m.wrong is None or m.shape_only != shape_only:
                continue
            for variant in m.wrong if isinstance(m.wrong, tuple) else (m.wrong,):
                try:
                    wrong = variant(*_copy(case.args))
                except Exception:  # a mistake that cannot happen on this case
                    continue
                if wrong.shape == got.shape and (shape_only or _close(got, wrong)):
                    _fail(ex, m.key, m.hint.format(**case.context), where)
    if got.shape != expected.shape:
        if expected.dim() == 0:
            _fail(ex, "scalar_shape", f"returns shape {tuple(got.shape)}, expected a scalar (shape ()): a loss is "
                  "one number; reduce over every entry, the batch included", where)
        _fail(ex, "shape", f"wrong output shape: expected {tuple(expected.shape)}, got {tuple(got.shape)}", where)
    g, e = got.detach().double(), expected.detach().double()
    if (~torch.isfinite(g) & torch.isfinite(e)).any():
        _fail(ex, "nonfinite", "returns NaN or inf where the reference is finite: a division by zero or the "
              "square root of a negative number? (look at this case's constant or tiny inputs)", where)
    big = e.abs() > 1e-9 * max(float(e.abs().max()), 1e-300)
    if big.any():
        r = g[big] / e[big]
        r0 = float(r[0])
        if r0 != 1 and float((r - r0).abs().max()) <= 1e-6 * abs(r0) and _close(g[~big], e[~big]):
            _fail(ex, "constant_factor", f"off by a constant factor: your result is {r0:.6g} x the reference"
                  f"{_name_factor(r0, case.factors)}", where)
    d = (g - e).abs()
    i = int(d.nan_to_num(float("inf")).argmax())
    idx = tuple(int(k) for k in torch.unravel_index(torch.tensor(i), e.shape)) if e.dim() else ()
    _fail(ex, "values", f"values differ from {ex.reference_name}: at index {idx} expected {e.flatten()[i]:.6g}, "
          f"got {g.flatten()[i]:.6g} (max difference {float(d.nan_to_num(float('inf')).max()):.3g})", where)


def _check_gradient(ex: Exercise, fn: Callable, case: Case, where: str) -> None:
    mine = tuple(_copy(a, name in ex.grad) for name, a in zip(ex.arg_names, case.args))
    theirs = tuple(_copy(a, name in ex.grad) for name, a in zip(ex.arg_names, case.args))
    out = _call(ex, fn, mine, where, "grad_exception", "with inputs that require gradients, ",
                ". In-place operations on an input (x -= ..., x[...] = ...) break autograd: compute new tensors")
    if not (torch.is_tensor(out) and out.requires_grad):
        _fail(ex, "no_graph", "the output is cut off from autograd (requires_grad is False although the inputs "
              "require gradients): no .detach(), .data, .item(), .numpy(), torch.tensor(...) or torch.no_grad() "
              "inside", where)
    ref = ex.reference(*theirs)
    weight = torch.randn(ref.shape, generator=torch.Generator().manual_seed(1), dtype=ref.dtype)
    names = [n for n in ex.arg_names if n in ex.grad]
    leaves = [leaf for name in names for leaf in _leaves(mine[ex.arg_names.index(name)], name)]
    ref_leaves = [leaf for name in names for leaf in _leaves(theirs[ex.arg_names.index(name)], name)]
    grads = torch.autograd.grad((out * weight).sum(), [t for _, t in leaves], allow_unused=True)
    ref_grads = torch.autograd.grad((ref * weight).sum(), [t for _, t in ref_leaves], allow_unused=True)
    for (label, _), g, r in zip(leaves, grads, ref_grads):
        if r is None:
            continue
        if g is None:
            _fail(ex, "no_grad_to_input", f"no gradient reaches `{label}`: the output does not depend on it "
                  "through autograd (a .detach(), .data or a copy made with torch.tensor(...)?)", where)
        if not _close(g, r, rtol=1e-7):
            _fail(ex, "gradient", f"the values match but the gradient with respect to `{label}` does not (max "
                  f"difference {_max_diff(g, r):.3g}): is part of the computation detached (.detach(), .data, "
                  "torch.no_grad()) or replaced by a constant?", where)


def _check_function(ex: Exercise, fn: Callable) -> str:
    """The checker of every exercise whose answer is a tensor computed from tensors."""
    cases = ex.cases()
    worst = 0.0
    for i, case in enumerate(cases, 1):
        where = f"case {i}/{len(cases)}: {case.label}"
        expected = ex.reference(*_copy(case.args))
        inputs = _copy(case.args)
        got = _call(ex, fn, inputs, where)
        for name, before, after in zip(ex.arg_names, case.args, inputs):
            if not _same(before, after):
                _fail(ex, "mutates_input", f"changes its input `{name}` in place (-=, +=, .sub_(), x[...] = ...): "
                      "compute new tensors and leave the inputs as they are", where)
        _check_returns_tensor(ex, got, where)
        if got.dtype != expected.dtype:
            _fail(ex, "dtype", f"returns {got.dtype} for {expected.dtype} inputs: create new tensors with the "
                  "inputs' dtype (torch.zeros_like(x), x.new_zeros(...), dtype=x.dtype)", where)
        if not _close(got, expected):
            _diagnose(ex, case, got, expected, where)
        worst = max(worst, _max_diff(got, expected))
        if ex.grad:
            _check_gradient(ex, fn, case, where)
    what = "values and gradients" if ex.grad else "values"
    return f"{len(cases)} cases match {ex.reference_name}, {what} (max difference {worst:.0e})" if worst else \
        f"{len(cases)} cases match {ex.reference_name}, {what} (exactly)"


def _exercise(name: str, notebook: int, signature: str, reference: Callable, reference_name: str,
              cases: Callable[[], list[Case]], grad: tuple[str, ...] = (), mistakes: tuple[Mistake, ...] = ()):
    arg_names = tuple(a.strip().split("=")[0] for a in signature.split("(", 1)[1].split(")")[0].split(","))
    EXERCISES[name] = Exercise(name, notebook, signature, reference_name, _check_function, tuple(mistakes),
                               reference, cases, arg_names, grad)


# ----------------------------------------------------------------------------- inputs

def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _randn(g: torch.Generator, *shape: int) -> torch.Tensor:
    return torch.randn(shape, generator=g, dtype=torch.float64)


def _features(g, b, n, h, w, note=""):
    """A (B, N, H, W) feature map, its label, context and factors."""
    label = f"batch {b}, {n} channels, H x W = {h} x {w}{note} (float64)"
    context = dict(B=b, N=n, H=h, W=w, M=h * w, NM=n * h * w, BN=b * n, N2x4=4 * n * n,
                   Hm2=h - 2, Wm2=w - 2, numel=b * n * h * w)
    factors = {"M = H*W": h * w, "N": n, "B": b, "N*M": n * h * w, "B*N*M": b * n * h * w}
    return _randn(g, b, n, h, w), label, context, factors


# gram, johnson_gram: the same shapes; M != N everywhere, so F^T F has the wrong shape
_GRAM_SHAPES = ((2, 3, 4, 5), (1, 4, 3, 2), (3, 2, 5, 1), (2, 5, 2, 2), (1, 1, 3, 3), (2, 6, 2, 7))


def _gram_cases() -> list[Case]:
    g = _gen(2)
    cases = []
    for shape in _GRAM_SHAPES:
        x, label, ctx, fac = _features(g, *shape)
        cases.append(Case(label, (x,), ctx, fac))
    return cases


def _flat(f):
    b, n, h, w = f.shape
    return f.reshape(b, n, h * w)  # (B, N, M)


def _gram_shape_mistakes(divisor: Callable[[int, int], int]) -> tuple[Mistake, ...]:
    """The batch and transpose mistakes of any Gram matrix, `divisor(n, m)` its normalisation."""

    def wrong_reshape(f):
        b, n, h, w = f.shape
        x = f.reshape(b, h * w, n)  # not a transpose: scrambles channels and positions
        return x.transpose(1, 2) @ x / divisor(n, h * w)

    def pooled(f):
        b, n, h, w = f.shape
        x = f.transpose(0, 1).reshape(n, b * h * w)  # (N, B*M)
        return x @ x.T / divisor(n, b * h * w)

    return (
        Mistake("reshape_order", "reshape(B, H*W, N) does not move the channels last, it scrambles channels and "
                "positions: reshape to (B, N, H*W) (channels first, as stored) and use F F^T", wrong_reshape),
        Mistake("pooled_batch", "the whole batch went into one Gram matrix: compute one per image, (B, N, N), "
                "with f = features.reshape(B, N, H*W) and f @ f.transpose(1, 2)", (pooled, lambda f: pooled(f)[None])),
        Mistake("cross_batch", "got ({BN}, {BN}) = (B*N, B*N): rows of different images were multiplied together "
                "(cross-batch entries). Keep the batch apart: (B, N, M) @ (B, M, N) -> (B, N, N)",
                lambda f: torch.zeros(f.shape[0] * f.shape[1], f.shape[0] * f.shape[1]), shape_only=True),
        Mistake("transposed", "got (B, M, M) = ({B}, {M}, {M}): that is F^T F, positions x positions. The Gram "
                "matrix is F F^T, channels x channels (N x N): f @ f.transpose(1, 2) with f of shape (B, N, M)",
                lambda f: torch.zeros(f.shape[0], f.shape[2] * f.shape[3], f.shape[2] * f.shape[3]), shape_only=True),
        Mistake("batch_dropped", "returns (N, N) = ({N}, {N}): keep the batch dimension, one Gram matrix per image, "
                "(B, N, N) = ({B}, {N}, {N}): reshape to (B, N, H*W) and use batched @",
                lambda f: torch.zeros(f.shape[1], f.shape[1]), shape_only=True),
    )


_exercise(
    "gram", 2, "gram(features)", losses.gram, "nstlib.losses.gram", _gram_cases, grad=("features",),
    mistakes=(
        Mistake("no_M", "off by a factor M = H*W = {M}: divide F F^T by the number of positions M = H*W "
                "({H} x {W})", lambda f: _flat(f) @ _flat(f).transpose(1, 2)),
        Mistake("divided_NM", "divided by N*M = {NM}: Gatys' G = F F^T / M divides by the positions M = H*W = {M} "
                "only (Johnson's Gram, notebook 08, also divides by N)", lambda f: losses.gram(f) / f.shape[1]),
        Mistake("divided_N", "divided by N = {N} (channels) instead of M = H*W = {M} (positions)",
                lambda f: _flat(f) @ _flat(f).transpose(1, 2) / f.shape[1]),
        Mistake("centred", "the mean was subtracted first: the Gram matrix is not centred (that would be the "
                "covariance): G = F F^T / M with F as it is",
                lambda f: losses.gram(f - f.mean(dim=(2, 3), keepdim=True))),
        *_gram_shape_mistakes(lambda n, m: m),
    ))


def _johnson_gram_reference(features):
    return johnson.johnson_gram(features)


_exercise(
    "johnson_gram", 8, "johnson_gram(features)", _johnson_gram_reference, "nstlib.johnson.johnson_gram",
    _gram_cases, grad=("features",),
    mistakes=(
        Mistake("gatys_gram", "that is Gatys' Gram, F F^T / M: Johnson's Eq. 3 also divides by the channels "
                "C_j = {N}: G = F F^T / (C H W)", losses.gram),
        Mistake("unnormalised", "divide F F^T by C_j H_j W_j = {NM} (Johnson's Eq. 3)",
                lambda f: _flat(f) @ _flat(f).transpose(1, 2)),
        Mistake("divided_C_only", "divided by C = {N} only: Johnson's Eq. 3 divides by C H W = {NM}",
                lambda f: _flat(f) @ _flat(f).transpose(1, 2) / f.shape[1]),
        *_gram_shape_mistakes(lambda n, m: n * m),
    ))


# ----------------------------------------------------------------------------- 01: content loss

def _content_cases() -> list[Case]:
    g = _gen(1)
    cases = []
    for shape, note in (((2, 3, 4, 5), ""), ((1, 4, 3, 2), ""), ((3, 2, 1, 6), "")):
        f, label, ctx, fac = _features(g, *shape, note)
        cases.append(Case(label, (f, _randn(g, *shape)), ctx, fac))
    f, label, ctx, fac = _features(g, 2, 2, 3, 3, ", features = target")
    cases.append(Case(label, (f, f.clone()), ctx, fac))
    return cases


def _sq(f, p):
    return (f - p).pow(2)


_exercise(
    "content_loss", 1, "content_loss(features, target)", losses.content_loss, "nstlib.losses.content_loss",
    _content_cases, grad=("features",),
    mistakes=(
        Mistake("no_half", "missing the 1/2 of Eq. 1: your loss is twice the reference", lambda f, p: _sq(f, p).sum()),
        Mistake("mean", "Eq. 1 sums over every entry; you averaged (divided by B*N*H*W = {numel}): "
                "L = 1/2 sum (F - P)^2, not F.mse_loss or .mean()", (
            lambda f, p: 0.5 * _sq(f, p).mean(),
            lambda f, p: _sq(f, p).mean())),
        Mistake("abs", "Eq. 1 squares the differences: 1/2 sum (F - P)^2, not |F - P|", (
            lambda f, p: 0.5 * (f - p).abs().sum(),
            lambda f, p: (f - p).abs().sum())),
        Mistake("no_square", "missing the square: torch.norm(F - P) is sqrt(sum (F - P)^2); Eq. 1 uses the sum "
                "of squares itself", (
            lambda f, p: 0.5 * torch.linalg.vector_norm(f - p),
            lambda f, p: torch.linalg.vector_norm(f - p))),
        Mistake("first_image", "only the first image of the batch counts: sum over the whole batch (B = {B})",
                lambda f, p: 0.5 * _sq(f[0], p[0]).sum()),
        Mistake("batch_mean", "averaged over the batch (divided by B = {B}): the course's losses sum over the "
                "batch, like the paper's sum over every entry", lambda f, p: 0.5 * _sq(f, p).sum() / f.shape[0]),
    ))


# ----------------------------------------------------------------------------- 01: the closure

def _reference_closure(optimizer, image, loss_fn):
    """What optimizer.step(closure) needs (as nstlib.optimize.optimize_image's closure does):
    clear the old gradient, evaluate the loss at the current image, backpropagate, return it."""
    optimizer.zero_grad()
    loss = loss_fn(image)
    loss.backward()
    return loss


def _quadratic():
    """A quadratic bowl 1/2 sum c (x - t)^2 on a (1, 3, 4, 5) image, with 4 distinct curvatures
    (L-BFGS solves it in a few iterations), and its gradient c (x - t)."""
    g = _gen(5)
    target = torch.rand(1, 3, 4, 5, generator=g, dtype=torch.float64)
    curvature = torch.tensor([1.0, 2.0, 4.0, 8.0], dtype=torch.float64)[torch.randint(4, (1, 3, 4, 5), generator=g)]
    return (lambda image: 0.5 * (curvature * (image - target).pow(2)).sum()), (lambda image: curvature * (image - target))


def _lbfgs(closure, steps: int = 5) -> tuple[float, float]:
    loss_fn, _ = _quadratic()
    image = torch.nn.Parameter(torch.zeros(1, 3, 4, 5, dtype=torch.float64))
    first = float(loss_fn(image.detach()))
    optimizer = torch.optim.LBFGS([image], lr=1, max_iter=5, line_search_fn="strong_wolfe")
    for _ in range(steps):
        optimizer.step(lambda: closure(optimizer, image, loss_fn))
    return first, float(loss_fn(image.detach()))


def _check_closure(ex: Exercise, fn: Callable) -> str:
    loss_fn, gradient = _quadratic()
    where = "one call with an SGD optimizer, image.grad holding an old gradient (all 7)"
    image = torch.nn.Parameter(torch.full((1, 3, 4, 5), 0.25, dtype=torch.float64))
    optimizer = torch.optim.SGD([image], lr=0.1)
    image.grad = torch.full_like(image, 7.0)
    stepped = []
    step = optimizer.step
    optimizer.step = lambda *a, **k: (stepped.append(1), step(*a, **k))[1]
    got = _call(ex, fn, (optimizer, image, loss_fn), where)
    if stepped:
        _fail(ex, "calls_step", "calls optimizer.step(): the closure only evaluates. optimizer.step(closure) calls "
              "it, and L-BFGS several times per iteration: remove the step() call", where)
    if not torch.equal(image.detach(), torch.full_like(image, 0.25)):
        _fail(ex, "changes_image", "the image changed: the closure computes the loss and its gradient, the "
              "optimizer moves the image", where)
    _check_returns_tensor(ex, got, where)
    expected = float(loss_fn(image.detach()))
    if got.numel() != 1 or abs(float(got.detach()) - expected) > 1e-9 * abs(expected):
        _fail(ex, "wrong_loss", f"returns {got.detach().flatten()[:3].tolist()}, but loss_fn(image) at the current "
              f"image is {expected:.6g}: return the loss you computed", where)
    true, old = gradient(image.detach()), torch.full_like(image, 7.0)
    grad = image.grad
    if grad is None or torch.equal(grad, old):
        _fail(ex, "no_backward", "image.grad holds no new gradient: call loss.backward() on loss_fn(image) (the "
              "arguments, not global variables), after optimizer.zero_grad(), not before it", where)
    if not grad.any():
        _fail(ex, "zeroed_after", "image.grad is zero after the closure: zero the gradients before loss.backward(), "
              "not after", where)
    if torch.allclose(grad, old + true, rtol=1e-9, atol=0):
        _fail(ex, "accumulates", "gradients accumulate: image.grad holds the old gradient plus the new one. Call "
              "optimizer.zero_grad() before loss.backward()", where)
    if not torch.allclose(grad, true, rtol=1e-9, atol=0):
        _fail(ex, "gradient", f"image.grad is not the gradient of loss_fn at the image (max difference "
              f"{_max_diff(grad, true):.3g})", where)
    where = "5 L-BFGS steps (strong Wolfe line search) on a quadratic, from 0"
    start, final = _lbfgs(lambda o, x, f: _call(ex, fn, (o, x, f), where))
    _, reference = _lbfgs(_reference_closure)
    if final > max(10 * reference, 1e-12 * start):
        _fail(ex, "no_convergence", f"L-BFGS did not converge: loss {start:.3g} -> {final:.3g} (the reference closure "
              f"reaches {reference:.1e}). Does the closure evaluate loss_fn(image) afresh at every call? L-BFGS moves "
              "the image between calls", where)
    return (f"clears old gradients, backpropagates and returns the loss; L-BFGS converges on a quadratic "
            f"(loss {start:.2g} -> {final:.0e}, reference {reference:.0e})")


EXERCISES["closure"] = Exercise(
    "closure", 1, "closure(optimizer, image, loss_fn)", "nstlib.optimize (its L-BFGS closure)", _check_closure,
    mistakes=tuple(Mistake(k, "") for k in ("calls_step", "changes_image", "wrong_loss", "no_backward",
                                            "zeroed_after", "accumulates", "gradient", "no_convergence")))


# ----------------------------------------------------------------------------- 03: Gatys' losses

def _gram_pair_cases() -> list[Case]:
    g = _gen(3)
    cases = []
    for (b, n, h, w), b_a in (((2, 3, 4, 5), 1), ((2, 4, 3, 2), 2), ((1, 5, 2, 3), 1)):
        gg = losses.gram(_randn(g, b, n, h, w))
        a = losses.gram(_randn(g, b_a, n, 3, 3))
        label = f"G of batch {b}, A of batch {b_a}, N = {n} channels (float64)"
        cases.append(Case(label, (gg, a), dict(B=b, N=n, N2x4=4 * n * n), {"4 N^2": 4 * n * n, "N": n, "B": b}))
    gg = losses.gram(_randn(g, 2, 3, 2, 2))
    cases.append(Case("G = A, batch 2, N = 3 (float64)", (gg, gg.clone()), dict(B=2, N=3, N2x4=36), {}))
    return cases


def _sse(g, a):
    return (g - a).pow(2).sum()


_exercise(
    "style_layer_loss", 3, "style_layer_loss(g, a)", losses.style_layer_loss, "nstlib.losses.style_layer_loss",
    _gram_pair_cases, grad=("g",),
    mistakes=(
        Mistake("no_denominator", "off by 4 N^2 = {N2x4}: divide ||G - A||_F^2 by 4 N_l^2 (N = {N} channels)", _sse),
        Mistake("missing_4", "off by a factor 4: the denominator is 4 N_l^2, not N_l^2",
                lambda g, a: _sse(g, a) / g.shape[-1] ** 2),
        Mistake("N_not_squared", "off by a factor N = {N}: N_l is squared in 4 N_l^2",
                lambda g, a: _sse(g, a) / (4 * g.shape[-1])),
        Mistake("mean_entries", "averaged over the entries: E_l sums the squared differences over all N^2 entries "
                "(and over the batch), then divides by 4 N^2", lambda g, a: (g - a).expand_as(g).pow(2).mean()
                / (4 * g.shape[-1] ** 2)),
        Mistake("batch_mean", "averaged over the batch (divided by B = {B}): sum over it",
                lambda g, a: _sse(g, a) / (4 * g.shape[-1] ** 2) / g.shape[0]),
        Mistake("no_square", "missing the square: ||G - A||_F^2 is the sum of squared entries; torch.norm gives its "
                "square root", lambda g, a: torch.linalg.vector_norm(g - a.expand_as(g)) / (4 * g.shape[-1] ** 2)),
        Mistake("abs", "square the differences: ||G - A||_F^2 = sum (G - A)^2, not sum |G - A|",
                lambda g, a: (g - a).expand_as(g).abs().sum() / (4 * g.shape[-1] ** 2)),
    ))


def _style_cases() -> list[Case]:
    g = _gen(4)
    cases = []
    for shapes, b, weights in (({"conv1_1": (3, 4, 5), "conv2_1": (4, 3, 2)}, 2, (0.25, 2.0)),
                               ({"conv1_1": (2, 5, 3), "conv2_1": (3, 4, 4), "conv3_1": (5, 2, 2)}, 1, (1.0, 0.5, 3.0)),
                               ({"conv4_1": (4, 2, 3)}, 3, (0.7,))):
        feats = {k: _randn(g, b, n, h, w) for k, (n, h, w) in shapes.items()}
        targets = {k: losses.gram(_randn(g, 1, n, 3, 4)) for k, (n, h, w) in shapes.items()}
        wts = dict(zip(shapes, weights))
        label = f"{len(shapes)} layers, batch {b}, weights {wts} (float64)"
        cases.append(Case(label, (feats, targets, wts), dict(L=len(shapes)), {"L (layers)": len(shapes)}))
    return cases


def _e(f, a, gram=losses.gram, denominator=True):
    n = f.shape[1]
    return _sse(gram(f), a) / (4 * n * n if denominator else 1)


_exercise(
    "style_loss", 3, "style_loss(features, targets, weights)", losses.style_loss, "nstlib.losses.style_loss",
    _style_cases, grad=("features",),
    mistakes=(
        Mistake("weights_ignored", "the layer weights are ignored: multiply each E_l by w_l",
                lambda f, t, w: sum(_e(f[k], t[k]) for k in t)),
        Mistake("weights_ignored", "the layer weights are ignored: use the given w_l, not 1/L",
                lambda f, t, w: sum(_e(f[k], t[k]) for k in t) / len(t)),
        Mistake("divided_by_L", "divided by the number of layers L = {L}: Eq. 5 is sum_l w_l E_l (the weights "
                "already hold any 1/L)", lambda f, t, w: sum(w[k] * _e(f[k], t[k]) for k in t) / len(t)),
        Mistake("gram_not_normalised", "your Gram matrices are not divided by M = H*W: use G = F F^T / M "
                "(exercise 02, nstlib.losses.gram), as the targets are",
                lambda f, t, w: sum(w[k] * _e(f[k], t[k], lambda x: _flat(x) @ _flat(x).transpose(1, 2)) for k in t)),
        Mistake("no_denominator", "each E_l divides ||G - A||_F^2 by 4 N_l^2 (Eq. 4)",
                lambda f, t, w: sum(w[k] * _e(f[k], t[k], denominator=False) for k in t)),
    ))


def _total_loss_reference(content, style, alpha, beta):
    """Gatys Eq. 7: L_total = alpha L_content + beta L_style (nstlib.optimize weighs its terms so)."""
    return alpha * content + beta * style


def _total_cases() -> list[Case]:
    t = lambda v: torch.tensor(v, dtype=torch.float64)  # noqa: E731
    return [Case(f"content {c}, style {s}, alpha {a}, beta {b} (float64 scalars)", (t(c), t(s), a, b))
            for c, s, a, b in ((2.5, 0.7, 1.0, 1e3), (0.3, 4.0, 5.0, 0.01), (1.5, 2.0, 0.0, 1.0))]


_exercise(
    "total_loss", 3, "total_loss(content, style, alpha, beta)", _total_loss_reference,
    "alpha * content + beta * style (Gatys Eq. 7)", _total_cases, grad=("content", "style"),
    mistakes=(
        Mistake("swapped", "alpha weighs the content loss and beta the style loss: you swapped them",
                lambda c, s, a, b: a * s + b * c),
        Mistake("normalised", "don't divide by alpha + beta: L_total = alpha L_content + beta L_style",
                lambda c, s, a, b: (a * c + b * s) / (a + b)),
        Mistake("one_minus_alpha", "beta is a weight of its own, not 1 - alpha: alpha L_content + beta L_style",
                lambda c, s, a, b: a * c + (1 - a) * s),
    ))


def _tv_cases() -> list[Case]:
    g = _gen(6)
    cases = []
    for shape in ((2, 3, 4, 5), (1, 3, 1, 6), (1, 1, 3, 2), (2, 3, 6, 6)):
        x, label, ctx, fac = _features(g, *shape)
        cases.append(Case(label.replace("channels", "colour channels"), (x.sigmoid(),), ctx,
                          {"B*C*H*W": ctx["numel"], "B": shape[0]}))
    return cases


def _dx(x):
    return x[..., :, 1:] - x[..., :, :-1]  # (B, C, H, W-1)


def _dy(x):
    return x[..., 1:, :] - x[..., :-1, :]  # (B, C, H-1, W)


_exercise(
    "tv_loss", 3, "tv_loss(image)", losses.tv_loss, "nstlib.losses.tv_loss", _tv_cases, grad=("image",),
    mistakes=(
        Mistake("mean", "averaged: L_tv sums the squared differences over every pair of neighbours and every image", (
            lambda x: _dx(x).pow(2).mean() + _dy(x).pow(2).mean(),
            lambda x: (_dx(x).pow(2).sum() + _dy(x).pow(2).sum()) / x.numel())),
        Mistake("abs", "absolute differences give the L1 total variation; this one squares them "
                "(Mahendran & Vedaldi's beta = 2)", lambda x: _dx(x).abs().sum() + _dy(x).abs().sum()),
        Mistake("only_horizontal", "only horizontal neighbours, x[..., :, 1:] - x[..., :, :-1]: add the vertical "
                "ones, x[..., 1:, :] - x[..., :-1, :]", lambda x: _dx(x).pow(2).sum()),
        Mistake("only_vertical", "only vertical neighbours, x[..., 1:, :] - x[..., :-1, :]: add the horizontal "
                "ones, x[..., :, 1:] - x[..., :, :-1]", lambda x: _dy(x).pow(2).sum()),
        Mistake("wraps", "torch.roll wraps around: it adds the difference between the last and the first "
                "row/column. Slice instead: x[..., :, 1:] - x[..., :, :-1]",
                lambda x: (x.roll(1, -1) - x).pow(2).sum() + (x.roll(1, -2) - x).pow(2).sum()),
        Mistake("isotropic", "no square root: the course's TV sums dx^2 + dy^2 (not sqrt(dx^2 + dy^2), the "
                "isotropic TV)", lambda x: (_dx(x)[..., :-1, :].pow(2) + _dy(x)[..., :, :-1].pow(2)).sqrt().sum()),
        Mistake("batch_mean", "averaged over the batch (divided by B = {B}): sum over it",
                lambda x: losses.tv_loss(x) / x.shape[0]),
    ))


# ----------------------------------------------------------------------------- 04: unbiased MMD^2

def _mmd_reference(x, y, sigma2):
    return mmd.mmd2(x, y, mmd.gaussian_kernel(sigma2), unbiased=True)


def _mmd_cases() -> list[Case]:
    g = _gen(7)
    cases = []
    for m, n, dim, sigma2, shift in ((6, 9, 3, 2.0, 0.5), (2, 3, 4, 0.7, 1.0), (7, 7, 2, 1.3, 1.0), (5, 5, 3, 3.0, 0.0)):
        x = _randn(g, m, dim)
        y = _randn(g, n, dim) * 1.5 + shift
        note = ", y = x" if shift == 0.0 else ""
        if note:
            y = x.clone()
        label = f"x: {m} samples, y: {n} samples, dimension {dim}, sigma^2 = {sigma2}{note} (float64)"
        cases.append(Case(label, (x, y, sigma2), dict(m=m, n=n, mm1=m * (m - 1), nn1=n * (n - 1)),
                          {"m": m, "n": n, "m(m-1)": m * (m - 1)}))
    return cases


def _d2(x, y):
    return (x[:, None, :] - y[None, :, :]).pow(2).sum(-1)  # (m, n) squared distances


def _mmd_parts(x, y, k):
    """The three kernel matrices under kernel k(d2)."""
    return k(_d2(x, x)), k(_d2(y, y)), k(_d2(x, y))


def _offdiag(kk):
    return kk.sum() - kk.diagonal().sum()


def _mmd_variant(x, y, s2, kernel=None, xx=None, yy=None, cross=None):
    kernel = kernel or (lambda d: torch.exp(-d / (2 * s2)))
    kxx, kyy, kxy = _mmd_parts(x, y, kernel)
    m, n = len(x), len(y)
    xx = xx(kxx, m, n) if xx else _offdiag(kxx) / (m * (m - 1))
    yy = yy(kyy, m, n) if yy else _offdiag(kyy) / (n * (n - 1))
    cross = cross(kxy, m, n) if cross else 2 * kxy.mean()
    return xx + yy - cross


_exercise(
    "mmd2_unbiased", 4, "mmd2_unbiased(x, y, sigma2)", _mmd_reference, "nstlib.mmd.mmd2(x, y, "
    "gaussian_kernel(sigma2), unbiased=True)", _mmd_cases, grad=("x", "y"),
    mistakes=(
        Mistake("biased", "that is the biased V-statistic: the unbiased estimate leaves out the a = b terms "
                "k(x_a, x_a) = 1 of K_xx and K_yy and divides by m(m-1) = {mm1} and n(n-1) = {nn1}",
                lambda x, y, s2: _mmd_variant(x, y, s2, xx=lambda k, m, n: k.mean(), yy=lambda k, m, n: k.mean())),
        Mistake("diag_removed_wrong_count", "divide the sums without the diagonal by the number of pairs a != b, "
                "m(m-1) = {mm1} and n(n-1) = {nn1}, not by m^2 and n^2",
                lambda x, y, s2: _mmd_variant(x, y, s2, xx=lambda k, m, n: _offdiag(k) / m**2,
                                              yy=lambda k, m, n: _offdiag(k) / n**2)),
        Mistake("diag_kept", "leave out the diagonal terms k(x_a, x_a) (a = b) of K_xx and K_yy: sum over a != b",
                lambda x, y, s2: _mmd_variant(x, y, s2, xx=lambda k, m, n: k.sum() / (m * (m - 1)),
                                              yy=lambda k, m, n: k.sum() / (n * (n - 1)))),
        Mistake("swapped_counts", "K_xx's sum divides by m(m-1) with m = len(x) = {m}, K_yy's by n(n-1) with "
                "n = len(y) = {n}: you swapped them",
                lambda x, y, s2: _mmd_variant(x, y, s2, xx=lambda k, m, n: _offdiag(k) / (n * (n - 1)),
                                              yy=lambda k, m, n: _offdiag(k) / (m * (m - 1)))),
        Mistake("cross_diag", "the cross term keeps every pair: x and y are different samples, so "
                "-2/(m n) sum_{{a,b}} k(x_a, y_b) has no diagonal to leave out", (
            lambda x, y, s2: _mmd_variant(x, y, s2, cross=lambda k, m, n: 2 * _offdiag(k) / (m * n)),
            lambda x, y, s2: _mmd_variant(x, y, s2, cross=lambda k, m, n: 2 * _offdiag(k) / (m * (n - 1))))),
        Mistake("cross_no_2", "the cross term has a factor 2: - 2/(m n) sum_{{a,b}} k(x_a, y_b)",
                lambda x, y, s2: _mmd_variant(x, y, s2, cross=lambda k, m, n: k.mean())),
        Mistake("kernel_no_2", "the Gaussian kernel is exp(-||x - y||^2 / (2 sigma^2)): the 2 is missing",
                lambda x, y, s2: _mmd_variant(x, y, s2, kernel=lambda d: torch.exp(-d / s2))),
        Mistake("sigma_squared_again", "sigma2 is sigma^2 already: k = exp(-||x - y||^2 / (2 sigma2)), don't "
                "square it again", lambda x, y, s2: _mmd_variant(x, y, s2, kernel=lambda d: torch.exp(-d / (2 * s2**2)))),
        Mistake("distance_not_squared", "use the squared distance ||x - y||^2 in the kernel, not ||x - y||",
                lambda x, y, s2: _mmd_variant(x, y, s2, kernel=lambda d: torch.exp(-d.sqrt() / (2 * s2)))),
    ))


# ----------------------------------------------------------------------------- 05: AdaIN

def _adain_cases() -> list[Case]:
    g = _gen(8)
    cases = []
    for (cs, ss, eps, note) in (((2, 3, 4, 5), (2, 3, 3, 6), 1e-5, ""),
                                ((2, 4, 3, 2), (1, 4, 5, 4), 1e-5, ", one style for the batch"),
                                ((1, 3, 2, 3), (1, 3, 2, 2), 0.5, ""),
                                ((2, 2, 3, 4), (2, 2, 4, 3), 1e-5, ", content channel 1 of image 0 constant")):
        c = _randn(g, *cs) * 2 + 1
        s = _randn(g, *ss) * 0.5 - 1
        if note.endswith("constant"):
            c[0, 1] = 3.0
        label = f"content {tuple(cs)}, style {tuple(ss)}, eps {eps}{note} (float64)"
        m = cs[2] * cs[3]
        cases.append(Case(label, (c, s, eps), dict(M=m, Mm1=m - 1, eps=eps),
                          {"sqrt(M/(M-1))": (m / (m - 1)) ** 0.5}))
    return cases


def _stats(x, eps, dims=(2, 3), unbiased=False, where="inside"):
    mu = x.mean(dim=dims, keepdim=True)
    var = x.var(dim=dims, keepdim=True, unbiased=unbiased)
    sigma = {"inside": lambda: (var + eps).sqrt(), "outside": lambda: var.sqrt() + eps,
             "none": lambda: var.sqrt(), "variance": lambda: var + eps}[where]()
    return mu, sigma


def _adain_variant(c, s, eps, **options):
    mu_c, sd_c = _stats(c, eps, **options)
    mu_s, sd_s = _stats(s, eps, **options)
    return sd_s * (c - mu_c) / sd_c + mu_s


_UNBIASED = ("torch's .std() and .var() divide by H*W - 1 by default (unbiased){}; AdaIN's sigma divides by "
             "H*W: use .var(dim=(2, 3), keepdim=True, unbiased=False) (or correction=0)")

_exercise(
    "adain", 5, "adain(content, style, eps)", adain_lib.adain, "nstlib.adain.adain", _adain_cases,
    grad=("content", "style"),
    mistakes=(
        Mistake("unbiased", _UNBIASED.format(": the content's sigma is sqrt(M/(M-1)) = sqrt({M}/{Mm1}) too large"),
                lambda c, s, eps: adain_lib.adain(c, s, eps, unbiased=True)),
        Mistake("torch_std", "x.std(...) is unbiased (divides by H*W - 1) and has no eps: sigma = "
                "sqrt(x.var(dim=(2, 3), unbiased=False) + eps)",
                lambda c, s, eps: _adain_variant(c, s, eps, unbiased=True, where="none")),
        Mistake("eps_outside", "eps goes inside the square root: sigma = sqrt(var + eps), not sqrt(var) + eps",
                lambda c, s, eps: _adain_variant(c, s, eps, where="outside")),
        Mistake("no_eps", "sigma needs eps: sqrt(var + eps) (a constant channel has var = 0; eps keeps the "
                "division finite)", lambda c, s, eps: _adain_variant(c, s, eps, where="none")),
        Mistake("no_sqrt", "sigma is the standard deviation, sqrt(var + eps), not the variance",
                lambda c, s, eps: _adain_variant(c, s, eps, where="variance")),
        Mistake("over_channels", "the statistics are per channel: mean and std over H and W only "
                "(dim=(2, 3), keepdim=True), not over the channels too",
                lambda c, s, eps: _adain_variant(c, s, eps, dims=(1, 2, 3))),
        Mistake("over_batch", "the statistics are per image: you pooled the batch (that is batch norm); "
                "use dim=(2, 3)", lambda c, s, eps: _adain_variant(c, s, eps, dims=(0, 2, 3))),
        Mistake("swapped", "content and style swapped: normalise the content features, then give them the style's "
                "statistics, sigma(y) (x - mu(x)) / sigma(x) + mu(y)", lambda c, s, eps: adain_lib.adain(s, c, eps)),
        Mistake("no_shift", "missing + mu(style): the output takes the style's mean as well as its std",
                lambda c, s, eps: adain_lib.adain(c, s, eps) - s.mean(dim=(2, 3), keepdim=True)),
        Mistake("not_centred", "subtract the content's mean before dividing by its std: (x - mu(x)) / sigma(x)",
                lambda c, s, eps: adain_lib.adain(c, s, eps) + _stats(s, eps)[1] * c.mean(dim=(2, 3), keepdim=True)
                / _stats(c, eps)[1]),
    ))


def _adain_style_loss_reference(output_feats, style_feats):
    """Huang & Belongie's Eq. 13 as nstlib.adain.decoder_losses computes it: summed over layers,
    each term a mean squared difference of the (B, C, 1, 1) means and stds (adain.mean_std)."""
    total = 0.0
    for layer in style_feats:
        mu_o, sd_o = adain_lib.mean_std(output_feats[layer])
        mu_s, sd_s = adain_lib.mean_std(style_feats[layer])
        total = total + F.mse_loss(mu_o, mu_s) + F.mse_loss(sd_o, sd_s)
    return total


def _adain_loss_cases() -> list[Case]:
    g = _gen(9)
    cases = []
    for b, shapes in ((2, {"relu1_1": ((3, 4, 5), (3, 6)), "relu2_1": ((5, 2, 3), (3, 2))}),
                      (1, {"relu1_1": ((2, 6, 4), (5, 5)), "relu2_1": ((3, 3, 3), (2, 4)), "relu3_1": ((4, 2, 2), (3, 3)),
                           "relu4_1": ((6, 1, 3), (2, 2))}),
                      (3, {"relu4_1": ((4, 3, 2), (2, 5))})):
        out = {k: _randn(g, b, c, h, w) * 2 + 1 for k, ((c, h, w), _) in shapes.items()}
        style = {k: _randn(g, b, c, hs, ws).abs() for k, ((c, _, _), (hs, ws)) in shapes.items()}
        label = f"{len(shapes)} layers, batch {b} (float64)"
        cases.append(Case(label, (out, style), dict(L=len(shapes)), {"L (layers)": len(shapes)}))
    return cases


def _adain_loss_variant(out, style, stat=None, mean_term=True, std_term=True, dist=F.mse_loss):
    stat = stat or (lambda x: _stats(x, adain_lib.EPS))
    total = 0.0
    for layer in style:
        (mu_o, sd_o), (mu_s, sd_s) = stat(out[layer]), stat(style[layer])
        total = total + (dist(mu_o, mu_s) if mean_term else 0) + (dist(sd_o, sd_s) if std_term else 0)
    return total


_exercise(
    "adain_style_loss", 5, "adain_style_loss(output_feats, style_feats)", _adain_style_loss_reference,
    "the style loss of nstlib.adain.decoder_losses", _adain_loss_cases, grad=("output_feats",),
    mistakes=(
        Mistake("summed", "each ||.||^2 is averaged over its B*C entries (F.mse_loss, as in the authors' code): you "
                "summed them", lambda o, s: _adain_loss_variant(o, s, dist=lambda a, b: (a - b).pow(2).sum())),
        Mistake("means_only", "missing the std term ||sigma(phi(g(t))) - sigma(phi(s))||^2",
                lambda o, s: _adain_loss_variant(o, s, std_term=False)),
        Mistake("stds_only", "missing the mean term ||mu(phi(g(t))) - mu(phi(s))||^2",
                lambda o, s: _adain_loss_variant(o, s, mean_term=False)),
        Mistake("unbiased", _UNBIASED.format(""),
                lambda o, s: _adain_loss_variant(o, s, stat=lambda x: _stats(x, adain_lib.EPS, unbiased=True))),
        Mistake("no_eps", "sigma = sqrt(var + eps) with eps = 1e-5, as nstlib.adain.mean_std",
                lambda o, s: _adain_loss_variant(o, s, stat=lambda x: _stats(x, 0.0))),
        Mistake("layer_mean", "sum over the L = {L} layers, don't average them",
                lambda o, s: _adain_loss_variant(o, s) / len(s)),
        Mistake("l1", "squared differences (F.mse_loss), not absolute ones",
                lambda o, s: _adain_loss_variant(o, s, dist=F.l1_loss)),
    ))


# ----------------------------------------------------------------------------- 06: StyleBank

def _bank_reference(features, weight):
    """K_i (x) F as a StyleBank bank computes it (stylebank.build_bank: reflection padding of 1,
    then a 3x3 convolution without bias)."""
    return F.conv2d(F.pad(features, (1, 1, 1, 1), mode="reflect"), weight)


def _bank_cases() -> list[Case]:
    g = _gen(10)
    cases = []
    for (b, c, h, w), c_out in (((2, 3, 4, 5), 3), ((1, 4, 3, 6), 2), ((2, 2, 5, 3), 5)):
        f, label, ctx, fac = _features(g, b, c, h, w)
        k = _randn(g, c_out, c, 3, 3)
        cases.append(Case(label.replace(" (float64)", f", {c_out} output channels (float64)"), (f, k), ctx, fac))
    return cases


def _pad(f, mode):
    return F.pad(f, (1, 1, 1, 1), mode=mode)


_exercise(
    "bank_conv", 6, "bank_conv(features, weight)", _bank_reference, "a StyleBank bank (nstlib.stylebank.build_bank)",
    _bank_cases, grad=("features", "weight"),
    mistakes=(
        Mistake("zero_padding", "zero padding: the bank pads by reflection, F.pad(features, (1, 1, 1, 1), "
                "mode='reflect'), like every StyleBank layer", lambda f, k: F.conv2d(f, k, padding=1)),
        Mistake("replicate", "replicate padding: StyleBank pads by reflection (mode='reflect')",
                lambda f, k: F.conv2d(_pad(f, "replicate"), k)),
        Mistake("circular", "circular padding wraps around: StyleBank pads by reflection (mode='reflect')",
                lambda f, k: F.conv2d(_pad(f, "circular"), k)),
        Mistake("no_padding", "no padding: the output is {Hm2} x {Wm2}; pad by 1 on every side first (reflection) "
                "so that it stays {H} x {W}", lambda f, k: F.conv2d(f, k)),
        Mistake("transposed_weight", "the weight is (C_out, C_in, 3, 3), as PyTorch stores it: don't swap its first "
                "two dimensions", lambda f, k: F.conv2d(_pad(f, "reflect"), k.transpose(0, 1))),
        Mistake("flipped", "don't flip the kernel: F.conv2d (like the (x) of deep-learning papers) is a "
                "cross-correlation", lambda f, k: F.conv2d(_pad(f, "reflect"), k.flip(-1, -2))),
        Mistake("kernel_transposed", "the kernel's rows and columns are swapped: use weight as it is",
                lambda f, k: F.conv2d(_pad(f, "reflect"), k.transpose(-1, -2))),
    ))


def _reference_autoencoder_step(step: int, T: int) -> bool:
    """nstlib.stylebank_training.train_stylebank's rule: steps count from 0; each round is T
    stylising steps, then one auto-encoder step, so step t is the auto-encoder's when
    t % (T + 1) == T."""
    return step % (T + 1) == T


def _pattern(flags) -> str:
    return " ".join("A" if f else "S" for f in flags)


def _check_schedule(ex: Exercise, fn: Callable) -> str:
    for T in (2, 3, 5, 1):  # T = 1 last: there "every T steps" and "always" look alike
        steps = range(3 * (T + 1))
        where = f"T = {T}, steps 0..{steps[-1]}"
        got = []
        for t in steps:
            answer = _call(ex, fn, (t, T), where)
            if not (isinstance(answer, bool) or type(answer).__name__ == "bool_" or answer in (0, 1)):
                _fail(ex, "returns_other", f"returns {answer!r} at step {t}: return True for an auto-encoder step, "
                      "False for a stylising step", where)
            got.append(bool(answer))
        expected = [_reference_autoencoder_step(t, T) for t in steps]
        if got == expected:
            continue
        where += f": expected {_pattern(expected)}, got {_pattern(got)} (S stylising, A auto-encoder)"
        if got == [t % (T + 1) == 0 for t in steps]:
            _fail(ex, "autoencoder_first", "the auto-encoder step comes after the T stylising steps: steps count from "
                  "0, so steps 0..T-1 stylise and step T reconstructs (step % (T + 1) == T)", where)
        if got in ([t % T == T - 1 for t in steps], [t % T == 0 for t in steps]):
            _fail(ex, "period_T", "one round is T + 1 steps (T stylising, then 1 auto-encoder): use step % (T + 1)",
                  where)
        if not any(got):
            _fail(ex, "never", "never an auto-encoder step: every T stylising steps are followed by one", where)
        if all(got):
            _fail(ex, "always", "always an auto-encoder step: only one step in T + 1 is", where)
        _fail(ex, "values", "not the (T+1) alternation: T stylising steps, then one auto-encoder step", where)
    return "4 values of T match nstlib.stylebank_training (step % (T + 1) == T: T stylising steps, then one auto-encoder)"


EXERCISES["autoencoder_step"] = Exercise(
    "autoencoder_step", 6, "autoencoder_step(step, T)", "nstlib.stylebank_training", _check_schedule,
    mistakes=tuple(Mistake(k, "") for k in ("returns_other", "never", "always", "autoencoder_first", "period_T")))


# ----------------------------------------------------------------------------- 07: CycleGAN

def _score_cases(two: bool) -> Callable[[], list[Case]]:
    """PatchGAN score maps (B, 1, h, w); with `two`, real and fake maps, the first pair of different
    batch sizes (the fakes come from the image pool)."""
    def cases():
        g = _gen(11)
        shapes = (((2, 1, 5, 6), (3, 1, 5, 6)), ((1, 1, 4, 4), (1, 1, 4, 4)), ((2, 1, 3, 5), (2, 1, 3, 5)))
        if two:
            return [Case(f"real scores {r}, fake scores {f} (float64)", (_randn(g, *r), _randn(g, *f)))
                    for r, f in shapes]
        ones = torch.ones(2, 1, 3, 3, dtype=torch.float64)
        return [*(Case(f"scores {f} (float64)", (_randn(g, *f),)) for _, f in shapes),
                Case("scores all 1 (float64)", (ones,))]
    return cases


def _lsgan_generator_reference(fake_scores):
    return cyclegan.lsgan_loss(fake_scores, True)


def _lsgan_discriminator_reference(real_scores, fake_scores):
    """L_D = 0.5 (mean (D(b) - 1)^2 + mean D(G(a))^2), as nstlib.cyclegan_training.cyclegan_step."""
    return 0.5 * (cyclegan.lsgan_loss(real_scores, True) + cyclegan.lsgan_loss(fake_scores, False))


_LEAST_SQUARES = "least squares (LSGAN), not cross-entropy: "

_exercise(
    "lsgan_generator_loss", 7, "lsgan_generator_loss(fake_scores)", _lsgan_generator_reference,
    "nstlib.cyclegan.lsgan_loss(fake_scores, real=True)", _score_cases(False), grad=("fake_scores",),
    mistakes=(
        Mistake("target_zero", "the generator wants D to call its images real: target 1, mean (D(G(a)) - 1)^2 "
                "(target 0 is the discriminator's, for fakes)", lambda s: s.pow(2).mean()),
        Mistake("sum", "average over every score (PatchGAN: one per patch, and the batch), don't sum",
                lambda s: (s - 1).pow(2).sum()),
        Mistake("bce", _LEAST_SQUARES + "mean (D(G(a)) - 1)^2",
                lambda s: F.binary_cross_entropy_with_logits(s, torch.ones_like(s))),
        Mistake("abs", "square the differences: mean (D(G(a)) - 1)^2", lambda s: (s - 1).abs().mean()),
        Mistake("half", "no 1/2 on the generator's loss: only the discriminator's loss is halved",
                lambda s: 0.5 * (s - 1).pow(2).mean()),
    ))

_exercise(
    "lsgan_discriminator_loss", 7, "lsgan_discriminator_loss(real_scores, fake_scores)",
    _lsgan_discriminator_reference, "0.5 (lsgan_loss(real, True) + lsgan_loss(fake, False)) "
    "(nstlib.cyclegan_training)", _score_cases(True), grad=("real_scores", "fake_scores"),
    mistakes=(
        Mistake("no_half", "off by a factor 2: CycleGAN halves the discriminator's loss, 0.5 (mean (D(b) - 1)^2 + "
                "mean D(G(a))^2), so that D learns more slowly than G",
                lambda r, f: (r - 1).pow(2).mean() + f.pow(2).mean()),
        Mistake("swapped", "real images should score 1 and fakes 0: you swapped the targets",
                lambda r, f: 0.5 * (r.pow(2).mean() + (f - 1).pow(2).mean())),
        Mistake("one_mean", "average each term on its own, 0.5 (mean over real + mean over fake): one mean over "
                "both sets weighs the larger set more", (
            lambda r, f: 0.5 * torch.cat([(r - 1).pow(2).flatten(), f.pow(2).flatten()]).mean(),
            lambda r, f: torch.cat([(r - 1).pow(2).flatten(), f.pow(2).flatten()]).mean())),
        Mistake("sum", "average over the scores, don't sum them",
                lambda r, f: 0.5 * ((r - 1).pow(2).sum() + f.pow(2).sum())),
        Mistake("bce", _LEAST_SQUARES + "0.5 (mean (D(b) - 1)^2 + mean D(G(a))^2)",
                lambda r, f: 0.5 * (F.binary_cross_entropy_with_logits(r, torch.ones_like(r))
                                    + F.binary_cross_entropy_with_logits(f, torch.zeros_like(f)))),
    ))


def _cycle_cases() -> list[Case]:
    g = _gen(12)
    cases = []
    for shape in ((2, 3, 4, 5), (1, 3, 6, 2)):
        x, label, ctx, fac = _features(g, *shape)
        cases.append(Case(label.replace("channels", "colour channels"), (x.tanh(), _randn(g, *shape).tanh()),
                          ctx, {"B*C*H*W": ctx["numel"]}))
    x = _randn(g, 2, 3, 3, 3).tanh()
    cases.append(Case("reconstruction = original (float64)", (x, x.clone())))
    return cases


_exercise(
    "cycle_loss", 7, "cycle_loss(reconstructed, original)", cyclegan.cycle_loss, "nstlib.cyclegan.cycle_loss",
    _cycle_cases, grad=("reconstructed",),
    mistakes=(
        Mistake("squared", "L1: mean |F(G(a)) - a|, not squared differences (Zhu et al. Eq. 2; L2 blurs)",
                lambda r, o: (r - o).pow(2).mean()),
        Mistake("sum", "average over pixels (and the batch), don't sum: mean |F(G(a)) - a|",
                lambda r, o: (r - o).abs().sum()),
        Mistake("weighted", "return the unweighted L1 distance: lambda = 10 multiplies it in the total loss",
                lambda r, o: cyclegan.CYCLE_WEIGHT * (r - o).abs().mean()),
        Mistake("no_abs", "take absolute values, mean |F(G(a)) - a|: signed errors cancel",
                lambda r, o: (r - o).mean()),
    ))


# ----------------------------------------------------------------------------- 08: instance norm

def _instance_norm_reference(x, gamma, beta, eps):
    """IN(x) = gamma (x - mu) / sqrt(var + eps) + beta per image and channel, biased variance: what
    nstlib.johnson's nn.InstanceNorm2d(C, eps=johnson.EPS, affine=True) layers compute."""
    return F.instance_norm(x, weight=gamma, bias=beta, eps=eps)


def _in_cases() -> list[Case]:
    g = _gen(13)
    cases = []
    for (b, c, h, w), eps, note in (((2, 3, 4, 3), johnson.EPS, ""), ((1, 4, 3, 5), 0.5, ""),
                                    ((2, 2, 3, 4), johnson.EPS, ", channel 0 of image 1 constant")):
        x = _randn(g, b, c, h, w) * 3 + 2
        if note:
            x[1, 0] = -1.0
        gamma, beta = _randn(g, c) + 1.5, _randn(g, c)
        label = f"x {(b, c, h, w)}, eps {eps}{note} (float64)"
        cases.append(Case(label, (x, gamma, beta, eps), dict(eps=eps, M=h * w, Mm1=h * w - 1),
                          {"sqrt(M/(M-1))": (h * w / (h * w - 1)) ** 0.5}))
    return cases


def _in_variant(x, gamma, beta, eps, dims=(2, 3), unbiased=False, where="inside", affine=None):
    mu, sigma = _stats(x, eps, dims, unbiased, where)
    x_hat = (x - mu) / sigma
    return affine(x_hat, gamma, beta) if affine else x_hat * gamma[:, None, None] + beta[:, None, None]


_exercise(
    "instance_norm", 8, "instance_norm(x, gamma, beta, eps)", _instance_norm_reference,
    "torch.nn.InstanceNorm2d(C, eps, affine=True), as nstlib.johnson's layers", _in_cases,
    grad=("x", "gamma", "beta"),
    mistakes=(
        Mistake("unbiased", "instance norm uses the biased variance, divided by H*W (not H*W - 1: that makes it "
                "M/(M-1) = {M}/{Mm1} too large): .var(dim=(2, 3), keepdim=True, unbiased=False)",
                lambda x, g, b, eps: _in_variant(x, g, b, eps, unbiased=True)),
        Mistake("eps_outside", "eps goes inside the square root: sqrt(var + eps), not sqrt(var) + eps",
                lambda x, g, b, eps: _in_variant(x, g, b, eps, where="outside")),
        Mistake("no_eps", "divide by sqrt(var + eps): without eps a constant channel divides 0 by 0",
                lambda x, g, b, eps: _in_variant(x, g, b, eps, where="none")),
        Mistake("pytorch_eps", "use the eps argument ({eps}; Johnson's network was trained with 1e-3), not "
                "PyTorch's default 1e-5", lambda x, g, b, eps: _in_variant(x, g, b, 1e-5)),
        Mistake("no_sqrt", "divide by the standard deviation sqrt(var + eps), not by the variance",
                lambda x, g, b, eps: _in_variant(x, g, b, eps, where="variance")),
        Mistake("over_batch", "the statistics are per image and channel: you pooled the batch (that is batch "
                "norm); use dim=(2, 3)", lambda x, g, b, eps: _in_variant(x, g, b, eps, dims=(0, 2, 3))),
        Mistake("over_channels", "the statistics are per channel: mean and variance over H and W only, not over "
                "the channels too (that is layer norm)", lambda x, g, b, eps: _in_variant(x, g, b, eps, dims=(1, 2, 3))),
        Mistake("swapped_affine", "gamma scales and beta shifts: gamma * x_hat + beta",
                lambda x, g, b, eps: _in_variant(x, b, g, eps)),
        Mistake("broadcast_last", "gamma and beta are per channel: reshape them to (1, C, 1, 1) (gamma[:, None, None]) "
                "so that they scale channels, not columns",
                lambda x, g, b, eps: _in_variant(x, g, b, eps, affine=lambda xh, g_, b_: xh * g_ + b_)),
    ))


# ----------------------------------------------------------------------------- 09: patches, photorealism

def _mrf_energy_reference(features, style_patches):
    """Li & Wand Eq. 2 with Eq. 3's matching: nstlib.mrf.mrf_loss, its own nearest-patch search."""
    return mrf.mrf_loss(features, style_patches)


def _mrf_cases() -> list[Case]:
    g = _gen(17)
    cases = []
    for (c, h, w), (sc, sh, sw) in (((3, 4, 5), (3, 5, 4)), ((4, 5, 6), (4, 6, 6)), ((2, 3, 3), (2, 4, 5))):
        features = _randn(g, 1, c, h, w)
        # the style's features at several scales: the nearest patch by correlation (angle) is then
        # rarely the nearest by distance or by a raw dot product, so each mistake shows
        style = _randn(g, 1, sc, sh, sw) * torch.linspace(0.2, 3.0, sh * sw, dtype=torch.float64).reshape(1, 1, sh, sw)
        patches = mrf.extract_patches(style)
        positions = (h - 2) * (w - 2)
        label = f"features (1, {c}, {h}, {w}), {patches.shape[0]} style patches of {c} x 3 x 3 (float64)"
        cases.append(Case(label, (features, patches), dict(P=positions),
                          {"the number of output patches": positions, "C*k*k": c * 9}))
    return cases


def _mrf_variant(features, patches, match="correlation", reduce="sum", power=2):
    k = patches.shape[-1]
    out = F.unfold(features, k)[0].t()  # (L, C*k*k)
    ref = patches.flatten(1)  # (P, C*k*k)
    if match == "correlation":
        nearest = (out @ (ref / ref.norm(dim=1, keepdim=True)).t()).argmax(1)
    elif match == "dot":
        nearest = (out @ ref.t()).argmax(1)
    else:  # distance
        nearest = torch.cdist(out.detach(), ref).argmin(1)
    d = (out - ref[nearest]).norm(dim=1) ** power
    return d.sum() if reduce == "sum" else d.mean()


_exercise(
    "mrf_energy", 9, "mrf_energy(features, style_patches)", _mrf_energy_reference, "nstlib.mrf.mrf_loss",
    _mrf_cases, grad=("features",),
    mistakes=(
        Mistake("dot_match", "match by normalised cross-correlation (Eq. 3): divide each style patch by its norm "
                "before the dot product, or the largest style patches win every match",
                lambda f, p: _mrf_variant(f, p, match="dot")),
        Mistake("distance_match", "Li & Wand match by normalised cross-correlation (Eq. 3), the angle between "
                "patches, not by the smallest Euclidean distance",
                lambda f, p: _mrf_variant(f, p, match="distance")),
        Mistake("mean", "Eq. 2 sums over the output patches, it does not average ({P} of them here)",
                lambda f, p: _mrf_variant(f, p, reduce="mean")),
        Mistake("not_squared", "square the distances: ||Psi_i - Psi_NN(i)||^2",
                lambda f, p: _mrf_variant(f, p, power=1)),
    ))


def _matting_reference(output, laplacian):
    """Luan et al. Eq. 2: sum over channels of V_c^T M V_c, V_c channel c flattened row-major."""
    return photorealism.matting_loss(output, laplacian)


def _matting_cases() -> list[Case]:
    g = _gen(19)
    cases = []
    for h, w, same in ((4, 5, False), (5, 3, False), (3, 4, True)):
        photo = torch.rand((1, 3, h, w), generator=g, dtype=torch.float64)
        output = photo.clone() if same else torch.rand((1, 3, h, w), generator=g, dtype=torch.float64)
        laplacian = torch.from_numpy(photorealism.matting_laplacian(photo).toarray())
        label = f"{h} x {w} image, the Laplacian of {'the same image' if same else 'another image'} (float64)"
        cases.append(Case(label, (output, laplacian), dict(N=h * w), {"3 (channels)": 3.0, "N = H*W": h * w}))
    return cases


def _matting_variant(output, laplacian, order="row", channels=3):
    x = output[0, :channels]
    v = (x if order == "row" else x.transpose(1, 2)).reshape(channels, -1)  # (C, N)
    return ((v @ laplacian) * v).sum()


_exercise(
    "matting_energy", 9, "matting_energy(output, laplacian)", _matting_reference, "nstlib.photorealism.matting_loss",
    _matting_cases, grad=("output",),
    mistakes=(
        Mistake("column_major", "flatten each channel row by row (pixel i = y W + x, `output[0, c].reshape(-1)`), the "
                "order the Laplacian's rows are in; transposing first pairs the wrong pixels",
                lambda o, m: _matting_variant(o, m, order="column")),
        Mistake("one_channel", "sum V_c^T M V_c over all three colour channels, not only the first",
                lambda o, m: _matting_variant(o, m, channels=1)),
    ))


# ----------------------------------------------------------------------------- 10: Bradley-Terry

def _bt_reference(wins, strengths):
    """Hunter's MM step with the geometric-mean normalisation: nstlib.preference.mm_step."""
    return torch.from_numpy(preference.mm_step(wins.numpy(), strengths.numpy()))


def _bt_cases() -> list[Case]:
    g = _gen(23)
    cases = []
    for k, note in ((3, ""), (5, ""), (4, ", all strengths 1")):
        wins = torch.randint(0, 6, (k, k), generator=g).double() + 0.5 * (1 - torch.eye(k, dtype=torch.float64))
        wins.fill_diagonal_(0)
        strengths = torch.ones(k, dtype=torch.float64) if note else torch.rand(k, generator=g, dtype=torch.float64) + 0.2
        label = f"{k} methods, wins {wins.int().tolist() if k < 4 else '(5 x 5)'} + 0.5 each way{note} (float64)"
        cases.append(Case(label, (wins, strengths), dict(K=k)))
    return cases


def _bt_variant(wins, p, games=None, won=None, norm="geometric"):
    games = wins + wins.T if games is None else games
    won = wins.sum(1) if won is None else won
    new = won / (games / (p[:, None] + p[None, :])).sum(1)
    if norm == "geometric":
        return new / new.log().mean().exp()
    return new / new.mean() if norm == "arithmetic" else new


_exercise(
    "bradley_terry_step", 10, "bradley_terry_step(wins, strengths)", _bt_reference, "nstlib.preference.mm_step",
    _bt_cases,
    mistakes=(
        Mistake("not_normalised", "divide the new strengths by their geometric mean, exp(mean(log p)): only the "
                "ratios p_i / p_j are identified, and without it the strengths drift from step to step",
                lambda w, p: _bt_variant(w, p, norm=None)),
        Mistake("arithmetic_mean", "normalise by the geometric mean exp(mean(log p)), not the arithmetic mean: the "
                "scores log p then have mean 0", lambda w, p: _bt_variant(w, p, norm="arithmetic")),
        Mistake("one_way_games", "n_ij counts every game between i and j, won by either: n_ij = w_ij + w_ji, not w_ij",
                lambda w, p: _bt_variant(w, p, games=w)),
        Mistake("losses", "W_i is the number of wins of i, the sum of row i (wins[i, j]: i beat j), not of column i",
                lambda w, p: _bt_variant(w, p, won=w.sum(0))),
    ))


# notebook order
EXERCISES = dict(sorted(EXERCISES.items(), key=lambda item: item[1].notebook))
