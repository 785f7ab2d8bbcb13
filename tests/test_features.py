"""nstlib.vgg and nstlib.features: layer names, early stopping, pre-activations, frozen network,
options, input conventions, and the feature fingerprint of the real VGG-16 weights."""
import json
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from nstlib import vgg
from nstlib.features import VGGFeatures, extract, load_vgg
from nstlib.images import load_image
from nstlib.weights import CONVENTIONS

ASSETS = Path(__file__).parent / "assets"


def _blocks(n2, n3, n4, n5):
    """Expected names for a VGG whose blocks have 2, 2, n3, n4, n5 convolutions."""
    names = []
    for b, n in enumerate((2, 2, n3, n4, n5), start=1):
        for i in range(1, n + 1):
            names += [f"conv{b}_{i}", f"relu{b}_{i}"]
        names.append(f"pool{b}")
    return names


def test_vgg16_layer_list():
    names = vgg.layer_names("vgg16")
    assert len(names) == 31  # 13 convs, 13 relus, 5 pools: torchvision's vgg16().features
    assert names[:5] == ["conv1_1", "relu1_1", "conv1_2", "relu1_2", "pool1"]
    assert names[21:24] == ["conv4_3", "relu4_3", "pool4"]
    assert names == _blocks(2, 3, 3, 3)


def test_vgg19_layer_list():
    names = vgg.layer_names("vgg19")
    assert len(names) == 37  # 16 convs, 16 relus, 5 pools
    assert names.index("conv4_2") == 21 and names.index("conv5_1") == 28  # torchvision vgg19().features
    assert names[-3:] == ["conv5_4", "relu5_4", "pool5"]


def test_sequential_matches_torchvision_indices():
    conv_idx = list(vgg.conv_shapes("vgg16"))
    assert conv_idx == [0, 2, 5, 7, 10, 12, 14, 17, 19, 21, 24, 26, 28]
    net = vgg.build("vgg19")
    assert [i for i, m in enumerate(net) if isinstance(m, torch.nn.MaxPool2d)] == [4, 9, 18, 27, 36]


def test_unknown_arch_and_options():
    with pytest.raises(ValueError, match="vgg16"):
        vgg.layer_names("vgg11")
    with pytest.raises(ValueError, match="pooling"):
        vgg.build(pooling="min")
    with pytest.raises(ValueError, match="padding"):
        vgg.build(padding="replicate")


def test_extract_returns_exactly_the_requested_layers(vgg16):
    x = torch.rand(2, 3, 64, 64)
    feats = vgg16.extract(x, ["relu3_1", "conv1_2", "pool2"])
    assert list(feats) == ["relu3_1", "conv1_2", "pool2"]  # the order asked for
    assert feats["conv1_2"].shape == (2, 64, 64, 64)
    assert feats["pool2"].shape == (2, 128, 16, 16)
    assert feats["relu3_1"].shape == (2, 256, 16, 16)
    assert list(vgg16.extract(x, "relu1_1")) == ["relu1_1"]  # a single name works too


def test_extract_stops_at_the_deepest_requested_layer(vgg16):
    called = []
    hooks = [m.register_forward_hook(lambda m, i, o, k=k: called.append(k))
             for k, m in enumerate(vgg16.features)]
    try:
        vgg16.extract(torch.rand(1, 3, 32, 32), ["relu1_1", "relu2_1"])
    finally:
        for h in hooks:
            h.remove()
    assert called == list(range(vgg.layer_names("vgg16").index("relu2_1") + 1))


def test_up_to_builds_only_the_needed_layers():
    enc = VGGFeatures("vgg16", weights=None, up_to="relu4_1")
    assert enc.layer_names[-1] == "relu4_1" and len(enc.features) == 19
    assert enc.extract(torch.rand(1, 3, 32, 32), "relu4_1")["relu4_1"].shape == (1, 512, 4, 4)
    with pytest.raises(ValueError, match="deeper than this extractor"):
        enc.extract(torch.rand(1, 3, 32, 32), "conv4_2")


