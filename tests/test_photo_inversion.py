"""Real photos into a full-size generator: the photo target, identity against the source photo,
optimisation at an exit (tied unseen styles, latent prior, early stop) -- tiny models, no nets."""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest
import torch
import torch.nn.functional as F
from test_ffhq_align import face_landmarks, textured_photo
from test_ffhq_generator import tiny

from editable_deepsc.generator.mobile_stylegan import MobileStyleGAN, MobileStyleGANConfig
from editable_deepsc.inversion.ffhq_align import ffhq_align
from editable_deepsc.inversion.losses import ReconstructionLoss
from editable_deepsc.inversion.optimize import invert_optimize, w_whitening
from editable_deepsc.inversion.photo import takes_photos
from editable_deepsc.inversion.photo_target import PhotoIdentity, PhotoTarget, same_person_threshold

pytestmark = pytest.mark.usefixtures("one_torch_thread_module")


class PoolEmbedding:
    """Stand-in for the recognition net: the chip pooled to 6x6 colours (a 108-d descriptor)."""

    def __call__(self, chips: torch.Tensor, heads=None) -> SimpleNamespace:
        return SimpleNamespace(embedding=F.adaptive_avg_pool2d(chips, 6).flatten(1))


def target_for(photo: torch.Tensor, landmarks: torch.Tensor, size: int = 96) -> PhotoTarget:
    crop, tf = ffhq_align(photo, landmarks, size)
    return PhotoTarget(photo=photo, crop=crop, transform=tf, landmarks=landmarks.float())


# ---- the photo target ----------------------------------------------------------------------------
@pytest.mark.parametrize("angle", [0.0, 0.3])
def test_crop_landmarks_follow_the_alignment(angle):
    lm = face_landmarks(110, 90, 36, angle=angle)
    t = target_for(textured_photo(220, 200), lm)
    q = t.transform.quad_tensor()  # corners: top-left, bottom-left, bottom-right, top-right
    across, down = q[3] - q[0], q[1] - q[0]
    for side in (96, 256):
        got = t.crop_landmarks(side).double()
        # back to photo pixels through the quad: p = q0 + (s * across + t * down) / side
        back = q[0] + (got[:, :1] * across + got[:, 1:] * down) / side
        assert torch.allclose(back, lm, atol=1e-3)
    # the eyes sit level in the crop whatever the head's roll
    eyes = t.crop_landmarks(96)[[36, 42]]
    assert abs(float(eyes[0, 1] - eyes[1, 1])) < 1e-3


def test_identity_of_the_aligned_crop_is_measured_against_the_photo():
    photo, other = textured_photo(220, 200, seed=1), textured_photo(220, 200, seed=2)
    lm = face_landmarks(110, 90, 36, angle=0.2)
    t = target_for(photo, lm)
    ident = PhotoIdentity([t], analyzer=PoolEmbedding())
    own = float(ident.distance(t.crop)[0])  # the photo's own crop: the same chip, resampled twice
    foreign = float(ident.distance(target_for(other, lm).crop)[0])
    assert own < 0.15 * foreign
    # the same crop at another side gives the same chip (landmarks scale with the side)
    up = F.interpolate(t.crop, size=(192, 192), mode="bilinear", align_corners=False)
    assert abs(float(ident.distance(up)[0]) - own) < 0.05 * foreign
    # the loss is 1 - cos and differentiable through the chip
    x = t.crop.clone().requires_grad_(True)
    loss = ident.loss(x)
    loss.sum().backward()
    assert 0 <= float(loss[0].detach()) < 0.01 and x.grad is not None and float(x.grad.abs().sum()) > 0


def test_same_person_threshold_is_the_measured_one():
    threshold, source = same_person_threshold()
    from editable_deepsc.inversion.photo_target import IDENTITY_JSON

    doc = json.loads(IDENTITY_JSON.read_text())
    assert threshold == pytest.approx(doc["olivetti"]["framings"]["descriptor"]["separation"]["threshold"])
    assert "Olivetti" in source


