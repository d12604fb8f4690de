"""registry.publish: weights + card in one step, where each goes and what the card records."""

from __future__ import annotations

import json

import torch

from editable_deepsc.zoo import registry


def test_publish_writes_weights_and_card_beside(tmp_path):
    state = {"a": torch.arange(6, dtype=torch.float32).reshape(2, 3), "b": torch.ones(4, dtype=torch.float16)}
    dst = registry.publish(
        "toy", state, metadata={"format": "toy"}, weights_dir=tmp_path / "weights",
        kind="generator", licence="MIT", source="test", resolution=8, description="d", config={"x": 1},
    )
    assert dst == tmp_path / "weights" / "toy.safetensors"
    card = json.loads((tmp_path / "cards" / "toy.json").read_text())
    assert card == {"name": "toy", "kind": "generator", "file": "toy.safetensors", "sha256": registry.sha256_file(dst),
                    "licence": "MIT", "source": "test", "resolution": 8, "description": "d", "config": {"x": 1}}
    back = registry.load_state_dict(dst, sha256=card["sha256"])
    assert set(back) == {"a", "b"} and back["b"].dtype == torch.float16 and torch.equal(back["a"], state["a"])


def test_publish_absolute_file_and_explicit_cards_dir(tmp_path):
    dst = registry.publish("toy2", {"w": torch.zeros(2)}, weights_dir=tmp_path / "w", cards_dir=tmp_path / "c",
                           absolute_file=True, kind="codec", licence="MIT", source="s")
    card = json.loads((tmp_path / "c" / "toy2.json").read_text())
    assert card["file"] == str(dst.resolve()) and card["resolution"] is None and card["config"] == {}
    assert not (tmp_path / "cards").exists()


def test_publish_defaults_to_the_zoo(tmp_path, monkeypatch):
    monkeypatch.setattr(registry, "WEIGHTS_DIR", tmp_path / "zw")
    monkeypatch.setattr(registry, "CARDS_DIR", tmp_path / "zc")
    dst = registry.publish("toy3", {"w": torch.zeros(1)}, kind="k", licence="l", source="s")
    assert dst == tmp_path / "zw" / "toy3.safetensors" and (tmp_path / "zc" / "toy3.json").is_file()
    assert registry.card("toy3").sha256 == registry.sha256_file(dst)
