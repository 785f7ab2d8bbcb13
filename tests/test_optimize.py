"""nstlib.optimize: the image-optimisation loop (L-BFGS and Adam), its loss terms, its bookkeeping
(history, iterations, evaluations, best image), how it stops (non-finite loss, Ctrl-C), its
arguments, and the start images.

Small images (32 px) and shallow layers keep the file fast on a CPU: the loop is the same whatever
the layer, and the VGG is the real one (the session fixture `vgg16`)."""
import math
import warnings

import pytest
import torch

from nstlib.images import resize
from nstlib.losses import content_loss, gram, style_layer_loss, tv_loss
from nstlib.optimize import (ContentTerm, StyleTerm, Term, TVTerm, initial_image,
                             optimize_image, optimize_scales)

CHEAP = ["conv1_2"]  # shallow layer: one VGG evaluation costs little


def _content(h=32, w=32):
    """A smooth synthetic photo: horizontal red ramp, vertical green ramp, a blue disc."""
    yy, xx = torch.meshgrid(torch.linspace(0, 1, h), torch.linspace(0, 1, w), indexing="ij")
    disc = (((xx - 0.5) ** 2 + (yy - 0.5) ** 2) < 0.1).float()
    return torch.stack([xx, yy, 0.1 + 0.8 * disc])[None].clamp(0, 1)