# ---- optimisation at an exit -----------------------------------------------------------------------
def exit_generator() -> MobileStyleGAN:
    g = tiny(seed=3, exits={"32": 1})  # block 1 (16 px) -> a 32 px exit; full image 64 px
    with torch.no_grad():
        g.w_avg.copy_(g.mapping(torch.randn(256, g.z_dim, generator=torch.Generator().manual_seed(0))).mean(0))
    return g


def test_styles_seen_counts_the_trunk_styles():
    g = exit_generator()
    assert g.styles_seen() == g.num_ws == 11
    assert g.styles_seen(32) == 1 + 3 * 2  # conv1, blocks 0 and 1
    g.add_exit(16, 0)  # block 0 at 8 px -> a 16 px exit
    assert g.styles_seen(16) == 4
    with pytest.raises(Exception, match="no exit of size 8"):
        g.styles_seen(8)


def test_optimisation_at_an_exit_keeps_the_unseen_styles_with_the_last_seen():
    g = exit_generator()
    with torch.no_grad():
        truth = g.broadcast(g.mapping(torch.randn(2, g.z_dim, generator=torch.Generator().manual_seed(5))))
        target = g.synthesis(truth, size=32)
        init = truth + 0.3 * torch.randn(truth.shape, generator=torch.Generator().manual_seed(6))
    res = invert_optimize(g, target, steps=25, init=init, lr=0.05, loss=ReconstructionLoss(perceptual=0.0),
                          noise=0.0, size=32)
    assert res.images.shape == (2, 3, 32, 32) and res.w_plus.shape == (2, g.num_ws, g.w_dim)
    assert res.history[-1] < 0.5 * res.history[0]
    seen = g.styles_seen(32)
    # the unseen styles moved with the last seen one: their offsets to it are those of the start
    assert torch.allclose(res.w_plus[:, seen:] - res.w_plus[:, seen - 1 : seen],
                          init[:, seen:] - init[:, seen - 1 : seen], atol=1e-5)
    assert not torch.allclose(res.w_plus[:, seen - 1], init[:, seen - 1], atol=1e-3)
    with pytest.raises(Exception, match="no exit of size 48"):
        invert_optimize(g, F.interpolate(target, size=(48, 48)), steps=1, size=48)


def test_whitening_and_the_prior_keep_the_latent_on_the_mapped_distribution():
    g = exit_generator()
    mean, white = w_whitening(g, n=4000)
    with torch.no_grad():
        w = g.mapping(torch.randn(2000, g.z_dim, generator=torch.Generator().manual_seed(9)))
    assert float(((w - mean) @ white).pow(2).mean()) == pytest.approx(1.0, rel=0.15)

    target = torch.rand(1, 3, 32, 32, generator=torch.Generator().manual_seed(2)) * 2 - 1  # no latent makes it
    def whitened(prior: float) -> float:
        res = invert_optimize(g, target, steps=30, lr=0.1, loss=ReconstructionLoss(perceptual=0.0), noise=0.0,
                              prior=prior, size=32)
        return float(((res.w_plus - mean) @ white).pow(2).mean())
    free, held = whitened(0.0), whitened(1.0)
    assert held < 0.5 * free


def test_early_stop_when_the_loss_stops_improving():
    g = exit_generator()
    with torch.no_grad():
        target = g.synthesis(g.broadcast(g.mean_w()[None]), size=32)
    # starting at the mean on its own image: nothing to improve, so it stops after `patience` steps
    res = invert_optimize(g, target, steps=40, lr=1e-6, loss=ReconstructionLoss(perceptual=0.0), noise=0.0,
                          size=32, patience=3)
    assert len(res.history) == 4
    full = invert_optimize(g, target, steps=10, lr=1e-6, loss=ReconstructionLoss(perceptual=0.0), noise=0.0, size=32)
    assert len(full.history) == 10


