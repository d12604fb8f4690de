"""``edsc invert`` and ``edsc bench invert`` through ``main([...])``: outputs, JSON, bad inputs (exit 2)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image

from editable_deepsc.cli import main
from editable_deepsc.generator import teacher as face_source
from editable_deepsc.generator.teacher import load_teacher, teacher_faces
from editable_deepsc.imaging.io import save_image
from editable_deepsc.inversion.encoder import E4EEncoder, save_encoder

pytestmark = pytest.mark.usefixtures("one_torch_thread_module")

GEN = ["--generator", "teacher-dcgan64"]


@pytest.fixture(scope="module")
def encoder_file(tmp_path_factory):
    torch.manual_seed(0)
    p = tmp_path_factory.mktemp("enc") / "enc.safetensors"
    save_encoder(E4EEncoder.for_generator(load_teacher()), p)
    return p


@pytest.fixture(scope="module")
def face_file(tmp_path_factory):
    p = tmp_path_factory.mktemp("face") / "face.png"
    save_image(teacher_faces(face_source.test_seeds(1)), p)
    return p


def _png(path, w, h, value=128):
    Image.fromarray(np.full((h, w, 3), value, np.uint8)).save(path)
    return path


def test_invert_encoder_json_and_outputs(tmp_path, face_file, encoder_file, capsys):
    out, lat = tmp_path / "recon.png", tmp_path / "w.safetensors"
    argv = ["invert", str(face_file), "--method", "encoder", "--encoder", str(encoder_file), *GEN,
            "--out", str(out), "--latent-out", str(lat), "--json", "--seed", "3"]
    assert main(argv) == 0
    res = json.loads(capsys.readouterr().out)
    assert res["num_ws"] == 1 and res["w_dim"] == 100 and res["method"] == "encoder"
    assert res["lpips_is_proxy"] is True and "proxy" in res["lpips_metric"]
    assert 0 < res["psnr"] < 60 and -1 <= res["ssim"] <= 1 and res["lpips"] >= 0 and res["seconds"] >= 0
    assert res["aligned"] is False and res["seed"] == 3
    assert res["identity"] is None or -1 <= res["identity"] <= 1
    assert Image.open(out).size == (64, 64)
    from safetensors.torch import load_file

    assert load_file(str(lat))["w_plus"].shape == (1, 1, 100)


def test_invert_optimize_improves_on_encoder(tmp_path, face_file, encoder_file, capsys):
    base = ["invert", str(face_file), "--encoder", str(encoder_file), *GEN, "--json"]
    assert main([*base, "--method", "encoder"]) == 0
    enc = json.loads(capsys.readouterr().out)
    assert main([*base, "--method", "hybrid", "--steps", "15"]) == 0
    hyb = json.loads(capsys.readouterr().out)
    assert hyb["steps"] == 15 and hyb["psnr"] > enc["psnr"]


@pytest.mark.parametrize(
    "make, match",
    [
        (lambda d: _png(d / "wide.png", 96, 72), "square"),
        (lambda d: _png(d / "tiny.png", 32, 32), "too small"),
        (lambda d: d / "missing.png", "not found"),
        (lambda d: (d / "junk.png").write_bytes(b"no image here") and d / "junk.png", "cannot read"),
    ],
)
def test_bad_images_exit_2_and_write_nothing(tmp_path, encoder_file, capsys, make, match):
    img = make(tmp_path)
    out = tmp_path / "out" / "recon.png"
    code = main(["invert", str(img), "--encoder", str(encoder_file), *GEN, "--out", str(out)])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("error:") and match in err and "Traceback" not in err
    assert not out.exists()


def test_corrupt_or_mismatched_encoder_exit_2(tmp_path, face_file, capsys):
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"\x00" * 64)
    assert main(["invert", str(face_file), "--encoder", str(bad), *GEN, "--method", "encoder"]) == 2
    assert "error:" in capsys.readouterr().err
    other = tmp_path / "other.safetensors"
    save_encoder(E4EEncoder(5, 100), other)
    assert main(["invert", str(face_file), "--encoder", str(other), *GEN, "--method", "encoder"]) == 2
    assert "needs" in capsys.readouterr().err


def test_bad_output_suffix_exit_2(tmp_path, face_file, encoder_file, capsys):
    assert main(["invert", str(face_file), "--encoder", str(encoder_file), *GEN, "--out", str(tmp_path / "r.xyz")]) == 2
    assert main(["invert", str(face_file), "--encoder", str(encoder_file), *GEN,
                 "--latent-out", str(tmp_path / "w.pt")]) == 2
    assert not list(tmp_path.iterdir())


def test_photo_without_face_exit_2(tmp_path, encoder_file, capsys):
    img = _png(tmp_path / "grey.png", 160, 160)
    assert main(["invert", str(img), "--encoder", str(encoder_file), *GEN, "--method", "encoder"]) == 2
    assert "face" in capsys.readouterr().err.lower()


def test_bench_invert_writes_markdown_table(tmp_path, encoder_file, capsys):
    from editable_deepsc.eval.invert_bench import read_table

    md = tmp_path / "inversion.md"
    argv = ["bench", "invert", "--n", "2", "--optimize-steps", "4", "--hybrid-steps", "1,2", *GEN,
            "--encoder", str(encoder_file), "--markdown", str(md), "--json", "--quiet"]
    assert main(argv) == 0
    res = json.loads(capsys.readouterr().out)
    methods = [r["method"] for r in res["rows"]]
    assert methods == ["encoder", "hybrid", "hybrid", "optimize", "optimize (w)"]
    opt = res["rows"][3]
    assert opt["speedup_vs_optimize"] == pytest.approx(1.0)
    assert res["rows"][0]["speedup_vs_optimize"] > 1.0
    assert set(res["targets"]) >= {"encoder_speedup", "hybrid_lpips_ratio"}
    table = read_table(md)
    assert table is not None and "LPIPS (proxy)" in table and table.count("\n") == 6
    assert md.with_suffix(".json").is_file()
    md.write_text("stale")
    assert main(["bench", "invert", "--render-only", "--markdown", str(md)]) == 0
    assert read_table(md) == table
    assert main(["bench", "invert", "--render-only", "--markdown", str(tmp_path / "none.md")]) == 2
