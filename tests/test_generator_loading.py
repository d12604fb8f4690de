"""load_generator by name/path, CheckpointError cases, and the edsc zoo list/verify CLI."""

from __future__ import annotations

import json

import pytest
import torch

from editable_deepsc.cli import main
from editable_deepsc.errors import CheckpointError
from editable_deepsc.generator.faces64 import Faces64Generator
from editable_deepsc.generator.loading import load_generator
from editable_deepsc.generator.teacher import teacher_faces
from editable_deepsc.train.generator import export_faces64
from editable_deepsc.zoo import registry

SUMMARY = {"steps": 1, "seconds": 0.0, "device": "cpu", "threads": 1, "config": {"steps": 1, "seed": 0}, "final": {}}


@pytest.fixture
def tmp_zoo(tmp_path, monkeypatch):
    """An empty built-in zoo (cards + weights) and user zoo under tmp_path, holding a random edsc-faces64."""
    monkeypatch.setattr(registry, "CARDS_DIR", tmp_path / "cards")
    monkeypatch.setattr(registry, "WEIGHTS_DIR", tmp_path / "weights")
    monkeypatch.setenv("EDSC_USER_ZOO", str(tmp_path / "user"))
    torch.manual_seed(0)
    g = Faces64Generator(hidden=32)
    with torch.no_grad():
        for p in g.parameters():
            p.add_(0.01 * torch.randn_like(p))
    path = export_faces64(g, SUMMARY)
    return g.eval(), path


def test_teacher_by_name_matches_face_source():
    t = load_generator("teacher-dcgan64")
    assert (t.num_ws, t.w_dim, t.resolution) == (1, 100, 64)
    assert not any(p.requires_grad for p in t.parameters())
    from editable_deepsc.generator.teacher import face_latents

    torch.testing.assert_close(t(face_latents([5, 6])), teacher_faces([5, 6]))


def test_faces64_by_name_and_by_path(tmp_zoo):
    g, path = tmp_zoo
    z = torch.randn(2, 100, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        ref = g(z)
        by_name = load_generator("edsc-faces64")
        by_path = load_generator(path)
        assert by_name.num_ws == 5 and by_name.name == "edsc-faces64"
        assert torch.equal(by_name(z), ref) and torch.equal(by_path(z), ref)
    c = registry.card("edsc-faces64")
    assert c.sha256 == registry.sha256_file(path) and c.config["num_ws"] == 5
    assert json.loads((path.parent / "edsc-faces64.train.json").read_text())["steps"] == 1


def test_sha256_mismatch(tmp_zoo):
    g, path = tmp_zoo
    state = {k: v.clone() for k, v in g.state_dict().items()}
    state["layers.0.bias"] += 1.0
    registry.save_state_dict(state, path, metadata={"format": "edsc-faces64"})  # file changed, card not
    with pytest.raises(CheckpointError, match="sha256 mismatch"):
        load_generator("edsc-faces64")


def test_missing_weights_and_unknown_name(tmp_zoo, tmp_path):
    _, path = tmp_zoo
    path.unlink()
    with pytest.raises(CheckpointError, match="weights missing"):
        load_generator("edsc-faces64")
    with pytest.raises(CheckpointError, match="unknown generator"):
        load_generator("stylegan-ffhq-9000")
    with pytest.raises(CheckpointError, match="not found"):
        load_generator(tmp_path / "nowhere.safetensors")
    (tmp_path / "x.bin").write_bytes(b"\0")
    with pytest.raises(CheckpointError, match="unsupported"):
        load_generator(tmp_path / "x.bin")


def test_corrupt_and_wrong_shape(tmp_zoo, tmp_path):
    g, _ = tmp_zoo
    bad = tmp_path / "corrupt.safetensors"
    bad.write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{not json")
    with pytest.raises(CheckpointError, match="corrupt"):
        load_generator(bad)
    state = {k: v.clone() for k, v in g.state_dict().items()}
    state["layers.1.style_scale.weight"] = torch.zeros(7, 100)
    shaped = tmp_path / "shape.safetensors"
    registry.save_state_dict(state, shaped, metadata={"format": "edsc-faces64"})
    with pytest.raises(CheckpointError, match="wrong shape"):
        load_generator(shaped)
    foreign = tmp_path / "foreign.safetensors"
    registry.save_state_dict({"a": torch.zeros(2)}, foreign)
    with pytest.raises(CheckpointError, match="unknown safetensors format"):
        load_generator(foreign)


def test_cli_corrupt_checkpoint_exit_2(tmp_zoo, capsys):
    _, path = tmp_zoo
    path.write_bytes(b"garbage")
    assert main(["zoo", "verify"]) == 1
    out = capsys.readouterr().out
    assert "FAIL  edsc-faces64" in out and "0/1 files verified" in out


def test_zoo_list_and_verify(tmp_zoo, capsys):
    assert main(["zoo", "list"]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0].split()[:4] == ["name", "kind", "size", "res"]
    assert "edsc-faces64" in out and "generator" in out and "MB" in out
    assert main(["zoo", "list", "--json"]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert rows[0]["name"] == "edsc-faces64" and rows[0]["resolution"] == 64 and rows[0]["size_mb"] > 0
    assert main(["zoo", "verify"]) == 0
    assert "1/1 files verified" in capsys.readouterr().out
