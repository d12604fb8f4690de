"""The ffhq set end to end over the channel: its semantic codecs, `edsc bench codec --models ffhq`, `edsc edit --models ffhq`.

Slow tests: they need the converted FFHQ generator and the CelebA wheel (the set-up makes both).
"""

from __future__ import annotations

import json

import pytest

from editable_deepsc.cli import main


def _codecs():
    from editable_deepsc.zoo.sets import load_set

    return load_set("ffhq").codecs()


def test_the_ffhq_set_names_its_codecs_and_they_are_registered_compact():
    from editable_deepsc.zoo import registry

    codecs = _codecs()
    assert sorted(codecs) == [128, 256, 512, 1024]
    total = 0
    for k, name in codecs.items():
        card = registry.card(name)
        cfg = card.config
        assert (cfg["k"], cfg["basis"], cfg["keep"], cfg["diagonal"]) == (k, "separable", 2 * (k - 1), True)
        assert cfg["generator"] == "mobilestylegan-ffhq" and cfg["image_size"] == 256
        assert cfg["cbr"] == pytest.approx(k / (3 * 256 * 256))
        assert cfg["data"]["inversion_pool"] >= 700  # CelebA training photos, encoder + hybrid inversions
        total += card.path.stat().st_size
    assert total < 16e6  # the built-in set stays small
    from editable_deepsc.zoo.sets import load_set

    assert load_set("ffhq").codec() == codecs[1024]  # the only k whose received faces are sometimes kept


@pytest.mark.slow
def test_bench_codec_on_edited_celeba_photos(tmp_path, capsys):
    rc = main(["bench", "codec", "--models", "ffhq", "--k", "1024", "--snr", "20", "--channel", "awgn",
               "--method", "semantic,uncoded-pca", "--n", "2", "--photo-cache", str(tmp_path / "cache"),
               "--out", str(tmp_path / "c.md"), "--quiet"])
    assert rc == 0
    res = json.loads((tmp_path / "c.json").read_text())
    rows = {r["method"]: r for r in res["rows"]}
    assert res["meta"]["latent_source"] == "edited-photos" and res["meta"]["photos"] == ["celeba-000701",
                                                                                           "celeba-000702"]
    sem, unc = rows["semantic"], rows["uncoded-pca"]
    assert sem["nmse"] < unc["nmse"] and sem["ssim"] > 0.8
    assert 0.0 < sem["identity_distance"] < 2.0 and 0.0 <= sem["identity_kept"] <= 1.0
    assert "edit kept" in (tmp_path / "c.md").read_text()


@pytest.mark.slow
def test_edit_cli_on_a_real_photo_keeps_the_person_and_pastes_back(tmp_path, capsys):
    from PIL import Image

    from editable_deepsc.data.celeba import celeba_jpeg

    photo = tmp_path / "p.jpg"
    photo.write_bytes(celeba_jpeg(702))  # smiling
    out, back = tmp_path / "rx.png", tmp_path / "back.png"
    rc = main(["edit", str(photo), "--models", "ffhq", "-i", "make her stop smiling", "--snr", "20",
               "--codec", _codecs()[1024], "--out", str(out), "--paste-back", str(back), "--json"])
    assert rc == 0
    rec = json.loads(capsys.readouterr().out)
    assert rec["image_size"] == [1024, 1024] and rec["k"] == 1024 and rec["system"]["inversion"] == "hybrid"
    ident = rec["identity_to_photo"]
    assert ident["reference"] == "source photo" and ident["tx"] <= ident["threshold"]
    assert rec["target_met_tx"] and rec["scores_tx"]["happy"] < rec["scores_before"]["happy"]
    assert Image.open(out).size == (1024, 1024) and Image.open(back).size == (178, 218)
    assert "quad" in rec["transform"]


def test_paste_back_is_refused_on_faces64_before_any_work(tmp_path, capsys):
    from PIL import Image

    face = tmp_path / "f.png"
    Image.new("RGB", (64, 64), (128, 100, 90)).save(face)
    rc = main(["edit", str(face), "-i", "make her smile", "--models", "faces64", "--paste-back",
               str(tmp_path / "b.png")])
    assert rc == 2 and "--paste-back needs a full-size model set" in capsys.readouterr().err
    assert not (tmp_path / "b.png").exists()
