"""nstlib.adain.load_authors: naoto0804/pytorch-AdaIN's released vgg_normalised.pth and decoder.pth.

The real files are not on this machine, so the test writes synthetic ones with exactly their layout
(random weights, fixed seed): the networks below are rebuilt from the published net.py (commit
4a5eef6), and the reference forward pass follows their test.py and function.py. load_authors must
give the same relu4_1 features, AdaIN target and image, and clear errors for wrong files."""
import pytest
import torch
import torch.nn as nn

from nstlib.adain import load_authors


def _authors_vgg() -> nn.Sequential:
    """net.vgg: a 1x1 conv, then (ReflectionPad2d, 3x3 conv, ReLU) per conv, ceil-mode max pooling."""
    spec = [(3, 64), (64, 64), "M", (64, 128), (128, 128), "M", (128, 256)] + [(256, 256)] * 3 + ["M", (256, 512)] \
        + [(512, 512)] * 3 + ["M"] + [(512, 512)] * 4
    layers = [nn.Conv2d(3, 3, (1, 1))]
    for item in spec:
        if item == "M":
            layers.append(nn.MaxPool2d((2, 2), (2, 2), (0, 0), ceil_mode=True))
        else:
            layers += [nn.ReflectionPad2d((1, 1, 1, 1)), nn.Conv2d(*item, (3, 3)), nn.ReLU()]
    return nn.Sequential(*layers)


def _authors_decoder() -> nn.Sequential:
    """net.decoder: (ReflectionPad2d, 3x3 conv, ReLU) per conv, nearest x2 upsampling, no last ReLU."""
    spec = [(512, 256), "U"] + [(256, 256)] * 3 + [(256, 128), "U", (128, 128), (128, 64), "U", (64, 64), (64, 3)]
    layers = []
    for item in spec:
        if item == "U":
            layers.append(nn.Upsample(scale_factor=2, mode="nearest"))
        else:
            layers += [nn.ReflectionPad2d((1, 1, 1, 1)), nn.Conv2d(*item, (3, 3)), nn.ReLU()]
    return nn.Sequential(*layers[:-1])


def _calc_mean_std(feat, eps=1e-5):  # function.py: torch's default (unbiased) variance, + eps
    n, c = feat.shape[:2]
    std = (feat.view(n, c, -1).var(dim=2) + eps).sqrt().view(n, c, 1, 1)
    return feat.view(n, c, -1).mean(dim=2).view(n, c, 1, 1), std


def _reference_adain(content_feat, style_feat):  # function.adaptive_instance_normalization
    (mu_c, sd_c), (mu_s, sd_s) = _calc_mean_std(content_feat), _calc_mean_std(style_feat)
    return (content_feat - mu_c) / sd_c * sd_s + mu_s


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    torch.manual_seed(0)
    vgg, decoder = _authors_vgg(), _authors_decoder()
    for conv in [m for m in [*vgg, *decoder] if isinstance(m, nn.Conv2d)]:
        # activations of order 1 like the real normalised VGG's, so that AdaIN's eps does not hide sigma
        nn.init.kaiming_normal_(conv.weight, nonlinearity="relu")
        nn.init.normal_(conv.bias, std=0.1)
    decoder[-1].weight.data *= 0.1  # an image mostly inside [0, 1]: the clamp does not hide the comparison
    decoder[-1].bias.data += 0.5
    folder = tmp_path_factory.mktemp("authors")
    torch.save(vgg.state_dict(), folder / "vgg_normalised.pth")
    torch.save(decoder.state_dict(), folder / "decoder.pth")
    encoder = nn.Sequential(*list(vgg.children())[:31]).eval()  # test.py's cut at relu4_1
    return folder / "vgg_normalised.pth", folder / "decoder.pth", encoder, decoder.eval()