def test_unknown_layer_names_get_a_suggestion(vgg16):
    with pytest.raises(ValueError, match="conv4_2"):
        vgg16.extract(torch.rand(1, 3, 32, 32), ["conv_4_2"])
    with pytest.raises(ValueError, match="at least one layer"):
        vgg16.extract(torch.rand(1, 3, 32, 32), [])


def test_conv_outputs_are_pre_activations(vgg16):
    feats = vgg16.extract(torch.rand(1, 3, 64, 64), ["conv3_1", "relu3_1"])
    assert (feats["conv3_1"] < 0).any()  # a pre-activation has negative values...
    assert torch.equal(feats["relu3_1"], feats["conv3_1"].clamp(min=0))  # ...that the ReLU removes


def test_network_is_frozen_and_stays_in_eval_mode(vgg16):
    assert not any(p.requires_grad for p in vgg16.parameters())
    vgg16.train()
    assert not vgg16.training and not any(m.training for m in vgg16.modules())
    x = torch.rand(1, 3, 32, 32, requires_grad=True)
    vgg16.extract(x, "relu2_1")["relu2_1"].sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0  # gradients reach the image


def test_bad_inputs_get_clear_errors(vgg16):
    with pytest.raises(ValueError, match=r"\(B, 3, H, W\)"):
        vgg16.extract(torch.rand(3, 32, 32), "relu1_1")
    with pytest.raises(ValueError, match="float"):
        vgg16.extract(torch.zeros(1, 3, 32, 32, dtype=torch.uint8), "relu1_1")
    with pytest.raises(TypeError):
        vgg16.extract([[0.0]], "relu1_1")


def test_caffe_convention_by_hand(vgg16):
    """relu1_1 equals a conv written out with the Caffe convention: BGR, 0..255, minus the mean."""
    x = torch.rand(1, 3, 40, 48)
    bgr = x[:, [2, 1, 0]] * 255 - torch.tensor([103.939, 116.779, 123.68]).view(1, 3, 1, 1)
    conv = vgg16.features[0]
    expected = F.relu(F.conv2d(bgr, conv.weight, conv.bias, padding=1))
    torch.testing.assert_close(vgg16.extract(x, "relu1_1")["relu1_1"], expected)


def test_torchvision_convention():
    net = VGGFeatures("vgg16", weights=None, convention="torchvision")
    x = torch.rand(1, 3, 32, 32)
    c = CONVENTIONS["torchvision"]
    rgb = (x - torch.tensor(c.mean).view(1, 3, 1, 1)) / torch.tensor(c.std).view(1, 3, 1, 1)
    torch.testing.assert_close(net.normalize(x), rgb)


def test_avg_pooling_and_reflect_padding_change_the_features(vgg16):
    other = VGGFeatures("vgg16", "caffe", pooling="avg", padding="reflect")
    assert isinstance(other.features[4], torch.nn.AvgPool2d)
    assert other.features[0].padding_mode == "reflect"
    x = torch.rand(1, 3, 64, 64)
    a, b = vgg16.extract(x, "relu2_1")["relu2_1"], other.extract(x, "relu2_1")["relu2_1"]
    assert a.shape == b.shape and not torch.allclose(a, b)
    # same weights: away from the border, conv1_1 is identical with either padding
    a1, b1 = vgg16.extract(x, "conv1_1")["conv1_1"], other.extract(x, "conv1_1")["conv1_1"]
    torch.testing.assert_close(a1[..., 1:-1, 1:-1], b1[..., 1:-1, 1:-1])
    assert not torch.allclose(a1[..., 0, :], b1[..., 0, :])


