"""nstlib.cyclegan: the networks' shapes and receptive field, the losses against their
definitions, and the image pool's behaviour and state."""
import pytest
import torch
import torch.nn as nn

from nstlib.cyclegan import (ImagePool, PatchDiscriminator, ResnetGenerator, UNetGenerator, cycle_loss, lsgan_loss,
                             receptive_field)


def _images(seed, n=2, h=32, w=32):
    return torch.rand(n, 3, h, w, generator=torch.Generator().manual_seed(seed))


def test_resnet_generator_layout_and_range():
    g = ResnetGenerator(blocks=6, width=8)
    convs = [m for m in g.net if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d))]
    assert convs[0].kernel_size == (7, 7) and convs[-1].kernel_size == (7, 7) and convs[-1].out_channels == 3
    assert sum(type(m).__name__ == "ResidualBlock" for m in g.net) == 6
    assert any(isinstance(m, nn.ReflectionPad2d) for m in g.net) and isinstance(g.net[-1], nn.Tanh)
    y = g(_images(0))
    assert y.shape == (2, 3, 32, 32) and y.min() >= 0 and y.max() <= 1
    with pytest.raises(ValueError, match="multiples of 4"):
        g(torch.rand(1, 3, 30, 32))


def test_instance_norm_hides_a_crops_brightness_and_colour_cast():
    """The first conv is linear and instance norm removes each channel's mean and spread, so a
    photo and a darker copy with a colour cast, x' = s x + c, give the same output: a generator
    with instance norm cannot know a crop's absolute colour. Without norms it can."""
    torch.manual_seed(0)
    x = _images(5, n=1)
    cast = 0.4 * x + torch.tensor([0.2, 0.1, 0.3]).view(1, 3, 1, 1)
    with_norm, without = ResnetGenerator(2, 8), ResnetGenerator(2, 8, norm="none")
    assert torch.allclose(with_norm(x), with_norm(cast), atol=1e-4)
    assert (without(x) - without(cast)).abs().max() > 1e-3
    assert not any(isinstance(m, nn.InstanceNorm2d) for m in without.modules())
    with pytest.raises(ValueError, match="norm"):
        ResnetGenerator(1, 8, norm="batch")


def test_patchgan_sees_70x70_patches():
    d = PatchDiscriminator()
    assert receptive_field(d) == 70
    assert d(_images(1, h=128, w=128)).shape == (2, 1, 14, 14)
    norms = [m for m in d.net if isinstance(m, nn.InstanceNorm2d)]
    assert len(norms) == 3  # not on the first layer
    assert PatchDiscriminator(in_channels=6)(torch.rand(1, 6, 64, 64)).shape[1] == 1


def test_unet_skip_connections_carry_the_input():
    """Each encoder level reaches the output through its skip connection to the mirror decoder
    level. Cut the encoder below a level (zero the next down convolution): the deeper levels then
    carry nothing, so the level's activations can reach the output only through their skip. The
    output's gradient with respect to them must not vanish; without that skip (a plain
    encoder-decoder) it is exactly zero."""
    x = _images(2, n=1)
    y = UNetGenerator(depth=5, width=8)(x)
    assert y.shape == x.shape and 0 <= y.min() and y.max() <= 1
    for level in range(4):  # the innermost level (4) has no skip: it is the bottleneck
        torch.manual_seed(0)
        u = UNetGenerator(depth=5, width=8)
        with torch.no_grad():
            u.down[level + 1][0].weight.zero_()
        kept = {}

        def keep(module, inputs, output):
            output.retain_grad()
            kept["features"] = output

        u.down[level].register_forward_hook(keep)
        y = u(x)
        (y * torch.randn(y.shape, generator=torch.Generator().manual_seed(1))).sum().backward()
        assert kept["features"].grad.abs().max() > 1e-6, f"encoder level {level} has no skip connection"
    with pytest.raises(ValueError, match="multiples of 32"):
        u(torch.rand(1, 3, 48, 48))


def test_losses_match_their_definitions():
    s = torch.tensor([[0.2, 1.5], [-0.3, 1.0]])
    assert lsgan_loss(s, real=True) == pytest.approx(((s - 1) ** 2).mean().item())
    assert lsgan_loss(s, real=False) == pytest.approx((s ** 2).mean().item())
    a, b = _images(3), _images(4)
    assert cycle_loss(a, b) == pytest.approx((a - b).abs().mean().item())


def test_image_pool_fills_then_swaps_half_the_time():
    pool = ImagePool(size=4, generator=torch.Generator().manual_seed(0))
    first = _images(5, n=4)
    assert torch.equal(pool.query(first), first)  # filling: returns what it got
    returned_old = 0
    for seed in range(50):
        new = _images(100 + seed, n=1)
        out = pool.query(new)
        returned_old += not torch.equal(out, new)
    assert 10 < returned_old < 40  # about half
    state = pool.state_dict()
    clone = ImagePool(size=4)
    clone.load_state_dict(state)
    x = _images(7, n=3)
    assert torch.equal(pool.query(x), clone.query(x))
    assert torch.equal(ImagePool(size=0).query(x), x)
