"""``edsc transmit`` and ``edsc bench ldpc`` through ``main(argv)``."""

from __future__ import annotations

import json

import pytest

from editable_deepsc.cli import main
from editable_deepsc.demo import sample_face
from editable_deepsc.imaging import save_image

REQUIRED = {"method", "snr_db", "channel", "cbr", "k", "image_size", "modulation", "code_rate", "codec", "quality",
            "payload_bytes", "ber", "bler", "decoded_ok", "psnr", "ssim", "seed"}


@pytest.fixture(scope="module")
def face_png(tmp_path_factory):
    p = tmp_path_factory.mktemp("img") / "face.png"
    save_image(sample_face(64), p)
    return p


def test_transmit_json_and_output(face_png, tmp_path, capsys):
    out = tmp_path / "rx.png"
    rc = main(["transmit", str(face_png), "--method", "jpeg-ldpc", "--cbr", "0.1", "--snr", "6", "--channel", "awgn",
               "--out", str(out), "--json", "--seed", "3"])
    assert rc == 0
    row = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert REQUIRED <= set(row)
    assert row["method"] == "jpeg-ldpc" and row["k"] == 1229 and row["image_size"] == [64, 64] and row["seed"] == 3
    assert row["decoded_ok"] is True and row["psnr"] > 20 and out.exists()


def test_transmit_ideal_and_text_output(face_png, capsys):
    assert main(["transmit", str(face_png), "--method", "ideal", "--cbr", "0.05", "--snr", "10", "--codec", "webp"]) == 0
    line = capsys.readouterr().out
    assert "ideal" in line and "decoded_ok=True" in line


def test_transmit_failure_is_exit_0_with_decoded_ok_false(face_png, tmp_path, capsys):
    out = tmp_path / "rx.png"
    rc = main(["transmit", str(face_png), "--cbr", "0.1", "--snr", "0", "--json", "--out", str(out)])
    assert rc == 0
    row = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert row["decoded_ok"] is False and out.exists()  # the fallback image is still written


def _bad_files(tmp_path):
    text = tmp_path / "notes.png"
    text.write_text("not an image")
    empty = tmp_path / "empty.png"
    empty.write_bytes(b"")
    return {"missing": tmp_path / "nope.png", "text": text, "empty": empty, "dir": tmp_path}


@pytest.mark.parametrize("case, extra, match", [
    ("missing", [], "not found"), ("text", [], "cannot read"), ("empty", [], "empty"), ("dir", [], "directory"),
    ("ok", ["--snr", "41"], "SNR"), ("ok", ["--snr", "-10.5"], "SNR"), ("ok", ["--cbr", "0"], "CBR"),
    ("ok", ["--cbr", "-0.1"], "CBR"), ("ok", ["--cbr", "0.0005"], "too small"),
    ("ok", ["--channel", "rician"], "unknown channel"), ("ok", ["--codec", "bpg"], "unknown codec"),
    ("ok", ["--method", "deepjscc2"], "unknown method"), ("ok", ["--decoder", "turbo"], "unknown LDPC decoder"),
])
def test_bad_input_exit_2_one_line_nothing_written(face_png, tmp_path, capsys, case, extra, match):
    files = _bad_files(tmp_path)
    src = face_png if case == "ok" else files[case]
    out = tmp_path / "rx.png"
    rc = main(["transmit", str(src), "--out", str(out), "--json"] + extra)
    err = capsys.readouterr().err.strip()
    assert rc == 2
    assert err.startswith("error:") and match in err and len(err.splitlines()) == 1
    assert not out.exists()


def test_bench_ldpc_reports_each_decoder_and_ratio(capsys):
    rc = main(["bench", "ldpc", "--k", "256", "--blocks", "6", "--snr", "3", "--json"])
    assert rc == 0
    res = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    names = [r["decoder"] for r in res["results"]]
    assert names == ["sionna", "cpp", "cpp-minsum"]
    for r in res["results"]:
        assert r["info_bits_per_s"] > 0 and r["ratio_vs_sionna"] > 0
    assert res["results"][0]["ratio_vs_sionna"] == 1.0
    assert res["results"][1]["same_bits_as_sionna"] == 1.0