def test_only_full_size_generators_with_a_256_exit_take_the_photo_path():
    assert not takes_photos(exit_generator())  # 64 px
    big = MobileStyleGAN(MobileStyleGANConfig(z_dim=8, w_dim=8, n_mapping=1, input_channels=8, channels=[8] * 7,
                                              exits={"256": 4}))
    assert big.resolution == 1024 and takes_photos(big)
    assert not takes_photos(MobileStyleGAN(MobileStyleGANConfig(z_dim=8, w_dim=8, n_mapping=1, input_channels=8,
                                                                channels=[8] * 7)))


# ---- the command line ------------------------------------------------------------------------------
def test_paste_back_needs_a_full_size_set(tmp_path, capsys):
    from editable_deepsc.cli import main
    from editable_deepsc.generator import teacher as face_source
    from editable_deepsc.generator.teacher import teacher_faces
    from editable_deepsc.imaging.io import save_image

    face, out = tmp_path / "face.png", tmp_path / "back.png"
    save_image(teacher_faces(face_source.test_seeds(1)), face)
    assert main(["invert", str(face), "--method", "encoder", "--paste-back", str(out)]) == 2
    assert "--paste-back needs a full-size model set" in capsys.readouterr().err
    assert not out.exists()


# ---- slow: the real FFHQ generator on a real portrait ---------------------------------------------
@pytest.mark.slow
def test_invert_a_portrait_photo_into_ffhq(tmp_path, capsys):
    """Grace Hopper (512x600, not square): aligned, inverted at the 256 exit, the 1024 output pasted back."""
    from PIL import Image

    from editable_deepsc.cli import main
    from editable_deepsc.errors import CheckpointError
    from editable_deepsc.generator.photos import real_photo
    from editable_deepsc.imaging.io import save_image
    from editable_deepsc.zoo.sets import load_set

    try:
        load_set("ffhq").check()
    except CheckpointError:
        pytest.skip("the ffhq set is not converted here (./run set-up converts it)")
    photo = tmp_path / "hopper.png"
    save_image(real_photo("grace_hopper"), photo)
    out, back, lat = tmp_path / "recon.png", tmp_path / "back.png", tmp_path / "w.safetensors"
    base = ["invert", str(photo), "--models", "ffhq", "--method", "optimize", "--json"]
    assert main([*base, "--steps", "0"]) == 0  # the mean face, aligned and scored the same way
    start = json.loads(capsys.readouterr().out)
    assert main([*base, "--steps", "40", "--out", str(out), "--paste-back", str(back), "--latent-out", str(lat)]) == 0
    res = json.loads(capsys.readouterr().out)
    assert res["source_size"] == [600, 512] and res["aligned"] and res["scored_at"] == 256
    ident = res["identity"]
    assert ident["reference"] == "source photo" and ident["threshold"] == pytest.approx(same_person_threshold()[0])
    assert ident["same_person"] == (ident["distance"] < ident["threshold"])
    assert ident["distance"] < start["identity"]["distance"] - 0.1  # the optimisation moved towards the person
    assert res["psnr"] > start["psnr"] + 1.0 and 0 < res["steps"] <= 40
    assert Image.open(out).size == (1024, 1024) and Image.open(back).size == (512, 600)
    from safetensors import safe_open

    with safe_open(str(lat), "pt") as f:
        assert f.get_tensor("w_plus").shape == (1, 23, 512)
        assert json.loads(f.metadata()["transform"])["photo_size"] == [600, 512]


class FakeAligner:
    """Detector stand-in: fixed boxes (given in score order); landmarks centred in each box."""

    input_sizes, score_threshold = (160, 224), 0.5

    def __init__(self, boxes):
        self.boxes = boxes

    def detect(self, photo):
        return [SimpleNamespace(box=b, score=0.9 - 0.1 * i) for i, b in enumerate(self.boxes)]

    def landmarks_in_box(self, photo, box):
        x, y, w, h = box
        return face_landmarks(x + w / 2, y + 0.45 * h, 0.4 * w).float()