def test_circular_padding_makes_features_and_grams_shift_with_the_image():
    """With circular padding the image is a torus: shifting it cyclically by multiples of 16 px (conv5_1
    sits after four 2x2 poolings, stride 16) shifts every feature map by shift / stride positions, so the
    Gram matrices are unchanged. With zero padding the border breaks both."""
    from nstlib.losses import gram

    x = torch.rand(1, 3, 64, 80, generator=torch.Generator().manual_seed(0))
    shifted = torch.roll(x, shifts=(16, 32), dims=(2, 3))
    for padding, equivariant in (("circular", True), ("zero", False)):
        net = VGGFeatures("vgg16", "caffe", padding=padding)
        a, b = net.extract(x, ["relu1_1", "relu5_1"]), net.extract(shifted, ["relu1_1", "relu5_1"])
        stride = {"relu1_1": 1, "relu5_1": 16}
        for layer in a:
            rolled = torch.roll(a[layer], shifts=(16 // stride[layer], 32 // stride[layer]), dims=(2, 3))
            assert torch.allclose(rolled, b[layer], atol=1e-4) == equivariant, (padding, layer)
        assert torch.allclose(gram(a["relu5_1"]), gram(b["relu5_1"]), rtol=1e-4, atol=1e-3) == equivariant


def test_weights_from_a_path(tmp_path, vgg16):
    path = tmp_path / "mine.pth"
    torch.save({f"features.{k}": v for k, v in vgg16.features.state_dict().items()}, path)
    mine = VGGFeatures("vgg16", weights=path)
    torch.testing.assert_close(mine.features[28].weight, vgg16.features[28].weight)
    with pytest.raises(FileNotFoundError, match="no such weights file"):
        VGGFeatures("vgg16", weights=tmp_path / "missing.pth")
    torch.save({"features.0.weight": torch.zeros(1)}, tmp_path / "bad.pth")
    with pytest.raises(ValueError, match="not a vgg16 features state_dict"):
        VGGFeatures("vgg16", weights=tmp_path / "bad.pth")


def test_random_init_is_seeded():
    torch.manual_seed(0)
    a = VGGFeatures("vgg19", weights=None)
    torch.manual_seed(0)
    b = VGGFeatures("vgg19", weights=None)
    assert torch.equal(a.features[34].weight, b.features[34].weight)


def test_module_level_extract_shares_one_network():
    x = torch.rand(1, 3, 32, 32)
    assert load_vgg() is load_vgg()
    torch.testing.assert_close(extract(x, ["relu2_2"])["relu2_2"],
                               load_vgg().extract(x, "relu2_2")["relu2_2"])


def test_a_changed_weights_folder_is_not_served_from_the_shared_extractor(monkeypatch, tmp_path):
    """Issue 24: an extractor loaded before NSTLIB_WEIGHTS_DIR changed must not be reused after it."""
    first = load_vgg(weights=None)
    monkeypatch.setenv("NSTLIB_WEIGHTS_DIR", str(tmp_path))
    assert load_vgg(weights=None) is not first
    assert load_vgg(weights=None) is load_vgg(weights=None)
    monkeypatch.undo()
    assert load_vgg(weights=None) is first


def test_fingerprint_of_the_real_vgg16_weights(vgg16):
    """Per-layer means on a committed 64x64 image (tests/make_fingerprint.py) match the stored
    values to a relative 1e-4: catches wrong weights, a wrong conversion or a wrong convention."""
    stored = json.loads((ASSETS / "vgg16_caffe_fingerprint.json").read_text())
    x = load_image(ASSETS / "fingerprint_64.png")
    assert x.shape == (1, 3, 64, 64)
    feats = vgg16.extract(x, list(stored))
    for name, value in stored.items():
        got = feats[name].double().mean().item()
        assert got == pytest.approx(value, rel=1e-4), name


def test_fingerprint_rejects_the_wrong_convention(vgg16):
    """The same weights fed torchvision-normalised RGB give clearly different features."""
    stored = json.loads((ASSETS / "vgg16_caffe_fingerprint.json").read_text())
    wrong = VGGFeatures("vgg16", "caffe", convention="torchvision")
    got = wrong.extract(load_image(ASSETS / "fingerprint_64.png"), "relu3_1")["relu3_1"].mean()
    assert abs(got.item() - stored["relu3_1"]) > 0.1 * stored["relu3_1"]