def _style(h=40, w=48):
    """Diagonal stripes, another size than the content."""
    yy, xx = torch.meshgrid(torch.arange(h), torch.arange(w), indexing="ij")
    s = ((xx + yy) // 4 % 2).float()
    return torch.stack([s, 1 - s, 0.5 * s + 0.25])[None]


@pytest.fixture(scope="module")
def content():
    return _content()


@pytest.fixture(scope="module")
def noise(content):
    return initial_image("noise", content, seed=0)


def _start_image(init, vgg):
    """The image the optimiser actually starts from (steps=0 returns it as result.image)."""
    return optimize_image(init, [TVTerm()], steps=0, vgg=vgg, progress=False).image


def _run(init, terms, vgg, **kwargs):
    kwargs.setdefault("progress", False)
    return optimize_image(init, terms, vgg=vgg, **kwargs)


class PixelTerm(Term):
    """A loss on pixels only (no VGG layer): sum (x - 0.25)^2. Records every image and value it
    sees; from evaluation `nan_after` + 1 on it returns NaN, from `interrupt_at` on it raises
    KeyboardInterrupt (as Ctrl-C would, in the middle of an evaluation)."""

    name = "pixel"

    def __init__(self, nan_after=None, interrupt_at=None, weight=1.0):
        super().__init__(weight)
        self.nan_after, self.interrupt_at = nan_after, interrupt_at
        self.images, self.values = [], []

    def value(self, features, image):
        if self.interrupt_at is not None and len(self.values) + 1 >= self.interrupt_at:
            raise KeyboardInterrupt
        if self.nan_after is not None and len(self.values) >= self.nan_after:
            return image.sum() * float("nan")
        v = ((image - 0.25) ** 2).sum()
        self.images.append(image.detach().clone())
        self.values.append(float(v.detach()))
        return v


# ----------------------------------------------------------------------------- it optimises

@pytest.mark.parametrize("line_search", ["strong_wolfe", None])
def test_lbfgs_content_reconstruction_lowers_loss(vgg16, content, noise, line_search):
    r = _run(noise, [ContentTerm(content, ["conv2_1"])], vgg16, steps=6, line_search=line_search)
    total = r.history["total"]
    assert r.stopped == "finished"
    assert total[-1] < total[0] / 3, total
    assert r.best_loss <= min(total)  # history: the last evaluation of each iteration
    if line_search is None:  # one evaluation per iteration: history holds them all
        assert r.best_loss == min(total)
    # the result is closer to the photo's features than the noise was
    with torch.no_grad():
        p = vgg16.extract(content, ["conv2_1"])["conv2_1"]
        before = content_loss(vgg16.extract(noise, ["conv2_1"])["conv2_1"], p)
        after = content_loss(vgg16.extract(r.image, ["conv2_1"])["conv2_1"], p)
    assert after < before / 3


def test_adam_content_reconstruction_lowers_loss(vgg16, content, noise):
    r = _run(noise, [ContentTerm(content, ["conv2_1"])], vgg16, steps=6, optimizer="adam", lr=0.5)
    total = r.history["total"]
    assert total[-1] < total[0] / 3, total
    assert all(b < a for a, b in zip(total, total[1:])), total  # Adam, small steps: monotone here


def test_iterations_and_evaluations(vgg16, content, noise):
    for optimizer in ("lbfgs", "adam"):
        r = _run(noise, [ContentTerm(content, CHEAP)], vgg16, steps=4, optimizer=optimizer,
                 line_search=None)
        assert r.iterations == 4
        assert len(r.history["total"]) == 4
        assert r.evaluations == r.iterations  # one loss evaluation per iteration, no line search
    r = _run(noise, [ContentTerm(content, ["conv2_1"])], vgg16, steps=4, line_search="strong_wolfe")
    assert r.iterations == 4 and len(r.history["total"]) == 4
    assert r.evaluations >= r.iterations
    total = r.history["total"]
    # the line search has room to work: it makes progress (PyTorch's default max_eval for
    # max_iter=1 left it a single trial, and the run got stuck at t = 0)
    assert total[-1] < total[0] / 3, total


def test_zero_steps_returns_start_image(vgg16, content):
    r = _run(content, [TVTerm()], vgg16, steps=0)
    assert r.iterations == 0 and r.evaluations == 0 and r.stopped == "finished"
    assert r.history["total"] == [] and r.history["tv"] == []
    assert r.image.shape == content.shape
    torch.testing.assert_close(r.image, content, atol=2e-3, rtol=0)


# ----------------------------------------------------------------------------- history

def test_history_has_one_key_per_term_and_terms_sum_to_total(vgg16, content, noise):
    style = _style()
    terms = [ContentTerm(content, CHEAP, weight=2.0),
             StyleTerm(style, ["conv1_1", "conv2_1"], weight=1e3),
             TVTerm(weight=0.5)]
    r = _run(noise, terms, vgg16, steps=3, line_search=None)  # history[0]: the start image
    h = r.history
    assert set(h) == {"content", "style", "tv", "total", "seconds"}
    assert all(len(v) == 3 for v in h.values())
    for i in range(3):
        assert h["content"][i] + h["style"][i] + h["tv"][i] == pytest.approx(h["total"][i], rel=1e-5)
        assert min(h["content"][i], h["style"][i], h["tv"][i]) > 0
    assert all(b >= a for a, b in zip(h["seconds"], h["seconds"][1:])) and h["seconds"][0] > 0

    # the first entry is the weighted loss of the start image
    x0 = _start_image(noise, vgg16)
    with torch.no_grad():
        f = vgg16.extract(x0, ["conv1_2", "conv1_1", "conv2_1"])
        p = vgg16.extract(content, CHEAP)["conv1_2"]
        s = vgg16.extract(style, ["conv1_1", "conv2_1"])
        e = [style_layer_loss(gram(f[l]), gram(s[l])) for l in ("conv1_1", "conv2_1")]
        expected_style = 1e3 * (e[0] + e[1]) / 2
    assert h["content"][0] == pytest.approx(2.0 * content_loss(f["conv1_2"], p).item(), rel=1e-4)
    assert h["style"][0] == pytest.approx(expected_style.item(), rel=1e-4)
    assert h["tv"][0] == pytest.approx(0.5 * tv_loss(x0).item(), rel=1e-4)


def test_history_keys_distinct_for_repeated_terms(vgg16, noise):
    r = _run(noise, [TVTerm(weight=1.0), TVTerm(weight=3.0)], vgg16, steps=2, optimizer="adam")
    keys = [k for k in r.history if k not in ("total", "seconds")]
    assert len(keys) == 2 and keys[0] != keys[1]
    a, b = (r.history[k][0] for k in keys)
    assert b == pytest.approx(3.0 * a, rel=1e-6)
    assert a + b == pytest.approx(r.history["total"][0], rel=1e-6)


# ----------------------------------------------------------------------------- pixels, seeds

def test_pixels_stay_in_unit_range_with_huge_adam_lr(vgg16, content, noise):
    seen = []
    # pushes every pixel up without bound: without a constraint they would leave [0, 1]
    class Brighten(Term):
        name = "brighten"

        def value(self, features, image):
            return -image.sum() * 1e3

    r = _run(noise, [Brighten()], vgg16, steps=3, optimizer="adam", lr=1e3,
             callback=lambda step, img, losses: seen.append(img.clone()))
    assert seen[-1].mean() > 0.9  # it did push the pixels to the top of the range
    r2 = _run(noise, [ContentTerm(content, ["conv1_1"])], vgg16, steps=3, optimizer="adam", lr=1e3,
              callback=lambda step, img, losses: seen.append(img.clone()))
    assert len(seen) == 6
    for img in [r.image, r2.image, *seen]:
        assert torch.isfinite(img).all()
        assert img.min() >= 0 and img.max() <= 1


def test_same_seed_same_init_same_result(vgg16, content):
    def once(seed):
        init = initial_image("noise", content, seed=seed)
        return _run(init, [ContentTerm(content, CHEAP)], vgg16, steps=3)

    a, b, c = once(7), once(7), once(8)
    assert torch.equal(a.image, b.image)
    assert a.history["total"] == b.history["total"]
    assert not torch.equal(a.image, c.image)


# ----------------------------------------------------------------------------- targets, VGG calls

def test_targets_computed_once_and_one_vgg_run_per_evaluation(vgg16, content, noise, monkeypatch):
    calls = []
    original = vgg16.extract

    def counting_extract(x, layers):
        calls.append((torch.is_grad_enabled(), list(layers)))
        return original(x, layers)

    prepared = []
    original_prepare = StyleTerm.prepare

    def counting_prepare(self, vgg):
        prepared.append(self)
        return original_prepare(self, vgg)

    monkeypatch.setattr(vgg16, "extract", counting_extract)
    monkeypatch.setattr(StyleTerm, "prepare", counting_prepare)
    style = StyleTerm(_style(), ["conv1_1", "conv2_1"])
    terms = [ContentTerm(content, CHEAP), style, TVTerm()]
    r = _run(noise, terms, vgg16, steps=3, line_search="strong_wolfe")

    assert prepared == [style]
    target_calls = [c for c in calls if not c[0]]
    eval_calls = [c for c in calls if c[0]]
    assert target_calls == [(False, ["conv1_2"]), (False, ["conv1_1", "conv2_1"])]  # TV: none
    assert len(eval_calls) == r.evaluations  # one VGG run per evaluation, whatever the terms
    assert len(calls) == 2 + r.evaluations
    assert all(layers == ["conv1_2", "conv1_1", "conv2_1"] for _, layers in eval_calls)  # union


def test_pixel_only_terms_do_not_run_the_vgg(vgg16, noise, monkeypatch):
    def fail(*args, **kwargs):
        raise AssertionError("the VGG ran for a pixel-only loss")

    monkeypatch.setattr(vgg16, "extract", fail)
    r = _run(noise, [TVTerm()], vgg16, steps=2)
    assert r.iterations == 2


# ----------------------------------------------------------------------------- stopping

@pytest.mark.parametrize("optimizer", ["lbfgs", "adam"])
def test_runs_all_steps_when_starting_at_the_optimum(vgg16, content, optimizer):
    # the target is exactly the start image: loss 0 and gradient 0 from the first evaluation
    target = _start_image(content, vgg16)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # not the went-uphill warning: nothing went up
        r = _run(content, [ContentTerm(target, CHEAP)], vgg16, steps=4, optimizer=optimizer)
    assert r.stopped == "finished"
    assert r.iterations == 4 and len(r.history["total"]) == 4
    assert r.history["total"] == [0.0] * 4
    assert r.best_loss == 0.0
    assert torch.equal(r.image, target)


def test_starting_from_the_content_image(vgg16, content):
    r = _run(content, [ContentTerm(content, CHEAP)], vgg16, steps=3)
    assert r.stopped == "finished" and r.iterations == 3
    assert all(math.isfinite(v) for v in r.history["total"])
    torch.testing.assert_close(r.image, content, atol=2e-3, rtol=0)


@pytest.mark.parametrize("optimizer, line_search", [("lbfgs", None), ("adam", None),
                                                     ("lbfgs", "strong_wolfe")])
def test_non_finite_loss_stops_and_keeps_best_image(vgg16, noise, optimizer, line_search):
    k = 4  # evaluations that succeed; the fifth returns NaN
    term = PixelTerm(nan_after=k)
    with pytest.warns(RuntimeWarning, match=r"the loss became nan at iteration \d+; stopped"):
        r = _run(noise, [term], vgg16, steps=10, optimizer=optimizer, line_search=line_search)
    assert r.stopped == "non-finite loss"
    assert r.evaluations == k + 1  # the failing evaluation counts
    assert len(term.values) == k
    assert r.iterations == len(r.history["total"]) < 10
    best = min(range(k), key=term.values.__getitem__)
    assert torch.isfinite(r.image).all()
    assert torch.equal(r.image, term.images[best])
    assert r.best_loss == term.values[best] <= min(r.history["total"], default=math.inf)
    if line_search is None:  # one evaluation per iteration
        assert r.iterations == k
        assert r.history["total"] == term.values
    if optimizer == "adam":  # monotone descent here: the last good image is the best one
        assert best == k - 1


def test_result_is_the_lowest_loss_image_not_the_last(vgg16, noise):
    term, current = PixelTerm(), []
    r = _run(noise, [term], vgg16, steps=6, optimizer="adam", lr=3.0,  # overshoots, comes back up
             callback=lambda step, image, losses: current.append(image.clone()))
    best = min(range(6), key=term.values.__getitem__)
    assert term.values[-1] > term.values[best]  # the run is not monotone (else this proves nothing)
    assert torch.equal(r.image, term.images[best])
    assert r.best_loss == term.values[best] == min(r.history["total"])
    assert r.history["total"] == term.values
    # the callback, though, sees the current image: after step s, the one evaluated next
    for s in range(1, 6):
        assert torch.equal(current[s - 1], term.images[s])


def test_warns_when_the_run_never_gets_below_its_start(vgg16):
    # a start close to the optimum (pixels 0.26, target 0.25) and Adam steps of ~3 logits: the first
    # step throws the pixels to ~0.02 and no later one comes back within 0.01 of the target
    start = torch.full((1, 3, 16, 16), 0.26)
    term = PixelTerm()
    with pytest.warns(RuntimeWarning, match=r"no iteration of 4 lowered the loss below the start"):
        r = _run(start, [term], vgg16, steps=4, optimizer="adam", lr=3.0)
    assert all(v > term.values[0] for v in term.values[1:])
    assert torch.equal(r.image, term.images[0]) and r.best_loss == term.values[0]


def test_keyboard_interrupt_in_callback(vgg16, content, noise):
    def callback(step, image, losses):
        if step == 3:
            raise KeyboardInterrupt

    r = _run(noise, [ContentTerm(content, ["conv1_1"])], vgg16, steps=10, callback=callback)
    assert r.stopped == "interrupted"
    assert r.iterations == 3 == len(r.history["total"])  # iteration 3 was done and recorded
    assert r.image.shape == noise.shape and torch.isfinite(r.image).all()
    assert math.isfinite(r.best_loss)
    assert r.best_loss <= min(r.history["total"])


def test_keyboard_interrupt_during_evaluation(vgg16, noise):
    term = PixelTerm(interrupt_at=4)
    r = _run(noise, [term], vgg16, steps=10, optimizer="adam")
    assert r.stopped == "interrupted"
    assert r.iterations == 3 == len(r.history["total"])
    assert torch.equal(r.image, term.images[-1])  # Adam descends: the last is the best
    assert r.best_loss == term.values[-1]


# ----------------------------------------------------------------------------- callback, progress

def test_callback_every_n_steps_and_at_the_last(vgg16, content, noise):
    seen = []

    def callback(step, image, losses):
        seen.append((step, image.clone(), dict(losses)))

    terms = [ContentTerm(content, ["conv1_1"]), TVTerm(weight=0.1)]
    r = _run(noise, terms, vgg16, steps=7, callback=callback, callback_every=3)
    assert [s for s, _, _ in seen] == [3, 6, 7]
    for step, image, losses in seen:
        assert image.shape == noise.shape and not image.requires_grad
        assert set(losses) == {"content", "tv", "total"}
        assert losses["total"] == r.history["total"][step - 1]
        assert losses["content"] == r.history["content"][step - 1]
    assert not torch.equal(seen[0][1], seen[1][1])  # the image it gets is the current one

    steps = []
    _run(noise, [TVTerm()], vgg16, steps=4, callback=lambda s, i, l: steps.append(s))
    assert steps == [1, 2, 3, 4]  # default: every step


def test_progress_bar_on_stderr(vgg16, noise, capfd):
    _run(noise, [TVTerm()], vgg16, steps=3, progress=True)
    assert "optimising" in capfd.readouterr().err
    _run(noise, [TVTerm()], vgg16, steps=3, progress=False)
    assert "optimising" not in capfd.readouterr().err


# ----------------------------------------------------------------------------- bad arguments

def test_bad_arguments(vgg16, content, noise):
    terms = [TVTerm()]
    with pytest.raises(ValueError, match=r"optimizer must be one of \('lbfgs', 'adam'\)"):
        optimize_image(noise, terms, optimizer="sgd", vgg=vgg16)
    for steps in (-1, 2.5, True, "10"):
        with pytest.raises(ValueError, match="steps must be a non-negative integer"):
            optimize_image(noise, terms, steps=steps, vgg=vgg16)
    with pytest.raises(ValueError, match="at least one loss term"):
        optimize_image(noise, [], vgg=vgg16)
    for every in (0, -2, 1.5):
        with pytest.raises(ValueError, match="callback_every must be a positive integer"):
            optimize_image(noise, terms, steps=2, callback=lambda *a: None, callback_every=every,
                           vgg=vgg16)
    for w in (-1.0, float("nan"), float("inf")):
        with pytest.raises(ValueError, match="weight must be a finite number >= 0"):
            ContentTerm(content, weight=w)
        with pytest.raises(ValueError, match="TVTerm: weight must be"):
            TVTerm(weight=w)
    with pytest.raises(ValueError, match="at least one layer"):
        ContentTerm(content, layers=[])
    with pytest.raises(ValueError, match="no weight for layers"):
        StyleTerm(content, layers=["conv1_1", "conv2_1"], layer_weights={"conv1_1": 1.0})
    with pytest.raises(ValueError, match="3 weights for 2 layers"):
        StyleTerm(content, layers=["conv1_1", "conv2_1"], layer_weights=[1, 2, 3])


def test_bad_images(vgg16, content, noise):
    with pytest.raises(ValueError, match=r"init must have shape \(B, 3, H, W\)"):
        optimize_image(noise[:, :1], [TVTerm()], vgg=vgg16)
    with pytest.raises(ValueError, match=r"init must have shape \(B, 3, H, W\)"):
        optimize_image(noise[0], [TVTerm()], vgg=vgg16)
    with pytest.raises(ValueError, match="float"):
        optimize_image((noise * 255).to(torch.uint8), [TVTerm()], vgg=vgg16)
    with pytest.raises(TypeError, match="init must be a tensor"):
        optimize_image(noise.numpy(), [TVTerm()], vgg=vgg16)
    with pytest.raises(ValueError, match="content image must have shape"):
        ContentTerm(content[:, :2])
    # content and generated image of different sizes: the content loss says so
    other = initial_image("noise", _content(40, 40))
    with pytest.raises(ValueError, match="same size"):
        _run(other, [ContentTerm(content, ["conv1_1"])], vgg16, steps=1)


# ----------------------------------------------------------------------------- start images

def test_initial_image_content_is_a_copy(content):
    x = initial_image("content", content)
    assert torch.equal(x, content)
    assert x.data_ptr() != content.data_ptr()
    x.fill_(0)
    assert content.max() > 0  # the photo is untouched


def test_initial_image_noise_is_seeded(content):
    a = initial_image("noise", content, seed=1)
    assert torch.equal(a, initial_image("noise", content, seed=1))
    assert not torch.equal(a, initial_image("noise", content, seed=2))
    assert not torch.equal(initial_image("noise", content, seed=None),
                           initial_image("noise", content, seed=None))
    assert a.shape == content.shape and a.is_floating_point()
    assert a.min() >= 0 and a.max() <= 1
    assert 0.4 < a.mean() < 0.6 and a.std() > 0.1  # white noise around mid-grey, not the photo
    assert a[0, 0, :-1, :].sub(a[0, 0, 1:, :]).abs().mean() > 0.1  # independent neighbours
    wide = _content(20, 36)
    assert initial_image("noise", wide).shape == (1, 3, 20, 36)


def test_initial_image_style_is_resized(content):
    style = _style()  # 40 x 48
    x = initial_image("style", content, style=style)
    assert x.shape == content.shape
    assert torch.equal(x, resize(style, size=(32, 32)))
    assert x.min() >= 0 and x.max() <= 1
    same = initial_image("style", style, style=style)
    assert torch.equal(same, style)


def test_initial_image_errors(content):
    with pytest.raises(ValueError, match="init must be 'content', 'noise' or 'style', got 'zeros'"):
        initial_image("zeros", content)
    with pytest.raises(ValueError, match="needs the style image"):
        initial_image("style", content)
    with pytest.raises(ValueError, match="like must have shape"):
        initial_image("noise", content[0])


# ----------------------------------------------------------------------------- terms

def test_style_term_layer_weights(vgg16, content):
    style = _style()
    layers = ["conv1_1", "conv2_1"]
    by_name = StyleTerm(style, layers, layer_weights={"conv2_1": 3.0, "conv1_1": 0.5})
    by_order = StyleTerm(style, layers, layer_weights=[0.5, 3.0])
    default = StyleTerm(style, layers)
    assert by_name.layer_weights == {"conv1_1": 0.5, "conv2_1": 3.0} == by_order.layer_weights
    assert default.layer_weights == {"conv1_1": 0.5, "conv2_1": 0.5}
    for t in (by_name, by_order, default):
        t.prepare(vgg16)
    assert by_name.targets["conv1_1"].shape == (1, 64, 64)
    assert by_name.targets["conv2_1"].shape == (1, 128, 128)
    with torch.no_grad():
        f = vgg16.extract(content, layers)
        s = vgg16.extract(style, layers)
        e = {l: style_layer_loss(gram(f[l]), gram(s[l])).item() for l in layers}
        torch.testing.assert_close(by_name.targets["conv2_1"], gram(s["conv2_1"]))
        assert by_name.value(f, content).item() == pytest.approx(0.5 * e["conv1_1"] + 3.0 * e["conv2_1"],
                                                                 rel=1e-5)
        assert by_order.value(f, content).item() == pytest.approx(by_name.value(f, content).item(),
                                                                  rel=1e-6)
        assert default.value(f, content).item() == pytest.approx((e["conv1_1"] + e["conv2_1"]) / 2,
                                                                 rel=1e-5)


def test_tv_term_alone_smooths_noise(vgg16, noise):
    r = _run(noise, [TVTerm()], vgg16, steps=10)
    assert tv_loss(r.image) < 0.5 * tv_loss(noise)
    assert r.history["total"][-1] < r.history["total"][0] / 2


# ----------------------------------------------------------------------------- masks (Gatys 2017, Sec. 4)

def test_style_term_with_a_full_mask_equals_the_unmasked_term(vgg16, content):
    style = _style()
    plain = StyleTerm(style, CHEAP)
    masked = StyleTerm(style, CHEAP, mask=torch.ones(32, 32), style_mask=torch.ones(1, 1, 40, 48))
    for term in (plain, masked):
        term.prepare(vgg16)
    feats = vgg16.extract(content, CHEAP)
    assert torch.equal(plain.value(feats, content), masked.value(feats, content))


def test_style_term_mask_only_asks_the_masked_region_for_the_style(vgg16, content):
    """Change the generated image outside the mask: a masked term does not notice (up to the
    receptive field at the border), the unmasked term does."""
    style = _style()
    mask = torch.zeros(1, 1, 32, 32)
    mask[..., :16] = 1
    masked, plain = StyleTerm(style, ["conv1_1"], mask=mask), StyleTerm(style, ["conv1_1"])
    for term in (masked, plain):
        term.prepare(vgg16)
    changed = content.clone()
    changed[..., 20:] = torch.rand(1, 3, 32, 12)  # right side only, 4 px away from the mask's edge
    values = {}
    for name, x in (("before", content), ("after", changed)):
        feats = vgg16.extract(x, ["conv1_1"])
        values[name] = (masked.value(feats, x).item(), plain.value(feats, x).item())
    assert values["before"][0] == pytest.approx(values["after"][0], rel=1e-6)
    assert values["before"][1] != pytest.approx(values["after"][1], rel=1e-2)


def test_style_term_mask_errors(vgg16, content):
    style = _style()
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        StyleTerm(style, CHEAP, mask=torch.full((32, 32), 2.0))
    with pytest.raises(ValueError, match="zero everywhere"):
        StyleTerm(style, CHEAP, mask=torch.zeros(32, 32))
    with pytest.raises(ValueError, match="its image"):
        StyleTerm(style, CHEAP, style_mask=torch.ones(10, 10))
    with pytest.raises(TypeError, match="tensor"):
        StyleTerm(style, CHEAP, mask=[[1.0]])
    term = StyleTerm(style, CHEAP, mask=torch.ones(16, 16))
    term.prepare(vgg16)
    with pytest.raises(ValueError, match="resize"):
        term.value(vgg16.extract(content, CHEAP), content)


def test_normalized_loss_gives_the_same_history_units_and_survives_huge_weights(vgg16, content):
    """The optimiser sees loss / loss(start) but the history keeps the real values; with a huge
    style weight the unnormalised run is where L-BFGS's line search used to produce NaN."""
    style = _style()
    terms = [ContentTerm(content, ["conv2_2"]), StyleTerm(style, CHEAP, weight=1e12)]
    r = _run(content, terms, vgg16, steps=3)
    assert r.stopped == "finished"
    assert r.history["total"][0] == pytest.approx(terms[1].weight * terms[1].value(
        vgg16.extract(_start_image(content, vgg16), CHEAP), _start_image(content, vgg16)).item(), rel=1e-4)
    assert r.history["total"][-1] < r.history["total"][0]


# ----------------------------------------------------------------------------- precision

def test_bf16_runs_only_the_vgg_under_autocast_in_channels_last(vgg16, content, noise, monkeypatch):
    seen = []
    original = vgg16.extract

    def spy(x, layers):
        feats = original(x, layers)
        seen.append((torch.is_autocast_enabled("cpu"), x.is_contiguous(memory_format=torch.channels_last),
                     {f.dtype for f in feats.values()}))
        return feats

    monkeypatch.setattr(vgg16, "extract", spy)
    losses = []
    r = _run(noise, [ContentTerm(content, CHEAP)], vgg16, steps=2, precision="bf16",
             callback=lambda step, image, l: losses.append(l))
    evaluations = seen[1:]  # seen[0]: the target, computed once in float32
    assert seen[0] == (False, False, {torch.float32})
    assert len(evaluations) == r.evaluations and all(e == (True, True, {torch.bfloat16}) for e in evaluations)
    assert r.image.dtype == torch.float32 and r.history["total"][-1] < r.history["total"][0]
    seen.clear()
    _run(noise, [ContentTerm(content, CHEAP)], vgg16, steps=1, precision="fp32")  # fp32: no autocast
    assert all(e == (False, False, {torch.float32}) for e in seen)


def test_bf16_lands_within_a_few_percent_of_fp32(vgg16, content, noise):
    def run(precision):
        terms = [ContentTerm(content, ["conv2_1"]), StyleTerm(_style(), ["conv1_1", "conv2_1"], weight=1e3)]
        return _run(noise, terms, vgg16, steps=10, precision=precision)

    fp32, bf16 = run("fp32"), run("bf16")
    assert bf16.history["total"][0] == pytest.approx(fp32.history["total"][0], rel=1e-3)  # same start
    assert bf16.best_loss < fp32.history["total"][0] / 5  # it optimises
    assert bf16.best_loss == pytest.approx(fp32.best_loss, rel=0.05)  # measured: 1.9% apart


def test_precision_comes_from_the_environment_and_is_checked(vgg16, noise, monkeypatch):
    monkeypatch.setenv("NSTLIB_PRECISION", "fp16")
    with pytest.raises(ValueError, match="NSTLIB_PRECISION must be one of"):
        optimize_image(noise, [TVTerm()], steps=1, vgg=vgg16)
    with pytest.raises(ValueError, match="precision must be one of"):
        optimize_image(noise, [TVTerm()], steps=1, vgg=vgg16, precision="half")


# ----------------------------------------------------------------------------- coarse-to-fine

def test_optimize_scales_starts_each_scale_from_the_previous_result(vgg16, content):
    seen = []

    def stage(size, previous):
        seen.append((size, None if previous is None else previous.clone()))
        start = resize(content, max_size=size) if previous is None else resize(previous, max_size=size)
        return start, [TVTerm()]

    stages = optimize_scales(stage, [16, 24, 32], steps=[2, 0, 1], vgg=vgg16, progress=False)
    assert [s for s, _ in stages] == [16, 24, 32]
    assert [r.iterations for _, r in stages] == [2, 0, 1]
    assert seen[0] == (16, None)
    assert torch.equal(seen[1][1], stages[0][1].image) and torch.equal(seen[2][1], stages[1][1].image)
    assert stages[-1][1].image.shape == (1, 3, 32, 32)
    assert len(optimize_scales(stage, [16, 32], steps=1, vgg=vgg16, progress=False)) == 2  # one count for all


def test_optimize_scales_stops_after_an_interrupted_scale(vgg16, noise):
    def stage(size, previous):
        return resize(noise, max_size=size), [PixelTerm(interrupt_at=2)]

    stages = optimize_scales(stage, [16, 32], steps=5, vgg=vgg16, optimizer="adam", progress=False)
    assert [s for s, _ in stages] == [16] and stages[0][1].stopped == "interrupted"


def test_optimize_scales_bad_arguments(vgg16):
    with pytest.raises(ValueError, match="increasing"):
        optimize_scales(lambda s, p: None, [32, 16], steps=1, vgg=vgg16)
    with pytest.raises(ValueError, match="one step count per scale"):
        optimize_scales(lambda s, p: None, [16, 32], steps=[1, 2, 3], vgg=vgg16)
