"""The shipped inversion encoder on the built-in generator (slow: loads the real models)."""

from __future__ import annotations

import json

import pytest
import torch

from editable_deepsc.cli import main
from editable_deepsc.zoo import registry

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("one_torch_thread_module")]


@pytest.fixture(scope="module")
def models():
    from editable_deepsc.inversion.encoder import load_encoder
    from editable_deepsc.generator import load_generator

    g = load_generator("edsc-faces64")
    return g, load_encoder("edsc-e4e-faces64", generator=g)


def test_encoder_card_is_complete_and_small():
    c = registry.card("edsc-e4e-faces64")
    assert c.kind == "encoder" and "MIT" in c.licence and "edsc train encoder" in c.source
    assert c.path.stat().st_size < 8e6
    assert registry.sha256_file(c.path) == c.sha256


def test_encoder_and_hybrid_on_held_out_faces(models):
    from editable_deepsc.generator.teacher import teacher_faces, test_seeds
    from editable_deepsc.inversion.invert import invert

    g, enc = models
    x = teacher_faces(test_seeds(4, offset=500))
    e = invert(x, "encoder", generator=g, encoder=enc)
    h = invert(x, "hybrid", generator=g, encoder=enc, steps=20)
    mean = lambda out, k: sum(s[k] for s in out.stats) / len(out.stats)  # noqa: E731
    assert e.w_plus.shape == (4, 5, 100)
    assert mean(e, "psnr") > 17.0  # the mean teacher image scores ~14 dB
    assert mean(h, "psnr") > mean(e, "psnr") + 1.0
    assert mean(h, "lpips") < mean(e, "lpips")


def test_invert_astronaut_photo(tmp_path, capsys):
    from editable_deepsc.generator.photos import real_photo
    from editable_deepsc.imaging.io import save_image

    photo = tmp_path / "astronaut.png"
    save_image(real_photo("astronaut"), photo)
    out = tmp_path / "recon.png"
    assert main(["invert", str(photo), "--method", "hybrid", "--steps", "20", "--out", str(out), "--json"]) == 0
    res = json.loads(capsys.readouterr().out)
    assert res["aligned"] is True and res["source_size"] == [512, 512]
    assert res["psnr"] > 15.0 and out.is_file()
    torch.testing.assert_close(torch.tensor(res["num_ws"]), torch.tensor(5))
