"""DeepJSCC baseline: CBR arithmetic, shapes, power, resumable training, the shipped models' PSNR."""

from __future__ import annotations

import math

import pytest
import torch

from editable_deepsc.baselines.deepjscc import (
    BUILTIN_CHANNELS,
    DeepJSCC,
    DeepJSCCConfig,
    available_channels,
    cbr_of,
    channel_uses,
    channels_for_cbr,
    save_model,
    load_model,
    nearest_channels,
    transmit_deepjscc,
)
from editable_deepsc.baselines.registry import transmit_image
from editable_deepsc.channel.config import ChannelConfig
from editable_deepsc.errors import BadInput, CheckpointError

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_cbr_arithmetic():
    # k = c·(H/4)·(W/4)/2 complex uses; CBR = k/(3HW) = c/96 for any size
    assert channel_uses(16, 64, 64) == 2048 and 2048 / (64 * 64 * 3) == pytest.approx(1 / 6)
    assert [cbr_of(c) for c in BUILTIN_CHANNELS] == pytest.approx([1 / 6, 1 / 12, 1 / 24, 1 / 48])
    assert [channels_for_cbr(x) for x in (1 / 6, 1 / 12, 1 / 24, 1 / 48)] == [16, 8, 4, 2]
    assert channel_uses(2, 32, 48) == 96 and 96 / (32 * 48 * 3) == pytest.approx(1 / 48)  # non-square too
    with pytest.raises(BadInput):
        channels_for_cbr(0.1)  # not a multiple of 1/96
    with pytest.raises(BadInput):
        channel_uses(8, 62, 64)
    assert nearest_channels(0.1, available=(16, 8, 4, 2)) == 8
    assert nearest_channels(1.0, available=(16, 8, 4, 2)) == 16
    assert nearest_channels(1e-4, available=(16, 8, 4, 2)) == 2
    with pytest.raises(BadInput):
        nearest_channels(-1.0, available=(8,))


def test_shapes_power_and_roundtrip(tmp_path):
    torch.manual_seed(0)
    net = DeepJSCC(DeepJSCCConfig(c=4, width=8))
    x = torch.rand(3, 3, 32, 32) * 2 - 1
    s = net.encode(x)
    assert s.dtype == torch.complex64 and s.shape == (3, channel_uses(4, 32, 32)) == (3, 128)
    assert torch.allclose(s.abs().pow(2).mean(1), torch.ones(3), atol=1e-5)  # unit power per image
    y = net(x, torch.tensor([0.0, 10.0, 20.0]), rng=torch.Generator().manual_seed(1))
    assert y.shape == x.shape and y.min() >= -1 and y.max() <= 1
    with pytest.raises(BadInput):
        net.encode(torch.zeros(1, 1, 32, 32))
    p = tmp_path / "m.safetensors"
    save_model(net, p)
    back = load_model(str(p))
    assert back.config == net.config
    assert torch.equal(back.encode(x), net.encode(x))
    with pytest.raises(CheckpointError):
        load_model(str(tmp_path / "missing.safetensors"))
    # registry dispatch with an explicit model: exact CBR of the model is reported
    r = transmit_image(x[:1], "deepjscc", cbr=0.5, channel=ChannelConfig("rayleigh", 6.0), seed=3, model=str(p))
    j = r.to_json()
    assert j["k"] == 128 and j["cbr"] == pytest.approx(1 / 24) and j["cbr_requested"] == 0.5
    assert j["power"] == pytest.approx(1.0, abs=1e-5) and r.image.shape == (1, 3, 32, 32)
    with pytest.raises(BadInput):
        transmit_deepjscc(x[:1], channel=ChannelConfig("awgn", 99.0), model=str(p))


def test_training_resume_matches_uninterrupted(tmp_path):
    from editable_deepsc.train.deepjscc import DeepJSCCTrainConfig, train_deepjscc

    cfg = DeepJSCCTrainConfig(c=2, width=4, steps=4, batch=4, pool=8, checkpoint_every=2)
    a, sa = train_deepjscc(cfg, tmp_path / "a" / "run", progress=False)
    _, cut = train_deepjscc(cfg, tmp_path / "b" / "run", max_minutes=0.0, progress=False)  # "killed" after 1 step
    assert cut["steps_done"] == 1
    b, sb = train_deepjscc(cfg, tmp_path / "b" / "run", progress=False)  # resumes at step 1
    assert sa["steps_done"] == sb["steps_done"] == 4
    for (k, va), vb in zip(a.state_dict().items(), b.state_dict().values()):
        assert torch.allclose(va, vb, atol=1e-6), k
    with pytest.raises(BadInput):  # another architecture in the same workdir
        train_deepjscc(DeepJSCCTrainConfig(c=4, width=4, steps=4, batch=4, pool=8), tmp_path / "b" / "run",
                       progress=False)


def test_cli_train_bad_cbr():
    from editable_deepsc.cli import main

    assert main(["train", "deepjscc", "--cbr", "1/7", "--steps", "1", "--no-register"]) == 2
    assert main(["train", "deepjscc", "--cbr", "abc", "--steps", "1", "--no-register"]) == 2


@pytest.mark.skipif(set(available_channels()) != set(BUILTIN_CHANNELS), reason="built-in DeepJSCC weights not all registered")
def test_shipped_models_psnr_rises_with_snr_and_cbr():
    from editable_deepsc.generator.teacher import teacher_faces, test_seeds
    from editable_deepsc.metrics.image import psnr

    faces = teacher_faces(test_seeds(24, offset=500))
    table = {}
    for c in BUILTIN_CHANNELS:
        net = load_model(f"edsc-deepjscc-faces64-c{c}")
        for snr in (0.0, 10.0, 20.0):
            with torch.no_grad():
                rx = net(faces, snr, rng=torch.Generator().manual_seed(0))
            table[c, snr] = float(psnr(rx, faces).mean())
    for c in BUILTIN_CHANNELS:
        assert table[c, 0.0] < table[c, 10.0] < table[c, 20.0], table
    for snr in (0.0, 10.0, 20.0):
        vals = [table[c, snr] for c in sorted(BUILTIN_CHANNELS)]
        assert all(a < b for a, b in zip(vals, vals[1:])), table
    assert table[16, 20.0] > 22.0 and math.isfinite(table[2, 0.0])