def test_the_largest_face_by_default_and_faces_counted_from_the_left():
    from editable_deepsc.errors import BadInput, NoFaceFound

    photo = textured_photo(200, 400)
    boxes = [(250.0, 40.0, 60.0, 60.0), (20.0, 30.0, 100.0, 100.0), (150.0, 50.0, 50.0, 50.0)]  # score order
    t = PhotoTarget.from_photo(photo, size=64, aligner=FakeAligner(boxes))
    assert t.face_index == 0 and t.face_box == boxes[1]  # the largest, which is also the leftmost here
    assert t.face_json()["boxes"] == [list(boxes[1]), list(boxes[2]), list(boxes[0])]
    t2 = PhotoTarget.from_photo(photo, size=64, face=2, aligner=FakeAligner(boxes))
    assert t2.face_box == boxes[0] and t2.crop.shape == (1, 3, 64, 64)
    with pytest.raises(BadInput, match="face 3 asked for, but 3 faces found"):
        PhotoTarget.from_photo(photo, size=64, face=3, aligner=FakeAligner(boxes))
    with pytest.raises(NoFaceFound, match="no face found in the 400x200 photo .*160, 224"):
        PhotoTarget.from_photo(photo, size=64, aligner=FakeAligner([]))


# ---- the photo bench (pure parts) ------------------------------------------------------------------
def test_bench_photos_never_touch_the_held_out_celeba():
    from editable_deepsc.errors import BadInput
    from editable_deepsc.eval.photo_bench import celeba_bench_indices

    assert celeba_bench_indices(3) == [701, 702, 703]
    idx = celeba_bench_indices(800)
    assert sorted(idx) == list(range(1, 801)) and idx[100] == 700
    with pytest.raises(BadInput, match="1..800"):
        celeba_bench_indices(801)


def test_bench_page_labels_proxies_skips_and_published_figures(tmp_path):
    from editable_deepsc.eval.photo_bench import PUBLISHED, write_page

    row = {"photo": "astronaut", "method": "optimize", "psnr": 15.0, "ssim": 0.5, "lpips": 0.6,
           "identity_distance": 0.6, "same_person": False, "exit_psnr": 16.0, "seconds": 3.0, "steps": 10}
    result = {"methods": {"optimize": {"n": 2, "psnr": 20.0, "ssim": 0.6, "lpips": 0.5, "identity_distance": 0.4,
                                       "same_person_share": 0.5, "seconds": 9.0, "steps": 12}},
              "portraits": {"optimize": {"astronaut": row}}, "photos": [row], "no_face": [],
              "skipped": {"hybrid": "no encoder in this model set"},
              "threshold": {"distance": 0.554, "source": "Olivetti"}, "published": PUBLISHED,
              "meta": {"generator": "g", "encoder": None, "threads": 1, "machine": "x", "date": "d",
                       "lpips_is_proxy": True, "load_before": 2.0, "load_after": 3.5, "command": "edsc bench invert"}}
    page = write_page(result, tmp_path / "inv.md").read_text()
    assert "LPIPS (proxy)" in page and "| hybrid | -- | not run: no encoder in this model set" in page
    assert "| optimize | astronaut | 15.00 | 0.600 | NO |" in page and "50%" in page
    assert "other data and metrics" in page and "2.0 -> 3.5" in page
    assert json.loads((tmp_path / "inv.json").read_text())["methods"]["optimize"]["n"] == 2


