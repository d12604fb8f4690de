"""``edsc bench faces --models ffhq``: crop perturbations, mirror consistency through the face view,
crop agreement, the held-out guard of the photo stream, verdicts and the page (fast: fake face nets,
fake photos, a tiny generator; the real run is marked slow)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import torch

from editable_deepsc.cli import main
from editable_deepsc.data.celeba import HeldOutRefused
from editable_deepsc.errors import BadInput, NoFaceFound
from editable_deepsc.eval import faces_ffhq
from editable_deepsc.eval.faces_ffhq import AlignedCelebA, GeneratorSamples, run_faces_ffhq_bench, verdict, verdicts
from editable_deepsc.guidance.faces import geometry
from editable_deepsc.guidance.faces.analyzer import FaceAnalysis
from editable_deepsc.guidance.faces.reliability import mirror_consistency, score_dict
from editable_deepsc.guidance.faces.view import WHOLE, FaceView
from editable_deepsc.guidance.faces.view_reliability import (
    CropPerturbation,
    crop_agreement,
    crop_perturbations,
    measure_view_reliability,
    score_spread,
)
from editable_deepsc.rng import make_generator

sys.path.insert(0, str(Path(__file__).parent))
from test_ffhq_generator import tiny  # noqa: E402

VIEW = FaceView(0.78, 0.5, 0.51)


# ---------------------------------------------------------------- crop perturbations
def test_perturbed_windows_move_by_the_stated_pixels():
    ps = {p.name: p for p in crop_perturbations(VIEW)}
    assert list(ps) == ["side x0.95", "side x1.05", "x -0.02", "x +0.02", "y -0.02", "y +0.02", "resample -2 px"]
    assert VIEW.box(256) == (28, 31, 200)
    # 0.02 of the 200 px side = 4 px; 0.95 / 1.05 of the side = 190 / 210 px about the same centre
    assert ps["x -0.02"].box(256) == (24, 31, 200) and ps["x +0.02"].box(256) == (32, 31, 200)
    assert ps["y -0.02"].box(256) == (28, 27, 200) and ps["y +0.02"].box(256) == (28, 35, 200)
    assert ps["side x0.95"].box(256) == (33, 36, 190) and ps["side x1.05"].box(256) == (23, 26, 210)
    # the pixels really come from there: an image whose value is its column (x) / row (y) number
    cols = torch.arange(256.0).expand(1, 3, 256, 256)
    rows = cols.transpose(-1, -2)
    assert float(ps["x +0.02"].apply(cols)[0, 0, 0, 0]) == 32 and float(ps["x -0.02"].apply(cols)[0, 0, 0, -1]) == 223
    assert float(ps["y +0.02"].apply(rows)[0, 0, 0, 0]) == 35 and float(ps["y +0.02"].apply(rows)[0, 0, -1, 0]) == 234
    r = ps["resample -2 px"].apply(cols)
    assert r.shape == (1, 3, 198, 198)
    assert 28 < float(r[0, 0, 0, 0]) < 29.5 and 226.5 < float(r[0, 0, 0, -1]) < 228  # the same 28..227 span
    assert torch.equal(CropPerturbation("same", VIEW).apply(cols), VIEW.crop(cols))
    assert len(crop_perturbations(VIEW, resample=0)) == 6
    with pytest.raises(BadInput, match="cannot perturb the face view"):
        crop_perturbations(WHOLE)  # a larger window than the whole image
    with pytest.raises(BadInput, match="scale"):
        crop_perturbations(VIEW, scale=0.0)


# ---------------------------------------------------------------- a mirror-equivariant fake analyzer
def _template(width: float) -> tuple[torch.Tensor, torch.Tensor]:
    """A left-right symmetric 68-point face (pixels of a ``width`` window) and an antisymmetric displacement."""
    g = torch.Generator().manual_seed(1)
    t = torch.zeros(1, 68, 2)
    t[0, :17, 0] = torch.linspace(-1, 1, 17)
    t[0, :17, 1] = 0.2 + 0.8 * (1 - torch.linspace(-1, 1, 17) ** 2).sqrt()
    t[0, 17:27] = torch.stack([torch.linspace(-0.8, 0.8, 10), torch.full((10,), -0.3)], dim=-1)
    t[0, 27:36] = torch.stack([torch.zeros(9), torch.linspace(0.0, 0.6, 9)], dim=-1)
    ring = torch.linspace(0, 2 * torch.pi, 7)[:6]
    for start, cx in ((36, -0.4), (42, 0.4)):
        t[0, start : start + 6] = torch.stack([cx + 0.15 * ring.cos(), 0.1 + 0.06 * ring.sin()], dim=-1)
    mouth = torch.linspace(0, 2 * torch.pi, 13)[:12]
    t[0, 48:60] = torch.stack([0.35 * mouth.cos(), 1.0 + 0.15 * mouth.sin()], dim=-1)
    inner = torch.linspace(0, 2 * torch.pi, 9)[:8]
    t[0, 60:68] = torch.stack([0.25 * inner.cos(), 1.0 + 0.06 * inner.sin()], dim=-1)
    px = t * width / 3 + torch.tensor([width / 2, width / 3])
    sym = (px + geometry.mirror_landmarks(px, width)) / 2
    p = torch.randn(1, 68, 2, generator=g) * width / 40
    return sym, (p - geometry.mirror_landmarks(p, 0.0)) / 2


class MirrorFake:
    """Face 'analysis' from image statistics, exactly equivariant under a horizontal flip:
    a = left-half minus right-half mean (odd), b = mean (even); landmarks T + a·D with T symmetric
    and D antisymmetric, so the mirror image's landmarks are the mirrored landmarks."""

    def __init__(self):
        self.sizes: list[int] = []

    def __call__(self, images, heads=None, mirror=None):
        w = images.shape[-1]
        self.sizes.append(w)
        a = images[..., : w // 2].mean(dim=(1, 2, 3)) - images[..., w - w // 2 :].mean(dim=(1, 2, 3))
        b = images.mean(dim=(1, 2, 3))
        t, d = _template(float(w))
        logits = torch.stack([b, 4 * a**2, -b, b - a**2, 2 * b, a**2 - b, 3 * a**2], dim=-1)
        return FaceAnalysis(age=30 + 20 * b, gender_logit=5 * b, expression_logits=logits,
                            landmarks=t + 20 * a.view(-1, 1, 1) * d)  # fmt: skip


def _faces(n: int, size: int = 64, seed: int = 0) -> torch.Tensor:
    return torch.rand(n, 3, size, size, generator=make_generator(seed)) * 2 - 1


def test_mirror_consistency_of_an_exactly_mirror_symmetric_reader_is_one():
    fake = MirrorFake()
    batches = list(_faces(12).split(5))
    r = measure_view_reliability(batches, VIEW, analyzer=fake, total=12, progress=False)
    assert r["n"] == 12 and r["image_size"] == 64 and r["passes_per_image"] == 9
    assert set(r["mirror"]) == set(r["crop"]) == set(r["spread"]) >= {"happy", "age", "p_male", "yaw", "roll", "pitch"}
    for k, v in r["mirror"].items():  # yaw and roll flip sign in the mirror and are sign-corrected
        assert v["r"] == pytest.approx(1.0, abs=1e-6), k
    assert r["gender_flip_rate"] == 0.0
    # the nets saw the view (50 px of 64), its mirror and the seven windows, per batch of 3 batches
    s = VIEW.box(64)[2]
    assert fake.sizes[:9] == [s, s, 47, 52, s, s, s, s, s - 2] and len(fake.sizes) == 27
    # yaw without the sign correction would anti-correlate: the reader's yaw really flips
    face, mirror = {"yaw": torch.tensor([1.0, -2.0, 3.0]), "p_male": torch.tensor([0.2, 0.6, 0.9]),
                    "happy": torch.zeros(3)}, {"yaw": torch.tensor([-1.0, 2.0, -3.0]),
                                               "p_male": torch.tensor([0.7, 0.6, 0.8]), "happy": torch.zeros(3)}
    m = mirror_consistency(face, mirror)
    assert m["mirror"]["yaw"]["r"] == pytest.approx(1.0) and m["gender_flip_rate"] == pytest.approx(1 / 3)


def test_crop_agreement_and_spread_numbers():
    base = {"age": torch.tensor([20.0, 30.0, 40.0, 50.0]), "happy": torch.tensor([0.0, 0.2, 0.9, 0.7])}
    moved = {"same": dict(base), "older": {"age": base["age"] + 2.0, "happy": base["happy"].flip(0)}}
    c = crop_agreement(base, moved)
    assert c["age"]["r_mean"] == pytest.approx(1.0) and c["age"]["mad_mean"] == pytest.approx(1.0)
    assert c["age"]["mad_max"] == pytest.approx(2.0) and c["age"]["per_crop"]["same"]["mad"] == 0.0
    assert c["happy"]["worst"] == "older" and c["happy"]["r_min"] < 0 < c["happy"]["r_mean"] < 1
    s = score_spread(base)
    assert s["happy"]["above_0.5"] == 0.5 and "above_0.5" not in s["age"]
    assert s["age"]["median"] == pytest.approx(35.0) and s["age"]["p10"] == pytest.approx(23.0)
    with pytest.raises(BadInput):
        crop_agreement(base, {})


def test_measure_refuses_mixed_sizes_and_too_few_faces():
    with pytest.raises(BadInput, match="one size"):
        measure_view_reliability([_faces(3, 64), _faces(3, 72)], VIEW, analyzer=MirrorFake(), progress=False)
    with pytest.raises(BadInput, match="at least 3"):
        measure_view_reliability([_faces(2)], VIEW, analyzer=MirrorFake(), progress=False)


# ---------------------------------------------------------------- the photo stream and the samples
def test_celeba_stream_never_reads_held_out_photos_and_counts_skips():
    read: list[int] = []

    def fake_read(i):
        read.append(i)
        return torch.zeros(1, 3, 218, 178)

    def every_other(photo):
        if read[-1] % 2:
            raise NoFaceFound("none")
        return torch.full((1, 3, 32, 32), float(read[-1]))

    s = AlignedCelebA(3, first=796, batch_size=2, size=32, read=fake_read, align=every_other)
    got = torch.cat(list(s))
    assert s.used == [796, 798, 800] and s.no_face == [797, 799] and read == [796, 797, 798, 799, 800]
    assert got[:, 0, 0, 0].tolist() == [796.0, 798.0, 800.0]
    # no face anywhere: the stream stops at 000800, short of n, instead of reading on
    read.clear()
    s = AlignedCelebA(2, first=799, size=32, read=fake_read, align=lambda p: (_ for _ in ()).throw(NoFaceFound("x")))
    assert list(s) == [] and read == [799, 800] and s.no_face == [799, 800]
    read.clear()
    for first in (801, 999):
        with pytest.raises(HeldOutRefused, match="held out"):
            AlignedCelebA(1, first=first, read=fake_read)
    with pytest.raises(BadInput, match="1..800"):
        AlignedCelebA(801)
    with pytest.raises(BadInput, match="1..5"):
        AlignedCelebA(6, first=796)
    assert read == []


class Loud(torch.nn.Module):
    """The tiny generator, ten times louder (its samples leave [-1, 1])."""

    def __init__(self, g):
        super().__init__()
        self.g, self.z_dim = g, g.z_dim

    def forward(self, z, truncation=1.0):
        return 10 * self.g(z, truncation)


def test_generator_samples_are_seeded_and_clamped():
    g = Loud(tiny())
    s = GeneratorSamples(g, 5, seed=3, batch_size=2, keep=3)
    got = torch.cat(list(s))
    with torch.no_grad():
        raw = g(torch.randn(5, g.z_dim, generator=make_generator(3)))
    assert raw.abs().max() > 1.5 and got.shape == (5, 3, 64, 64)
    assert torch.allclose(got, raw.clamp(-1, 1), atol=1e-5) and got.abs().max() == 1.0
    assert len(s.shown) == 3 and torch.equal(torch.cat(s.shown), got[:3])


# ---------------------------------------------------------------- verdicts, the run and the page
def _measured(mirror_r: float, crop_r: float, share: float | None) -> dict:
    spread = {"median": 0.0, "p10": 0.0, "p90": 0.0, "mean": 0.0, **({"above_0.5": share} if share is not None else {})}
    return {"mirror": {"s": {"r": mirror_r}}, "crop": {"s": {"r_mean": crop_r}}, "spread": {"s": spread}}


def test_verdict_rule():
    assert verdict(_measured(0.85, 0.95, 0.3), "s") == "yes"
    assert verdict(_measured(0.79, 0.95, 0.3), "s") == "no" and verdict(_measured(0.85, 0.89, None), "s") == "no"
    assert verdict(_measured(0.99, 0.99, 0.04), "s") == "rare"
    v = verdicts(_measured(0.9, 0.95, None), None, {"mirror": {"s": 0.7}})["s"]
    assert v == {"real": "yes", "generated": None, "faces64": "no", "change": "now reads"}
    v = verdicts(_measured(0.5, 0.95, None), _measured(0.9, 0.95, None), {"mirror": {"s": 0.9}})["s"]
    assert v == {"real": "no", "generated": "yes", "faces64": "yes", "change": "no longer reads"}
    assert verdicts(_measured(0.9, 0.95, None), None, None)["s"]["change"] == "faces64 not measured"


def _fake_run(tmp_path, n=6):
    def photo(i):
        return _faces(1, 48, seed=i)

    photos = AlignedCelebA(n, batch_size=4, size=48, read=photo, align=lambda p: p)
    g = tiny()
    return run_faces_ffhq_bench(g, VIEW, n=n, seed=0, batch_size=4, photos=photos, analyzer=MirrorFake(),
                                figure=tmp_path / "img" / "view.png", progress=False)  # fmt: skip


def test_run_and_page(tmp_path, monkeypatch):
    import editable_deepsc.guidance.faces.analyzer as analyzer_module

    monkeypatch.setattr(analyzer_module, "FaceAnalyzer", lambda heads=None: MirrorFake())  # the figure's landmarks
    r = _fake_run(tmp_path)
    assert r["real"]["n"] == 6 and r["real"]["image_size"] == 48 and r["generated"]["image_size"] == 64
    assert r["celeba"] == {"first": 1, "last_read": 6, "used": [1, 2, 3, 4, 5, 6], "no_face": []}
    assert r["view_box_px"] == list(VIEW.box(48)) and len(r["perturbations"]) == 7
    shifted = FaceView(0.78, 0.5 - 0.02 * 0.78, 0.51)
    assert r["perturbations"][2] == {"name": "x -0.02", "box_px": list(shifted.box(48)), "resample_px": 0,
                                     "view": shifted.to_json()}  # fmt: skip
    assert r["faces64"]["mirror"]["yaw"] == pytest.approx(json.loads(faces_ffhq.FACES64_JSON.read_text())["mirror"]["yaw"]["r"])
    assert set(r["verdicts"]) == set(r["real"]["mirror"])
    assert all(v["real"] in ("yes", "no", "rare") for v in r["verdicts"].values())
    assert Path(r["figure"]).is_file()
    r["meta"]["command"] = "edsc bench faces --models ffhq --n 6"
    page = faces_ffhq.write_page(r, tmp_path / "faces_ffhq.md")
    text = page.read_text()
    assert json.loads(page.with_suffix(".json").read_text())["verdicts"] == r["verdicts"]
    yaw = r["real"]["mirror"]["yaw"]["r"]
    assert f"| yaw | degrees | {yaw:.2f} |" in text and "`edsc bench faces --models ffhq --n 6`" in text
    assert "CelebA 000001 upwards, the first 6 photos" in text and "(img/view.png)" in text
    # re-rendering from the .json gives the same page
    assert main(["bench", "faces", "--models", "ffhq", "--render-only", "--markdown", str(page)]) == 0
    assert page.read_text() == text


def test_cli_refuses_bad_combinations_before_any_work(tmp_path):
    out = tmp_path / "x.md"
    assert main(["bench", "faces", "--set", "celeba", "--n", "4"]) == 2  # faces64 has no photo set
    assert main(["bench", "faces", "--n", "4", "--markdown", str(out)]) == 2
    assert main(["bench", "faces", "--models", "ffhq", "--n", "801", "--markdown", str(out)]) == 2
    assert main(["bench", "faces", "--models", "ffhq", "--render-only", "--markdown", str(out)]) == 2  # no .json
    assert not out.exists() and not out.with_suffix(".json").exists()


@pytest.mark.slow
def test_real_photos_and_generator(tmp_path, capsys):
    """The real bench on 3 CelebA photos and 3 samples (needs the converted generator and the CelebA wheel)."""
    assert main(["bench", "faces", "--models", "ffhq", "--set", "celeba", "--n", "3", "--threads", "1", "--quiet",
                 "--markdown", str(tmp_path / "f.md")]) == 0  # fmt: skip
    r = json.loads((tmp_path / "f.json").read_text())
    assert r["real"]["n"] == 3 and r["real"]["image_size"] == 256 and max(r["celeba"]["used"]) <= 800
    assert r["view_box_px"] == [28, 31, 200] and (tmp_path / "img" / "faces-ffhq-view.jpg").is_file()
    assert 0.3 < r["real"]["view_fit"]["centre_x"]["median"] < 0.7