def test_the_synthetic_files_have_the_published_layout(files):
    vgg_path, decoder_path, _, _ = files
    vgg_state, decoder_state = torch.load(vgg_path), torch.load(decoder_path)
    convs = [0, 2, 5, 9, 12, 16, 19, 22, 25, 29, 32, 35, 38, 42, 45, 48, 51]
    assert list(vgg_state) == [f"{i}.{p}" for i in convs for p in ("weight", "bias")]
    assert vgg_state["0.weight"].shape == (3, 3, 1, 1) and vgg_state["29.weight"].shape == (512, 256, 3, 3)
    assert list(decoder_state) == [f"{i}.{p}" for i in (1, 5, 8, 11, 14, 18, 21, 25, 28) for p in ("weight", "bias")]
    assert decoder_state["1.weight"].shape == (256, 512, 3, 3) and decoder_state["28.weight"].shape == (3, 64, 3, 3)


def test_load_authors_computes_what_their_code_computes(files):
    vgg_path, decoder_path, encoder, decoder = files
    model = load_authors(vgg_path, decoder_path)
    gen = torch.Generator().manual_seed(1)
    # odd sizes at the third pooling (9 -> 5, 7 -> 4): their ceil-mode pooling rounds up
    content, style = torch.rand(1, 3, 36, 44, generator=gen), torch.rand(1, 3, 28, 20, generator=gen)

    def close(ours, theirs):
        assert ours.shape == theirs.shape
        torch.testing.assert_close(ours, theirs, rtol=1e-5, atol=1e-5 * float(theirs.abs().max()))

    with torch.no_grad():
        fc, fs = encoder(content), encoder(style)
        assert fc.shape == (1, 512, 5, 6) and fs.shape == (1, 512, 4, 3)
        close(model.encoder(content), fc)
        close(model.encoder(style), fs)
        for alpha in (1.0, 0.4):  # test.py's style_transfer: feat * alpha + content_f * (1 - alpha)
            t = _reference_adain(fc, fs) * alpha + fc * (1 - alpha)
            close(model.target(content, style, alpha=alpha), t)
            image = decoder(t)
            assert image.shape == (1, 3, 40, 48)  # as in test.py, not the input's 36 x 44
            assert ((image > 0) & (image < 1)).float().mean() > 0.5
            close(model.decoder(model.target(content, style, alpha=alpha)), image)
            close(model(content, style, alpha=alpha), image.clamp(0, 1))  # save_image clamps to [0, 1]
    assert not model.training and not any(p.requires_grad for p in model.encoder.parameters())


def test_errors_name_the_file_and_the_key(files, tmp_path):
    vgg_path, decoder_path, _, _ = files
    with pytest.raises(FileNotFoundError, match="vgg_normalised.pth.*releases"):
        load_authors(tmp_path / "vgg_normalised.pth", decoder_path)
    missing = torch.load(vgg_path)
    del missing["29.weight"]
    torch.save(missing, tmp_path / "missing.pth")
    with pytest.raises(
            ValueError, match=r"missing.pth is not the authors' vgg_normalised.pth: it has no key '29.weight'$"):
        load_authors(tmp_path / "missing.pth", decoder_path)
    wrong = torch.load(decoder_path)
    wrong["28.weight"] = torch.zeros(3, 64, 1, 1)
    torch.save(wrong, tmp_path / "wrong.pth")
    with pytest.raises(
            ValueError, match=r"decoder.pth: '28.weight' has shape \(3, 64, 1, 1\), theirs is \(3, 64, 3, 3\)"):
        load_authors(vgg_path, tmp_path / "wrong.pth")
    with pytest.raises(ValueError, match="vgg_normalised.pth: it has no key '0.weight' .*swapped"):
        load_authors(decoder_path, vgg_path)
    (tmp_path / "notes.pth").write_text("not a checkpoint")
    with pytest.raises(ValueError, match="notes.pth is not a PyTorch state dict like the authors' decoder"):
        load_authors(vgg_path, tmp_path / "notes.pth")