def test_adding_methods_to_a_page_keeps_both_runs():
    from editable_deepsc.errors import BadInput
    from editable_deepsc.eval.photo_bench import merge_results

    def run(method, command, celeba=("celeba-000701",)):
        row = {"photo": "celeba-000701", "method": method, "psnr": 20.0}
        return {"methods": {method: {"n": 1}}, "portraits": {method: {}}, "photos": [row],
                "skipped": {"hybrid": "no encoder"} if method == "optimize" else {}, "settings": {},
                "meta": {"celeba": list(celeba), "generator": "g", "command": command, "encoder": None},
                "figure": f"img/{method}.png"}

    merged = merge_results(run("optimize", "edsc a"), run("hybrid", "edsc b"))
    assert set(merged["methods"]) == {"optimize", "hybrid"} and merged["skipped"] == {}
    assert merged["meta"]["commands"] == ["edsc a", "edsc b"] and len(merged["photos"]) == 2
    assert merged["figures"] == ["img/optimize.png", "img/hybrid.png"]
    again = merge_results({**merged, "observations": ["seen"]}, run("hybrid", "edsc b"))  # a rerun replaces its rows
    assert len(again["photos"]) == 2 and again["meta"]["commands"] == ["edsc a", "edsc b"]
    assert "observations" not in again
    with pytest.raises(BadInput, match="another celeba"):
        merge_results(merged, run("encoder", "edsc d", celeba=("celeba-000702",)))


def test_face_shaped_paste_back_keeps_the_photos_background():
    from editable_deepsc.inversion.ffhq_align import paste_back, paste_mask

    photo = textured_photo(240, 200)
    _, tf = ffhq_align(photo, face_landmarks(100, 90, 36), size=64)
    crop = torch.full((1, 3, 64, 64), 0.9)
    square, face = paste_back(photo, crop, tf), paste_back(photo, crop, tf, shape="face")
    q = tf.quad_tensor()  # axis-aligned here: x from q[0,0] to q[3,0], y from q[0,1] to q[1,1]
    x0, y0, side = float(q[0, 0]), float(q[0, 1]), float(q[3, 0] - q[0, 0])
    cx, cy = int(x0 + 0.5 * side), int(y0 + 0.56 * side)
    corner = (int(y0 + 0.15 * side), int(x0 + 0.15 * side))  # inside the square, outside the face ellipse
    assert torch.allclose(square[0, :, cy, cx], torch.tensor(0.9)) and torch.allclose(face[0, :, cy, cx], torch.tensor(0.9))
    assert torch.allclose(square[0, :, corner[0], corner[1]], torch.tensor(0.9))
    assert torch.equal(face[0, :, corner[0], corner[1]], photo[0, :, corner[0], corner[1]])
    m = paste_mask(tf, shape="face")
    assert m.shape == (240, 200) and float(m.max()) == 1.0 and 0 < float(m.mean()) < float(paste_mask(tf).mean())
    with pytest.raises(Exception, match="mask shape"):
        paste_mask(tf, shape="circle")


def test_second_descriptor_is_measured_against_the_photo_on_its_own_chip():
    from editable_deepsc.guidance.faces.second_descriptor import second_descriptor_threshold
    from editable_deepsc.inversion.photo_target import SecondIdentity

    class PoolNet:  # stand-in for FaceRes: the template chip pooled to 6x6 colours
        def embed(self, chips):
            return F.adaptive_avg_pool2d(chips, 6).flatten(1)

    photo, other = textured_photo(220, 200, seed=1), textured_photo(220, 200, seed=2)
    lm = face_landmarks(110, 90, 36, angle=0.2)
    lm[30] = (lm[36:48].mean(0) + (lm[48] + lm[54]) / 2) / 2  # the template also reads the nose tip
    t = target_for(photo, lm)
    d2 = SecondIdentity([t], descriptor=PoolNet())
    own, foreign = float(d2.distance(t.crop)[0]), float(d2.distance(target_for(other, lm).crop)[0])
    assert own < 0.15 * foreign
    assert d2.threshold == pytest.approx(second_descriptor_threshold()) and d2.name == "faceres"
