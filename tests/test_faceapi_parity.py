"""The PyTorch face-api ports reproduce the original tfjs models (fixtures from
scripts/faceapi_parity/make_fixtures.js: @vladmandic/face-api 1.7.15, tfjs 4.22 wasm)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from editable_deepsc.errors import CheckpointError
from editable_deepsc.guidance.faces.parity import parity_report
from editable_deepsc.guidance.faces.weights import ZOO_NAMES, dequantize_state, load_faceapi_state
from editable_deepsc.zoo import card, verify_all

pytestmark = pytest.mark.usefixtures("one_torch_thread_module")

FIXTURES = Path(__file__).parent / "fixtures" / "faceapi"


@pytest.fixture(scope="module")
def report() -> dict:
    return parity_report(FIXTURES)


def test_fixture_provenance(report: dict) -> None:
    assert report["reference"] == {"face_api": "1.7.15", "tfjs": "4.22.0", "backend": "wasm"}
    assert len(report["images"]) == 10


def test_recognition_embedding_cosine(report: dict) -> None:
    for name, row in report["images"].items():
        assert row["cosine_deficit"] < 1e-3, name
    assert report["worst"]["cosine_deficit"] < 1e-5  # in practice float rounding only


def test_expression_and_gender_probabilities(report: dict) -> None:
    for name, row in report["images"].items():
        assert row["expression_max_abs"] < 1e-3, name
        assert row["p_male_abs"] < 1e-3, name
        assert row["age_abs"] < 0.01, name  # years


def test_landmarks_within_half_a_pixel(report: dict) -> None:
    for name, row in report["images"].items():
        assert row["landmark_max_px"] < 0.5, name
    assert report["worst"]["landmark_max_px"] < 0.01


def test_detector_boxes(report: dict) -> None:
    worst = report["worst"]
    assert worst["detection_count_mismatches"] == 0
    assert worst["detection_score_max_abs"] < 1e-3
    assert worst["detection_box_max_px"] < 0.5
    found = {n: r["detections"]["416"]["count_ours"] for n, r in report["images"].items()}
    assert found["astronaut.png"] == 1 and found["grace_hopper.png"] == 1
    assert found["teacher_1.png"] == 0  # tight 150 px teacher crops: the detector misses them


def test_weight_cards_registered_with_source_and_licence() -> None:
    rows = {name: ok for name, ok, _ in verify_all()}
    for net, name in ZOO_NAMES.items():
        c = card(name)
        assert c.kind == "face-net" and c.licence.startswith("MIT")
        assert "@vladmandic/face-api@1.7.15" in c.source and "sha256" in c.source
        assert rows[name] is True
        assert (c.path.parent / "faceapi.LICENSE.txt").read_text().count("MIT License") == 1


def test_quantised_weights_dequantise_like_tfjs() -> None:
    q = {"w": torch.tensor([0, 1, 255], dtype=torch.uint8), "w.qscale": torch.tensor(0.01, dtype=torch.float64),
         "w.qmin": torch.tensor(-1.0, dtype=torch.float64), "b": torch.tensor([0.5])}  # fmt: skip
    out = dequantize_state(q)
    assert out["w"].dtype == torch.float32
    assert torch.allclose(out["w"], torch.tensor([-1.0, -0.99, 1.55]))
    assert set(out) == {"w", "b"}
    with pytest.raises(CheckpointError):
        dequantize_state({"w": q["w"]})
    state = load_faceapi_state("recognition")
    assert state["fc"].shape == (128, 256) and state["fc"].dtype == torch.float32
    with pytest.raises(CheckpointError):
        load_faceapi_state("nope")
