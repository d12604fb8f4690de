"""Face analysis on top of the face-api ports: analyzer, landmark geometry, alignment, guidance, CLI."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch

from editable_deepsc.cli import main
from editable_deepsc.errors import BadInput, NoFaceFound
from editable_deepsc.generator import teacher
from editable_deepsc.generator.teacher import teacher_faces
from editable_deepsc.guidance import AttributeGuidance, IdentityLoss, identity_similarity
from editable_deepsc.guidance.faces import geometry
from editable_deepsc.guidance.faces.align import FaceAligner, face_quad, warp_quad
from editable_deepsc.guidance.faces.analyzer import FaceAnalyzer
from editable_deepsc.imaging.io import load_image, save_image
from editable_deepsc.text.targets import EditTarget, ParsedInstruction

pytestmark = pytest.mark.usefixtures("one_torch_thread_module")

IMAGES = Path(__file__).parent / "fixtures" / "faceapi" / "images"
NEUTRAL = (1, 5)  # indices into teacher.test_seeds(): faces with P(neutral) > 0.99, P(happy) < 0.01


@pytest.fixture(scope="module")
def analyzer() -> FaceAnalyzer:
    return FaceAnalyzer()


@pytest.fixture(scope="module")
def faces() -> torch.Tensor:
    seeds = teacher.test_seeds(6)
    return teacher_faces([seeds[i] for i in NEUTRAL])


@pytest.fixture(scope="module")
def landmarks(analyzer: FaceAnalyzer, faces: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return analyzer.landmarks(faces)


# ---------------------------------------------------------------- geometry


def _rotate(lm: torch.Tensor, degrees: float) -> torch.Tensor:
    a = math.radians(degrees)
    rot = torch.tensor([[math.cos(a), -math.sin(a)], [math.sin(a), math.cos(a)]])
    c = lm.mean(dim=1, keepdim=True)
    return (lm - c) @ rot.T + c


def test_mirror_landmarks_is_an_involution_and_flips_signed_pose(landmarks: torch.Tensor) -> None:
    assert sorted(geometry.MIRROR_PERMUTATION) == list(range(68))
    m = geometry.mirror_landmarks(landmarks, 64.0)
    assert torch.allclose(geometry.mirror_landmarks(m, 64.0), landmarks)
    for name in ("yaw", "roll"):
        f = geometry.GEOMETRY_FUNCTIONS[name]
        assert torch.allclose(f(m), -f(landmarks), atol=1e-4), name
    for name in ("pitch", "mouth_open", "eyes_open", "smile_width"):
        f = geometry.GEOMETRY_FUNCTIONS[name]
        assert torch.allclose(f(m), f(landmarks), atol=1e-4), name


def test_roll_follows_in_plane_rotation_and_the_rest_ignores_it(landmarks: torch.Tensor) -> None:
    base = geometry.landmark_attributes(landmarks)
    turned = geometry.landmark_attributes(_rotate(landmarks, 20.0))  # clockwise on screen (y down)
    assert torch.allclose(turned["roll"] - base["roll"], torch.full((2,), 20.0), atol=1e-3)
    for name in ("yaw", "pitch", "mouth_open", "eyes_open", "smile_width"):
        assert torch.allclose(turned[name], base[name], atol=1e-3), name
    # scale invariance: everything is a ratio or an angle
    big = geometry.landmark_attributes(landmarks * 3.0)
    for name, v in base.items():
        assert torch.allclose(big[name], v, atol=1e-3), name


def test_yaw_pitch_mouth_respond_in_the_documented_direction(landmarks: torch.Tensor) -> None:
    lm = landmarks.clone()
    nose_right = lm.clone()
    nose_right[:, 27:36, 0] += 3.0  # nose moves to the image's right: turning towards the right
    assert (geometry.yaw(nose_right) > geometry.yaw(lm) + 5).all()
    nose_up = lm.clone()
    nose_up[:, 30, 1] -= 2.0  # nose tip rises towards the eyes: looking up
    assert (geometry.pitch(nose_up) > geometry.pitch(lm) + 3).all()
    open_mouth = lm.clone()
    open_mouth[:, 65:68, 1] += 4.0  # lower inner lip drops
    assert (geometry.mouth_open(open_mouth) > geometry.mouth_open(lm) + 0.1).all()
    g = lm.clone().requires_grad_()
    sum(v.sum() for v in geometry.landmark_attributes(g).values()).backward()
    assert torch.isfinite(g.grad).all() and g.grad.abs().sum() > 0


# ---------------------------------------------------------------- analyzer


def test_analyzer_outputs_shapes_units_and_gradients(analyzer: FaceAnalyzer, faces: torch.Tensor) -> None:
    x = faces.clone().requires_grad_()
    out = analyzer(x)
    assert out.embedding.shape == (2, 128) and out.landmarks.shape == (2, 68, 2)
    assert out.expressions.shape == (2, 7)
    assert torch.allclose(out.expressions.sum(dim=1), torch.ones(2), atol=1e-5)
    assert ((out.age > 5) & (out.age < 90)).all()
    assert ((out.p_male >= 0) & (out.p_male <= 1)).all()
    assert (out.expression("neutral") > 0.9).all()  # the chosen faces are neutral
    lm = out.landmarks
    assert ((lm > -5) & (lm < 69)).all()  # pixels of the 64x64 input
    assert (geometry.interocular_distance(lm) > 12).all()
    total = out.embedding.norm(dim=1).sum() + out.age.sum() + out.expression_logit("happy").sum()
    total = total + out.geometry("yaw").sum() + out.geometry("mouth_open").sum() + out.gender_logit.sum()
    total.backward()
    assert torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0
    js = out.to_json(0)
    assert set(js["expressions"]) == {"neutral", "happy", "sad", "angry", "fearful", "disgusted", "surprised"}
    assert set(js["pose_degrees"]) == {"yaw", "pitch", "roll"}


def test_landmarks_are_in_input_pixels_at_any_size(analyzer: FaceAnalyzer, faces: torch.Tensor) -> None:
    with torch.no_grad():
        small = analyzer.landmarks(faces)
        big = analyzer.landmarks(torch.nn.functional.interpolate(faces, size=128, mode="bicubic").clamp(-1, 1))
    assert (big / 2 - small).abs().median() < 1.0


def test_mirror_averaging(analyzer: FaceAnalyzer, faces: torch.Tensor) -> None:
    heads = ("age_gender", "landmarks")
    with torch.no_grad():
        a, b = analyzer(faces, heads=heads), analyzer(faces.flip(-1), heads=heads)
        m = analyzer(faces, heads=heads, mirror=True)
    assert m.mirrored
    assert torch.allclose(m.age, (a.age + b.age) / 2, atol=1e-3)
    assert torch.allclose(m.gender_logit, (a.gender_logit + b.gender_logit) / 2, atol=1e-4)
    back = geometry.mirror_landmarks(b.landmarks, 64.0)
    assert torch.allclose(m.landmarks, (a.landmarks + back) / 2, atol=1e-3)
    # yaw of the average lies between the face's and the sign-corrected mirror's
    ya, yb, ym = a.geometry("yaw"), -b.geometry("yaw"), m.geometry("yaw")
    assert ((ym >= torch.minimum(ya, yb) - 1) & (ym <= torch.maximum(ya, yb) + 1)).all()


def test_analyzer_rejects_bad_input(analyzer: FaceAnalyzer) -> None:
    with pytest.raises(BadInput):
        analyzer(torch.zeros(3, 64, 64))
    with pytest.raises(BadInput):
        FaceAnalyzer(heads=("recognition", "tail"))
    with pytest.raises(BadInput):
        analyzer(torch.zeros(1, 3, 64, 64), heads=("age_gender",)).expression("happy")


# ---------------------------------------------------------------- alignment


@pytest.fixture(scope="module")
def aligner(analyzer: FaceAnalyzer) -> FaceAligner:
    return FaceAligner(analyzer)


@pytest.mark.parametrize("name", ["astronaut.png", "grace_hopper.png"])
def test_photo_faces_are_found_and_aligned(aligner: FaceAligner, analyzer: FaceAnalyzer, name: str) -> None:
    x = load_image(IMAGES / name)
    face = aligner.align(x, size=96)
    assert face.image.shape == (1, 3, 96, 96) and face.image.abs().max() <= 1
    assert face.detection.score > 0.9
    # the aligned crop shows a level face of the FFHQ scale: eye distance ≈ a quarter of the side
    with torch.no_grad():
        lm = analyzer.landmarks(face.image)
    assert geometry.roll(lm).abs().item() < 5
    iod = geometry.interocular_distance(lm).item() / 96
    assert 0.17 < iod < 0.3
    assert face.quad.shape == (4, 2) and face.landmarks.shape == (68, 2)


def test_teacher_framing_matches_teacher_faces(aligner: FaceAligner, analyzer: FaceAnalyzer) -> None:
    face = aligner.align(load_image(IMAGES / "astronaut.png"), size=64, framing="teacher")
    with torch.no_grad():
        lm = analyzer.landmarks(face.image)
    eyes = (lm[0, 36:48].mean(dim=0))
    assert abs(eyes[0].item() - 32) < 4 and abs(eyes[1].item() - 29) < 5  # teacher median (31.8, 29.0)


@pytest.mark.parametrize("kind", ["grey", "noise"])
def test_no_face_found(aligner: FaceAligner, kind: str) -> None:
    g = torch.Generator().manual_seed(0)
    img = torch.zeros(1, 3, 200, 200) if kind == "grey" else torch.rand(1, 3, 200, 200, generator=g) * 2 - 1
    with pytest.raises(NoFaceFound, match="no face"):
        aligner.align(img)


def test_warp_quad_identity_crop() -> None:
    x = torch.rand(1, 3, 32, 32) * 2 - 1
    quad = torch.tensor([[0.0, 0.0], [0.0, 32.0], [32.0, 32.0], [32.0, 0.0]])
    assert torch.allclose(warp_quad(x, quad, 32), x, atol=1e-5)
    lm = torch.zeros(68, 2)
    lm[36:42] = torch.tensor([10.0, 20.0])
    lm[42:48] = torch.tensor([30.0, 20.0])
    lm[48], lm[54] = torch.tensor([14.0, 40.0]), torch.tensor([26.0, 40.0])
    q = face_quad(lm)  # eye distance 20, eye-to-mouth 20: half side = max(40, 36) = 40
    assert torch.allclose(q[3] - q[0], torch.tensor([80.0, 0.0]), atol=1e-4)
    assert torch.allclose(q.mean(dim=0), torch.tensor([20.0, 22.0]), atol=1e-4)


# ---------------------------------------------------------------- guidance


def test_pixel_steps_raise_happiness_and_keep_identity(analyzer: FaceAnalyzer, faces: torch.Tensor) -> None:
    guidance, id_loss = AttributeGuidance(analyzer), IdentityLoss(analyzer)
    target = EditTarget("happy", "more")
    with torch.no_grad():
        p0 = guidance.measure(faces, ["happy"])["happy"]
    assert (p0 < 0.01).all()
    delta = torch.zeros_like(faces, requires_grad=True)
    opt = torch.optim.Adam([delta], lr=0.02)
    for _ in range(4):
        y = (faces + delta).clamp(-1, 1)
        (guidance.loss(y, target, reference=faces) + 10.0 * id_loss(y, faces)).sum().backward()
        opt.step()
        opt.zero_grad()
    with torch.no_grad():
        y = (faces + delta).clamp(-1, 1)
        p1 = guidance.measure(y, ["happy"])["happy"]
        sim = identity_similarity(y, faces, analyzer)
        score = guidance.score(y, target, reference=faces)
    assert (p1 > 0.3).all() and p1.mean() > 0.5, p1
    assert (sim > 0.95).all(), sim
    assert (score > 0.5).all(), score
    assert (y - faces).abs().max() < 0.085  # Adam: at most ~lr per step


def test_guidance_goals_and_scores(analyzer: FaceAnalyzer, faces: torch.Tensor) -> None:
    g = AttributeGuidance(analyzer)
    with torch.no_grad():
        # unedited images: no progress yet, positive loss for "more"
        more = EditTarget("age", "more", amount=20.0)
        assert torch.allclose(g.score(faces, more, reference=faces), torch.zeros(2), atol=1e-5)
        assert (g.loss(faces, more, reference=faces) > 0).all()
        # a relative goal is one-sided (overshooting is free), a "set" goal two-sided
        age = g.measure(faces, ["age"])["age"]
        swapped = faces.flip(0)  # each face's reference is the other face
        older_by_1 = g.loss(faces, EditTarget("age", "more", amount=1.0), reference=swapped)
        gap = age - age.flip(0)
        assert abs(gap[0]) > 2
        assert ((older_by_1 == 0) == (gap > 1)).all()
        at = g.loss(faces, EditTarget("age", "set", amount=float(age[0])))
        assert at[0] < 1e-6 and at[1] > 0.1
        # compounds: losses add up
        both = ParsedInstruction("older and more masculine", (EditTarget("gender", "more"), more))
        total = g.loss(faces, both, reference=faces)
        parts = g.loss(faces, both.targets[0], reference=faces) + g.loss(faces, more, reference=faces)
        assert torch.allclose(total, parts, atol=1e-5)
        m = g.measure(faces, ["yaw", "mouth_open", "gender"])
    assert set(m) == {"yaw", "mouth_open", "gender"} and all(v.shape == (2,) for v in m.values())
    with pytest.raises(BadInput):
        g.loss(faces, ParsedInstruction("nothing", ()))
    with pytest.raises(BadInput):
        g.loss(faces, EditTarget("gender", "set", amount=3.0))


def test_identity_loss_is_zero_for_the_same_images(analyzer: FaceAnalyzer, faces: torch.Tensor) -> None:
    loss = IdentityLoss(analyzer)
    with torch.no_grad():
        same = loss(faces, faces)
        other = loss(faces, faces.flip(0))
        sim = identity_similarity(faces, faces.flip(-1), analyzer)
    assert same.abs().max() < 1e-5
    assert (other > 0.02).all()
    assert ((sim > 0.8) & (sim < 1.0)).all()  # a mirror image is the same person, not the same descriptor
    with pytest.raises(BadInput):
        loss(faces)


# ---------------------------------------------------------------- CLI


def test_cli_analyze_64px_face(tmp_path: Path, faces: torch.Tensor, capsys) -> None:
    p = save_image(faces[:1], tmp_path / "face.png")
    assert main(["analyze", str(p), "--json"]) == 0
    r = json.loads(capsys.readouterr().out)
    assert r["mode"] == "direct" and r["input_size"] == [64, 64]
    assert 0.5 < r["identity_embedding_norm"] < 3
    assert abs(sum(r["expressions"].values()) - 1) < 1e-4
    assert set(r["pose_degrees"]) == {"yaw", "pitch", "roll"}
    assert set(r["landmark_attributes"]) == {"mouth_open", "eyes_open", "smile_width"}
    assert r["units"]["yaw"] == "degrees"


def test_cli_analyze_photo(capsys) -> None:
    assert main(["analyze", str(IMAGES / "astronaut.png"), "--json", "--mirror"]) == 0
    r = json.loads(capsys.readouterr().out)
    assert r["mode"] == "aligned" and r["detection"]["score"] > 0.9 and r["mirror_averaged"]
    assert r["expressions"]["happy"] > 0.5  # she smiles


def test_cli_analyze_errors(tmp_path: Path, capsys) -> None:
    grey = save_image(torch.zeros(1, 3, 160, 160), tmp_path / "grey.png")
    assert main(["analyze", str(grey), "--align"]) == 2
    assert "no face" in capsys.readouterr().err
    (tmp_path / "bad.png").write_text("not an image")
    assert main(["analyze", str(tmp_path / "bad.png")]) == 2
    assert main(["analyze", str(tmp_path / "missing.png")]) == 2


# ---------------------------------------------------------------- reliability bench


def test_bench_faces_reports_mirror_consistency_and_identity(capsys) -> None:
    assert main(["bench", "faces", "--n", "4", "--batch-size", "4", "--json", "--quiet"]) == 0
    r = json.loads(capsys.readouterr().out)
    assert r["n_faces"] == 4 and r["command"].startswith("edsc bench faces")
    assert set(r["mirror"]) >= {"happy", "age", "p_male", "yaw", "pitch", "mouth_open", "eyes_open"}
    assert all(-1 <= v["r"] <= 1 for v in r["mirror"].values())
    ident = r["identity"]
    assert set(ident) == {"nearby latent (sigma 0.2)", "nearby latent (sigma 0.5)", "mirror image", "unrelated face"}
    # a nearby latent is closer than an unrelated face
    assert ident["nearby latent (sigma 0.2)"]["distance"]["median"] < ident["unrelated face"]["distance"]["median"]
    assert main(["bench", "faces", "--n", "1"]) == 2


@pytest.mark.parametrize(
    "shape,kernel,stride", [((2, 3, 13, 13), 3, 2), ((2, 4, 14, 15), 3, 2), ((1, 2, 8, 8), 2, 2), ((1, 2, 9, 7), 3, 1)]
)
def test_separable_max_pool_equals_torch(shape, kernel, stride):
    import torch.nn.functional as F

    from editable_deepsc.guidance.faces.layers import max_pool_same, pad_same

    x = torch.randn(shape, generator=torch.Generator().manual_seed(0))
    want = F.max_pool2d(pad_same(x, kernel, stride, value=-math.inf), kernel, stride)
    with torch.no_grad():
        got = max_pool_same(x, kernel, stride)  # separable path
    assert torch.equal(got, want)
    xg = x.clone().requires_grad_(True)
    assert torch.equal(max_pool_same(xg, kernel, stride).detach(), want)  # autograd path
