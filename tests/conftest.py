"""Shared fixtures. Tests that need the real VGG weights or registry images get them the way a user
does (nstlib.weights / nstlib.data): from NSTLIB_WEIGHTS_DIR / NSTLIB_DATA_DIR in CI, else from the
cache or a download. Nothing is skipped when they are missing: the test fails with the offline
message, which says what to download. `http_server` is a local HTTP server for download tests
(tests/http_server.py)."""
import matplotlib
import pytest

from tests.http_server import serve

matplotlib.use("Agg")  # tests never open windows


@pytest.fixture(scope="session")
def vgg16():
    """The course's default extractor: VGG-16, original Caffe weights, max pooling."""
    from nstlib.features import VGGFeatures

    return VGGFeatures("vgg16", "caffe")


@pytest.fixture(autouse=True)
def _vgg16_left_in_the_default_layout(request):
    """No test may leave the session's VGG changed: bf16 runs put the networks they use in
    channels-last and must hand them back as they found them (training.Precision.restore), since
    fp32 convolutions in another layout add up in another order and a later test's last digits would
    depend on which tests ran before it."""
    yield
    if "vgg16" in request.fixturenames:
        vgg = request.getfixturevalue("vgg16")
        assert all(t.is_contiguous() for t in vgg.parameters()), "this test left the session's VGG in channels-last"


@pytest.fixture
def http_server():
    """A fresh tests.http_server.LocalServer on 127.0.0.1 per test, shut down in teardown."""
    with serve() as server:
        yield server


def shared_file(env_var: str, name: str):
    """A file of the developers' shared offline copies, found through `env_var`.

    Those copies exist on CI and on the developers' machines, not on a user's: there the test is
    skipped, but on CI (CI=1, set by .ci/run) a missing file fails the test, so nothing is silently
    skipped where it matters.
    """
    import os
    from pathlib import Path

    directory = os.environ.get(env_var)
    path = Path(directory) / name if directory else None
    if path is None or not path.is_file():
        message = f"{name} not found through {env_var}={directory!r}"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message + " (developers' shared files only)")
    return path
