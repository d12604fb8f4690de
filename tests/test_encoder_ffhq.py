"""The ffhq set's encoder: configurable input side, float16 weights, sample cache, training and resume.

Everything runs on a tiny random MobileStyleGAN (64 px, W+ 11 x 16, a 32 px exit)
and a tiny encoder config; the shipped ``edsc-e4e-ffhq`` is checked through the set.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch
from safetensors import safe_open

from editable_deepsc.errors import BadInput, CheckpointError
from editable_deepsc.inversion.encoder import E4EEncoder, load_encoder, save_encoder
from editable_deepsc.rng import derive_seed, make_generator
from editable_deepsc.eval import encoder_ffhq as evf
from editable_deepsc.train import encoder_ffhq as ef
from editable_deepsc.train import encoder_samples as es
from editable_deepsc.train.exits import downsample, latent_for_seed

sys.path.insert(0, str(Path(__file__).parent))
from test_ffhq_generator import tiny  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_torch_thread_module")

CHANNELS = (4, 8, 8, 8)


def tiny_g():
    g = tiny(exits={"32": 1})
    with torch.no_grad():
        g.w_avg.copy_(g.mapping(torch.randn(64, 16, generator=torch.Generator().manual_seed(0))).mean(0))
    return g


def tiny_cfg(**kw) -> ef.FFHQEncoderConfig:
    base = dict(n=16, size=32, channels=CHANNELS, backbone=None, readout="conv", exit_share=0.5, shard_every=1, steps=4,
                batch_size=4, lr=1e-3,
                progressive_every=1, checkpoint_minutes=100.0, val_n=4, seed=3)  # fmt: skip
    base.update(kw)
    return ef.FFHQEncoderConfig(**base)


def test_encoder_reads_a_smaller_side_than_the_generator_and_outputs_w_plus():
    g = tiny_g()
    enc = E4EEncoder.for_generator(g, CHANNELS, resolution=32)
    assert enc.resolution == 32 and torch.equal(enc.w_avg, g.w_avg)
    w = enc(torch.zeros(2, 3, 32, 32))
    assert w.shape == (2, g.num_ws, g.w_dim) and w.dtype == torch.float32
    with pytest.raises(BadInput, match="input must have shape"):
        enc(torch.zeros(2, 3, 64, 64))
    with pytest.raises(BadInput, match="exceeds"):
        E4EEncoder.for_generator(g, CHANNELS, resolution=128)


def test_float16_weights_load_as_float32_and_are_checked_against_the_generator(tmp_path):
    g = tiny_g()
    torch.manual_seed(0)
    enc = E4EEncoder.for_generator(g, CHANNELS, resolution=32)
    for h in enc.heads:  # non-zero offsets, so the comparison covers them
        torch.nn.init.normal_(h.linear.weight, std=0.05)
    p = tmp_path / "enc.safetensors"
    save_encoder(enc, p, half=True)
    with safe_open(str(p), "pt") as f:
        assert f.get_tensor("stem.0.weight").dtype == torch.float16 and f.get_tensor("w_avg").dtype == torch.float32
    back = load_encoder(p, generator=g)
    assert back.resolution == 32 and next(back.parameters()).dtype == torch.float32
    x = torch.rand(2, 3, 32, 32) * 2 - 1
    with torch.no_grad():
        err = (back(x) - enc(x)).abs().max()
    assert 0 < err < 5e-3  # float16 rounding, nothing more
    other = tiny(exits={})
    other.num_ws = 5
    with pytest.raises(CheckpointError, match="needs"):
        load_encoder(p, generator=other)


def test_sample_shards_hold_known_latents_and_their_images_and_are_kept(tmp_path):
    g = tiny_g()
    assert [es.shard_source(k, 0.5) for k in range(4)] == ["full", "exit", "full", "exit"]
    assert {es.shard_source(k, 0.0) for k in range(5)} == {"full"}
    p_full = es.build_shard(g, tmp_path, 0, 32, exit_share=0.5)
    p_exit = es.build_shard(g, tmp_path, 1, 32, exit_share=0.5)
    full, ex = es.load_shard(p_full), es.load_shard(p_exit)
    assert full["images"].dtype == torch.uint8 and full["images"].shape == (es.SHARD_SIZE, 3, 32, 32)
    assert es.shard_info(p_exit) == {"seeds": list(range(8, 16)), "source": "exit"}
    assert torch.equal(full["w_plus"][3], latent_for_seed(g, 3))
    with torch.no_grad():
        want_full = es.to_uint8(downsample(g.synthesis(full["w_plus"][:2]).clamp(-1, 1), 32))
        want_exit = es.to_uint8(g.synthesis(ex["w_plus"][:2], size=32))
    assert (full["images"][:2].int() - want_full.int()).abs().max() <= 1
    assert (ex["images"][:2].int() - want_exit.int()).abs().max() <= 1
    stamp = p_full.stat().st_mtime_ns
    es.build_shard(g, tmp_path, 0, 32, exit_share=0.5)
    assert p_full.stat().st_mtime_ns == stamp
    assert es.complete_shards(tmp_path) == [p_full, p_exit]


def test_one_training_step_lowers_the_latent_loss_on_its_batch(tmp_path):
    g = tiny_g()
    es.build_shard(g, tmp_path / "samples", 0, 32)
    cfg = tiny_cfg(batch_size=8, progressive_every=0)
    pool = ef.SamplePool(tmp_path / "samples")
    enc = ef.new_encoder(g, cfg).train()
    opt = torch.optim.Adam(enc.parameters(), lr=cfg.lr)
    x, w = pool.batch(cfg.batch_size, make_generator(derive_seed(cfg.seed, "step", 0)))
    before = ef.latent_mse(enc, x, w)
    out = ef.train_step(enc, g, pool, opt, cfg, 0)
    assert out["latent"] == pytest.approx(before, rel=1e-4)  # the step saw exactly this batch
    assert ef.latent_mse(enc, x, w) < 0.9 * before


def test_a_backbone_encoder_caches_its_maps_and_learns_from_them(tmp_path):
    pytest.importorskip("efficientnet_lite_pytorch")
    g = tiny_g()
    es.build_shard(g, tmp_path / "samples", 0, 64)
    cfg = tiny_cfg(size=64, backbone="efficientnet-lite0", readout="conv", channels=(8,), head_width=8, batch_size=8,
                   progressive_every=0)  # fmt: skip
    enc = ef.new_encoder(g, cfg).train()
    assert enc.config()["backbone"] == "efficientnet-lite0" and enc.level_sizes == [2, 4, 8]
    assert not any(k.startswith("_") or "blocks" in k for k in enc.state_dict())  # the backbone is not stored
    pool = ef.SamplePool(tmp_path / "samples")
    opt = torch.optim.Adam(enc.parameters(), lr=cfg.lr)
    x, w = pool.batch(cfg.batch_size, make_generator(derive_seed(cfg.seed, "step", 0)))
    before = ef.latent_mse(enc, x, w)
    out = ef.train_step(enc, g, pool, opt, cfg, 0)
    assert (tmp_path / "maps" / "maps-0000.safetensors").is_file()
    assert out["latent"] == pytest.approx(before, rel=1e-3)  # cached float16 maps = the images' maps
    assert ef.latent_mse(enc, x, w) < 0.9 * before
    p = tmp_path / "enc.safetensors"
    save_encoder(enc, p, half=True)
    back = load_encoder(p, generator=g)
    assert back.backbone == "efficientnet-lite0" and back(x[:1]).shape == (1, 11, 16)


def test_the_linear_readout_is_the_ridge_fit_and_the_run_keeps_the_best(tmp_path):
    pytest.importorskip("efficientnet_lite_pytorch")
    g = tiny_g()
    cfg = tiny_cfg(n=32, size=64, backbone="efficientnet-lite0", readout="linear", refit_every=2, val_n=8)
    out = ef.fit_ffhq_readout(tmp_path, cfg, g, log=lambda s: None, command="edsc train encoder --models ffhq")
    assert out["fits"] == 3 and out["samples"] == 32  # fitted on 8, 24, then all 32 samples
    info = evf.best_training_info(tmp_path)
    assert info["criterion"] == "latent_mse" and info["lam0"] in ef.RIDGE_GRID
    enc = evf.load_best(tmp_path, g)
    assert enc.readout == "linear" and set(enc.state_dict()) >= {"lin0.weight", "lin_delta.weight", "feat_std"}
    val = ef.validation_set(g, tmp_path, cfg)
    assert ef.latent_mse(enc, *val) == pytest.approx(info["val_latent_mse"], rel=1e-4)
    assert info["val_latent_mse"] < float((val[1] - g.w_avg).pow(2).mean())  # beats the mean latent
    # the fit is the least-squares solution: on its training data it beats any other readout of the same form
    feats, w = ef.pooled_dataset(enc, ef.SamplePool(tmp_path / "samples"))
    x = ((feats - feats.mean(0)) / feats.std(0).clamp_min(1e-6)).float()
    fitted = (ef._readout(enc, feats.float()) - w).pow(2).mean()
    with torch.no_grad():
        enc.lin0.weight.mul_(0.9)
    assert (ef._readout(enc, feats.float()) - w).pow(2).mean() > fitted
    assert x.shape == (32, 472)
    segs = evf.training_segments(tmp_path)
    assert segs == [{"from_step": 0, "command": "edsc train encoder --models ffhq"}]


def test_image_loss_step_backpropagates_through_the_exit(tmp_path):
    g = tiny_g()
    es.build_shard(g, tmp_path / "samples", 0, 32)
    cfg = tiny_cfg(image_weight=1.0, image_every=1, image_batch=2, perceptual_weight=0.0, celeba_share=0.0)
    enc = ef.new_encoder(g, cfg).train()
    opt = torch.optim.Adam(enc.parameters(), lr=cfg.lr)
    before = {k: v.clone() for k, v in enc.state_dict().items()}
    out = ef.train_step(enc, g, ef.SamplePool(tmp_path / "samples"), opt, cfg, 0, recon=ef_recon())
    assert out["image"] > 0 and out["loss"] > out["latent"]
    assert not torch.equal(before["stem.0.weight"], enc.state_dict()["stem.0.weight"])
    assert all(p.grad is None for p in g.parameters())  # the generator stays frozen


def ef_recon():
    from editable_deepsc.inversion.losses import ReconstructionLoss

    return ReconstructionLoss(perceptual=0.0)


def test_an_interrupted_run_resumes_to_the_same_encoder_and_keeps_the_best(tmp_path):
    g = tiny_g()
    cfg = tiny_cfg()
    whole = ef.train_ffhq_encoder(tmp_path / "a", cfg, g, progress=False, log=lambda s: None)
    assert whole["steps"] == 4 and whole["samples"] == 16  # the cache grew during training
    part = ef.train_ffhq_encoder(tmp_path / "b", cfg, g, stop_at=2, progress=False, log=lambda s: None)
    assert part["steps"] == 2 and (tmp_path / "b" / ef.CHECKPOINT_FILE).is_file()
    rest = ef.train_ffhq_encoder(tmp_path / "b", cfg, g, progress=False, log=lambda s: None)
    assert rest["steps"] == 4
    a = registry_state(tmp_path / "a" / ef.CHECKPOINT_FILE)
    b = registry_state(tmp_path / "b" / ef.CHECKPOINT_FILE)
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    info = evf.best_training_info(tmp_path / "b")
    assert info["step"] in (2, 4) and info["val_latent_mse"] == pytest.approx(rest["best_score"])
    assert info["criterion"] == rest["criterion"] == "latent_mse"
    best = evf.load_best(tmp_path / "b", g)
    val = ef.validation_set(g, tmp_path / "b", cfg)
    assert ef.latent_mse(best, *val) == pytest.approx(info["val_latent_mse"], rel=1e-5)


def registry_state(path: Path) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    return {k: v for k, v in load_file(str(path)).items() if k.startswith("module.")}


def test_with_image_losses_the_best_checkpoint_is_chosen_by_reconstruction_psnr(tmp_path):
    g = tiny_g()
    cfg = tiny_cfg(steps=2, image_weight=1.0, image_every=1, perceptual_weight=0.0, celeba_share=0.0, val_celeba=0)
    out = ef.train_ffhq_encoder(tmp_path / "w", cfg, g, progress=False, log=lambda s: None)
    info = evf.best_training_info(tmp_path / "w")
    assert out["criterion"] == info["criterion"] == "psnr" and info["score"] == pytest.approx(-info["val_psnr"])
    val = ef.validation_set(g, tmp_path / "w", cfg)
    assert ef.exit_psnr(evf.load_best(tmp_path / "w", g), g, val[0]) == pytest.approx(info["val_psnr"], abs=1e-4)
    with pytest.raises(BadInput, match="held"):
        ef.celeba_aligned(tmp_path, 32, "heldout")


def test_publish_writes_float16_weights_a_card_and_the_held_out_numbers(tmp_path):
    g = tiny_g()
    cfg = tiny_cfg(steps=2)
    ef.train_ffhq_encoder(tmp_path / "w", cfg, g, progress=False, log=lambda s: None)
    ev = evf.evaluate_encoder(evf.load_best(tmp_path / "w", g), g, n=4, work_dir=tmp_path / "w")
    assert ev["n"] == 4 and ev["seeds"].startswith("1000000") and ev["latent_mse"] > 0
    assert ev["psnr_db_min"] <= ev["psnr_db"] and ev["latent_mse_mean_w"] > 0 and ev["seconds_per_image"] > 0
    path = evf.publish_best(tmp_path / "w", g, name="toy-e4e", command="edsc train encoder --models ffhq",
                           evaluation=ev, weights_dir=tmp_path / "zoo" / "weights")  # fmt: skip
    card = (tmp_path / "zoo" / "cards" / "toy-e4e.json").read_text()
    assert "edsc train encoder --models ffhq" in card and "held-out seeds 1000000..1000003" in card
    assert "from step 0: edsc train encoder --models ffhq --workdir" in card and "--steps 2 --lr 0.001" in card
    enc = load_encoder(path, generator=g)
    assert enc(torch.zeros(1, 3, 32, 32)).shape == (1, 11, 16)


def test_bad_config_values_are_refused():
    for kw in ({"size": 48}, {"exit_share": 1.5}, {"lr": 0.0}, {"delta_weight": -1.0}, {"n": 0}):
        with pytest.raises(BadInput):
            tiny_cfg(**kw).validate()


def test_the_ffhq_set_names_its_encoder_and_it_reads_256_faces_into_w_plus():
    from editable_deepsc.zoo import registry
    from editable_deepsc.zoo.sets import load_set

    name = load_set("ffhq").member("encoder")
    assert name == "edsc-e4e-ffhq"
    card = registry.card(name)
    assert card.kind == "encoder" and card.resolution == 256 and "edsc train encoder --models ffhq" in card.source
    assert (card.config["num_ws"], card.config["w_dim"], card.config["backbone"]) == (23, 512, "efficientnet-lite0")
    assert registry.weights_path(name).stat().st_size <= 12_500_000  # float16 storage
    pytest.importorskip("efficientnet_lite_pytorch")
    enc = load_encoder(name)
    with torch.no_grad():
        w = enc(torch.zeros(2, 3, 256, 256))
    assert w.shape == (2, 23, 512) and w.dtype == torch.float32 and torch.isfinite(w).all()
    try:
        from editable_deepsc.generator.ffhq import load_ffhq

        g = load_ffhq(exits=False)
    except CheckpointError:
        return  # the converted generator is not in this user cache
    assert load_encoder(name, generator=g).resolution == 256
