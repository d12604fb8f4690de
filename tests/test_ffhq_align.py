"""FFHQ-style alignment with a kept transform, and paste-back (synthetic photos, no nets)."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from editable_deepsc.errors import BadInput
from editable_deepsc.inversion.ffhq_align import (
    AlignTransform,
    _gaussian_blur,
    align_quad,
    ffhq_align,
    paste_back,
    paste_mask,
)

pytestmark = pytest.mark.usefixtures("one_torch_thread_module")


def textured_photo(h: int, w: int, seed: int = 0, sigma: float = 2.0) -> torch.Tensor:
    """(1, 3, h, w) band-limited noise plus a colour gradient, in [-1, 1]."""
    g = torch.Generator().manual_seed(seed)
    noise = _gaussian_blur(torch.rand(1, 3, h, w, generator=g) * 2 - 1, sigma)
    noise = noise / noise.abs().max()
    y, x = torch.meshgrid(torch.linspace(-1, 1, h), torch.linspace(-1, 1, w), indexing="ij")
    return (0.6 * noise + 0.3 * torch.stack([x, y, x * y]).unsqueeze(0)).clamp(-1, 1)


def face_landmarks(cx: float, cy: float, iod: float, angle: float = 0.0, mouth: float = 1.1) -> torch.Tensor:
    """(68, 2) landmarks whose eyes sit ``iod`` apart around (cx, cy), mouth ``mouth·iod`` below,
    the whole face rotated by ``angle`` radians (clockwise on screen). Only the points the FFHQ
    recipe reads (eyes 36–47, mouth corners 48 and 54) matter."""
    c, s = math.cos(angle), math.sin(angle)

    def at(a: float, b: float) -> list[float]:
        return [cx + iod * (a * c - b * s), cy + iod * (a * s + b * c)]

    lm = torch.zeros(68, 2, dtype=torch.float64)
    lm[36:42] = torch.tensor(at(-0.5, 0.0), dtype=torch.float64)
    lm[42:48] = torch.tensor(at(0.5, 0.0), dtype=torch.float64)
    lm[48] = torch.tensor(at(-0.4, mouth), dtype=torch.float64)
    lm[54] = torch.tensor(at(0.4, mouth), dtype=torch.float64)
    return lm


def psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    """PSNR in dB for images in [-1, 1] (peak-to-peak 2)."""
    return float(10 * torch.log10(4.0 / ((a - b) ** 2).mean()))


def test_quad_follows_the_ffhq_recipe():
    # eyes 40 px apart at (100 ± 20, 80), mouth 44 px below: |eye_to_mouth| = 44 → half-side
    # max(2·40, 1.8·44) = 80, centre 0.1·44 below the eyes, no rotation
    _, tf = ffhq_align(textured_photo(240, 200), face_landmarks(100, 80, 40), size=64)
    q = tf.quad_tensor()
    assert torch.allclose(q, torch.tensor([[20, 4.4], [20, 164.4], [180, 164.4], [180, 4.4]], dtype=torch.float64),
                          atol=1e-4)
    assert tf.side == pytest.approx(160, abs=1e-4)
    # a long face: the eye-to-mouth term wins (1.8 · 2.0 · 40 = 144 > 80)
    _, tf = ffhq_align(textured_photo(300, 300), face_landmarks(150, 100, 40, mouth=2.0), size=64)
    assert tf.side == pytest.approx(2 * 144, abs=1e-3)


@pytest.mark.parametrize("h, w, size", [(300, 200, 128), (200, 360, 128), (256, 256, 256), (240, 180, 400)])
def test_paste_back_of_the_unedited_crop_restores_the_photo(h, w, size):
    photo = textured_photo(h, w, seed=h + w)
    lm = face_landmarks(w * 0.5, h * 0.42, min(h, w) * 0.12, angle=0.2)
    crop, tf = ffhq_align(photo, lm, size)
    assert crop.shape == (1, 3, size, size) and tf.photo_size == (h, w)
    back = paste_back(photo, crop, tf)
    full = paste_mask(tf) >= 1.0
    assert full.sum() > 0.04 * h * w
    # the face region comes back (two bilinear resamplings of band-limited texture)
    assert psnr(back[..., full], photo[..., full]) > 45.0
    # outside the quad nothing changes, bit for bit
    untouched = paste_mask(tf) == 0
    assert torch.equal(back[..., untouched], photo[..., untouched])


def test_paste_back_places_an_edit_inside_the_quad_only():
    photo = textured_photo(220, 300)
    crop, tf = ffhq_align(photo, face_landmarks(150, 100, 30), 128)
    edited = torch.full_like(crop, 0.5)
    back = paste_back(photo, edited, tf, feather=0.1)
    mask = paste_mask(tf, 0.1)
    assert torch.allclose(back[..., mask >= 1], torch.full_like(back[..., mask >= 1], 0.5), atol=1e-6)
    assert torch.equal(back[..., mask == 0], photo[..., mask == 0])
    ramp = (mask > 0) & (mask < 1)  # the feathered band blends the two
    assert ramp.any()
    mid = back[..., ramp]
    lo = torch.minimum(photo[..., ramp], torch.tensor(0.5)) - 1e-6
    hi = torch.maximum(photo[..., ramp], torch.tensor(0.5)) + 1e-6
    assert ((mid >= lo) & (mid <= hi)).all()
    # a hard mask (feather 0) covers the whole quad
    assert paste_mask(tf, 0.0).sum() > mask.sum()


def test_an_edited_crop_of_another_size_pastes_back_at_the_same_place():
    photo = textured_photo(200, 260, seed=3)
    crop, tf = ffhq_align(photo, face_landmarks(130, 90, 28, angle=-0.1), 96)
    big = F.interpolate(crop, size=(384, 384), mode="bicubic", align_corners=False).clamp(-1, 1)
    full = paste_mask(tf) >= 1.0
    assert psnr(paste_back(photo, big, tf)[..., full], photo[..., full]) > 45.0


def test_rotation_is_recovered_on_a_rotated_photo():
    h = w = 256
    photo = textured_photo(h, w, seed=7)
    lm = face_landmarks(128, 118, 34)
    theta = math.radians(25.0)
    # rotate the photo by theta (clockwise on screen) around its centre
    c, s = math.cos(theta), math.sin(theta)
    rot = torch.tensor([[c, s, 0.0], [-s, c, 0.0]], dtype=torch.float32).unsqueeze(0)  # output -> input
    grid = F.affine_grid(rot, (1, 3, h, w), align_corners=False)
    rotated = F.grid_sample(photo, grid, mode="bilinear", padding_mode="reflection", align_corners=False)
    centre = torch.tensor([w / 2, h / 2], dtype=torch.float64)
    r = torch.tensor([[c, -s], [s, c]], dtype=torch.float64)
    lm_rot = (lm - centre) @ r.T + centre
    crop0, tf0 = ffhq_align(photo, lm, 128)
    crop1, tf1 = ffhq_align(rotated, lm_rot, 128)
    assert tf0.angle_degrees == pytest.approx(0.0, abs=1e-6)
    assert tf1.angle_degrees == pytest.approx(25.0, abs=1e-6)
    assert tf1.side == pytest.approx(tf0.side, rel=1e-9)
    inner = slice(16, 112)  # away from where the rotated photo's corners were reflected
    assert psnr(crop1[..., inner, inner], crop0[..., inner, inner]) > 45.0
    assert psnr(crop1[..., inner, inner], crop0.flip(-1)[..., inner, inner]) < 25.0  # the check can fail


def test_padding_outside_the_photo_is_blurred_and_fades_to_the_median():
    photo = textured_photo(120, 120, seed=5, sigma=1.0)
    lm = face_landmarks(60, 40, 30)  # the quad sticks out of the photo on every side
    quad_crop, tf = ffhq_align(photo, lm, 128, blur_padding=True)
    plain, _ = ffhq_align(photo, lm, 128, blur_padding=False)
    pts = tf.crop_to_photo()
    # crop pixels well inside the photo are untouched by the padding blend
    t = (torch.arange(128, dtype=torch.float64) + 0.5) / 128
    u, v = torch.meshgrid(t, t, indexing="xy")
    x = pts[0, 0] * u + pts[0, 1] * v + pts[0, 2]
    y = pts[1, 0] * u + pts[1, 1] * v + pts[1, 2]
    deep_inside = (x > 20) & (x < 100) & (y > 20) & (y < 100)
    outside = (x < -10) | (x > 130) | (y < -10) | (y > 130)
    assert deep_inside.any() and outside.any()
    assert torch.equal(quad_crop[..., deep_inside], plain[..., deep_inside])

    def roughness(img: torch.Tensor, where: torch.Tensor) -> float:
        d = (img[..., 1:, :] - img[..., :-1, :]).abs()[..., where[1:, :] & where[:-1, :]]
        return float(d.mean())

    assert roughness(quad_crop, outside) < 0.5 * roughness(plain, outside)


def test_transform_json_round_trip_and_checks():
    photo = textured_photo(100, 150)
    _, tf = ffhq_align(photo, face_landmarks(75, 45, 20, angle=0.3), 64)
    again = AlignTransform.from_json(tf.to_json())
    assert again == tf
    m = tf.crop_to_photo() @ tf.photo_to_crop()
    assert torch.allclose(m, torch.eye(3, dtype=torch.float64), atol=1e-9)
    with pytest.raises(BadInput, match="malformed"):
        AlignTransform.from_json({"quad": [[0, 0]], "size": 64, "photo_size": [10, 10]})
    with pytest.raises(BadInput, match="malformed"):
        AlignTransform.from_json({"size": 64})
    with pytest.raises(BadInput, match="transform is for a 150x100 photo"):
        paste_back(textured_photo(90, 150), torch.zeros(1, 3, 64, 64), tf)
    with pytest.raises(BadInput, match="square RGB crop"):
        paste_back(photo, torch.zeros(1, 3, 64, 32), tf)
    with pytest.raises(BadInput, match="feather"):
        paste_mask(tf, 0.6)
    with pytest.raises(BadInput, match="68, 2"):
        ffhq_align(photo, torch.zeros(5, 2), 64)
    with pytest.raises(BadInput, match="too small"):
        align_quad(photo, torch.zeros(4, 2), 64)
