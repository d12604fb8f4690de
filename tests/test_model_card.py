"""edsc zoo card: the generator model card from measurements (tiny settings), cached numbers reproduce."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from editable_deepsc.eval import generator_quality as gq
from editable_deepsc.eval import model_card
from editable_deepsc.zoo import registry

pytestmark = pytest.mark.skipif(
    not (registry.CARDS_DIR / "edsc-faces64.json").is_file(), reason="edsc-faces64 not trained yet"
)


def test_image_grid_layout():
    x = torch.stack([torch.full((3, 4, 4), float(i) / 10) for i in range(5)])
    g = gq.image_grid(x, nrow=3, pad=1)
    assert g.shape == (3, 2 * 5 + 1, 3 * 5 + 1)
    assert float(g[0, 1, 1]) == 0.0 and float(g[0, 6, 1]) == pytest.approx(0.3)
    assert float(g[0, 0, 0]) == 1.0  # white gaps


def test_paired_difference_interval():
    a = [1.0, 2.0, 3.0, 4.0]
    d = gq.paired_difference(a, [0.0, 1.0, 2.0, 3.0])  # constant +1
    assert d["mean"] == pytest.approx(1.0) and d["ci_low"] == pytest.approx(1.0) and d["share_greater"] == 1.0
    assert d["sign_p"] == pytest.approx(0.125)  # 4 of 4 positive: 2 * 0.5**4
    d = gq.paired_difference([0.0, 2.0, 0.0, 2.0], [1.0, 1.0, 1.0, 1.0])
    assert d["mean"] == pytest.approx(0.0) and d["ci_low"] < 0 < d["ci_high"] and d["share_greater"] == 0.5
    with pytest.raises(Exception):
        gq.paired_difference([1.0], [0.0])


def test_encoder_section_reports_the_measured_numbers(tmp_path):
    from editable_deepsc.eval import encoder_card

    numbers = {"encoder": "edsc-e4e-faces64", "generator": "edsc-faces64", "parameters": 1234567, "n": 16,
               "psnr_db": 20.914, "ssim": 0.6551, "lpips": 0.64887, "lpips_metric": "lpips-proxy(effnet-lite0)",
               "identity": None}  # fmt: skip
    text = encoder_card.encoder_markdown(numbers, bench_page=tmp_path / "missing.md")
    assert "`edsc-e4e-faces64` (1,234,567 parameters)" in text
    assert "16 held-out teacher faces" in text and "PSNR 20.91 dB, SSIM 0.655, lpips-proxy(effnet-lite0) 0.6489." in text
    assert "face-api identity" not in text and "edsc bench invert" not in text
    assert "### Training" in text and "`edsc-e4e-faces64` (sha256" in text  # the registered encoder's training log
    page = tmp_path / "inversion.md"
    from editable_deepsc.eval.invert_bench import TABLE_END, TABLE_START

    page.write_text(f"x\n{TABLE_START}\n| method |\n|---|\n| encoder |\n{TABLE_END}\n")
    with_table = encoder_card.encoder_markdown({**numbers, "identity": 0.95}, bench_page=page)
    assert "face-api identity similarity 0.950" in with_table and with_table.rstrip().endswith("| encoder |")


def test_encoder_numbers_invert_the_card_faces(monkeypatch):
    from editable_deepsc.eval import encoder_card

    seen = {}

    def fake_invert(images, method, generator, encoder, with_stats):
        seen["images"], seen["method"] = images, method
        stats = [{"psnr": 20.0 + i, "ssim": 0.5, "lpips": 0.25, "lpips_metric": "m", "identity": 0.9}
                 for i in range(images.shape[0])]  # fmt: skip
        return type("Out", (), {"stats": stats})()

    monkeypatch.setattr(encoder_card, "invert", fake_invert)
    out = encoder_card.encoder_numbers(2)
    assert seen["method"] == "encoder" and torch.equal(seen["images"], gq.inversion_targets(2))
    assert out["psnr_db"] == pytest.approx(20.5) and out["identity"] == pytest.approx(0.9) and out["n"] == 2
    assert out["parameters"] > 100_000 and encoder_card.cache_key(2).endswith("-2.json")


@pytest.mark.slow
def test_card_written_and_cache_reproduces(tmp_path, monkeypatch):
    monkeypatch.setattr(model_card, "CACHE_DIR", tmp_path / "cache")
    # the Frechet distance itself is tested with the metrics; here a cheap stand-in (1280-d eigh costs ~8 s)
    import editable_deepsc.metrics.fid as fid

    monkeypatch.setattr(fid, "fid_from_features", lambda a, b: float(((a.mean(0) - b.mean(0)) ** 2).sum()))
    out = tmp_path / "docs" / "models.md"
    kw = dict(img_dir=tmp_path / "docs" / "img", fid_samples=6, inversion_faces=2, inversion_steps=3)
    model_card.write_model_card(out, **kw)
    text = out.read_text()
    numbers = json.loads(out.with_suffix(".json").read_text())
    assert "proxy" in text.lower() and "fid-proxy(effnet-lite0) at 64 px input" in text
    assert "(img/faces64-vs-teacher.png)" in text and (tmp_path / "docs/img/faces64-style-mixing.png").is_file()
    assert numbers["generators"]["edsc-faces64"]["num_ws"] == 5
    assert numbers["fid"]["floor"] > 0 and numbers["fid"]["edsc-faces64"] > 0
    spaces = [(r["generator"], r["space"]) for r in numbers["inversion"]]
    assert spaces == [("teacher-dcgan64", "w"), ("edsc-faces64", "w"), ("edsc-faces64", "wplus"), ("edsc-faces64", "wplus")]
    assert numbers["inversion"][3]["tie"] == numbers["inversion_tie_selection"]["tie"] > 0
    assert len(numbers["inversion"][1]["psnr_per_image"]) == 2 and "W+ property" in text
    assert "## Inversion encoder (`edsc-e4e-faces64`)" in text and "Not yet measured" not in text
    assert numbers["encoder"]["n"] == 2 and numbers["encoder"]["psnr_db"] > 12 and numbers["encoder"]["parameters"] > 0
    chunk = next((tmp_path / "cache" / "fid-teacher-64px").glob("seeds-*.npy"))
    np.save(chunk, np.load(chunk) + 1.0)  # a cached chunk is used as is ...
    model_card.write_model_card(out, **kw)
    again = json.loads(out.with_suffix(".json").read_text())
    assert again["inversion"] == numbers["inversion"]
    assert again["fid"]["floor"] != numbers["fid"]["floor"] or again["fid"]["edsc-faces64"] != numbers["fid"]["edsc-faces64"]
    model_card.write_model_card(out, use_cache=False, **kw)  # ... and --no-cache recomputes it
    fresh = json.loads(out.with_suffix(".json").read_text())
    assert fresh["fid"]["floor"] == pytest.approx(numbers["fid"]["floor"], rel=1e-6)
