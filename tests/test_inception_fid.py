"""FID Inception-v3 backbone: discovery under $TORCH_HOME, loading, features, FID wiring."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from editable_deepsc.errors import CheckpointError
from editable_deepsc.metrics import inception
from editable_deepsc.metrics.fid import FID, PROXY_NAME, STANDARD_NAME, fid_from_features


def _images(seed: int, n: int = 3, side: int = 64) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.rand(n, 3, side, side, generator=g) * 2 - 1


@pytest.fixture(scope="module")
def random_state() -> dict[str, torch.Tensor]:
    """State dict of a randomly initialised network, laid out like pytorch-fid's file (with ``fc``)."""
    with torch.random.fork_rng():
        torch.manual_seed(0)
        net = inception.FidInceptionV3()
        for m in net.modules():  # non-trivial BatchNorm statistics
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.uniform_(-0.1, 0.1)
                m.running_var.uniform_(0.5, 1.5)
        state = dict(net.state_dict())
        state["fc.weight"] = torch.randn(1008, inception.FID_FEATURE_DIM) * 0.01
        state["fc.bias"] = torch.zeros(1008)
    return state


@pytest.fixture
def torch_home(tmp_path, monkeypatch, random_state):
    d = tmp_path / "hub" / "checkpoints"
    d.mkdir(parents=True)
    torch.save(random_state, d / inception.FID_INCEPTION_FILE)
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    return d


def test_state_dict_layout_matches_pytorch_fid_names(random_state):
    keys = set(random_state)
    assert "Conv2d_1a_3x3.conv.weight" in keys and "Conv2d_1a_3x3.bn.running_var" in keys
    assert tuple(random_state["Conv2d_1a_3x3.conv.weight"].shape) == (32, 3, 3, 3)
    assert tuple(random_state["Mixed_5b.branch_pool.conv.weight"].shape) == (32, 192, 1, 1)
    assert tuple(random_state["Mixed_6e.branch7x7dbl_5.conv.weight"].shape) == (192, 192, 1, 7)
    assert tuple(random_state["Mixed_7c.branch3x3dbl_3b.conv.weight"].shape) == (384, 384, 3, 1)
    assert not any(k.endswith(".bias") and ".conv." in k for k in keys)  # bias-free convolutions
    n_params = sum(v.numel() for k, v in random_state.items() if not k.startswith("fc.") and "running" not in k
                   and "num_batches" not in k)
    assert n_params == 27_161_264 - 3_326_696 - 2_049_000  # torchvision inception_v3 minus AuxLogits and fc
    bn = inception.FidInceptionV3().Mixed_7b.branch1x1.bn
    assert bn.eps == pytest.approx(1e-3)


def test_tf_pooling_excludes_padding():
    x = torch.ones(1, 2, 5, 5)
    assert torch.equal(inception._avg_pool_tf(x), x)  # count_include_pad=True would give 4/9 at corners
    assert not inception.FidInceptionV3().Mixed_7b.max_pool and inception.FidInceptionV3().Mixed_7c.max_pool


def test_absent_file_gives_proxy(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    assert inception.fid_inception_path() is None
    fid = FID()
    assert fid.is_proxy and fid.name == PROXY_NAME and fid.dim == 1280


def test_standard_fid_from_weight_file(torch_home):
    path = inception.fid_inception_path()
    assert path == torch_home / inception.FID_INCEPTION_FILE

    net = inception.load_fid_inception(path, "cpu")
    assert net is inception.load_fid_inception(str(path), "cpu")  # cached
    a = _images(1, n=2)
    fa = net(a)
    assert fa.shape == (2, inception.FID_FEATURE_DIM) and fa.dtype == torch.float32
    assert torch.isfinite(fa).all() and (fa >= 0).all() and fa.abs().sum() > 0
    # inputs are resized to 299 px first: a 299-px copy of the same content gives the same features
    up = torch.nn.functional.interpolate(a[:1], size=(299, 299), mode="bilinear", align_corners=False)
    assert torch.allclose(net(up), fa[:1], atol=1e-5)

    fid = FID()
    assert not fid.is_proxy and fid.name == STANDARD_NAME and fid.dim == 2048
    feats_a = fid.features(a, batch_size=1)
    np.testing.assert_allclose(feats_a, fa.double().numpy(), rtol=1e-5, atol=1e-6)
    assert fid(a, a) == pytest.approx(0.0, abs=1e-6 * float(np.var(feats_a, 0).sum()))
    assert fid_from_features(feats_a, fid.features(_images(2, n=2))) > 0


def test_bad_checkpoints_raise_checkpoint_error(tmp_path, random_state):
    missing = dict(random_state)
    del missing["Mixed_6a.branch3x3.bn.weight"]
    torch.save(missing, tmp_path / "missing.pth")
    with pytest.raises(CheckpointError, match="missing"):
        inception.load_fid_inception(tmp_path / "missing.pth")

    extra = dict(random_state, **{"AuxLogits.fc.weight": torch.zeros(1008, 768)})
    torch.save(extra, tmp_path / "extra.pth")
    with pytest.raises(CheckpointError, match="unexpected"):
        inception.load_fid_inception(tmp_path / "extra.pth")

    shape = dict(random_state, **{"Mixed_5b.branch_pool.conv.weight": torch.zeros(64, 192, 1, 1)})
    torch.save(shape, tmp_path / "shape.pth")
    with pytest.raises(CheckpointError, match="shape"):
        inception.load_fid_inception(tmp_path / "shape.pth")

    (tmp_path / "junk.pth").write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="cannot read"):
        inception.load_fid_inception(tmp_path / "junk.pth")
    with pytest.raises(CheckpointError, match="not found"):
        inception.load_fid_inception(tmp_path / "absent.pth")
