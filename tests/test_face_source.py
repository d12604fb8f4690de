"""The teacher face source (seeded, batched, reserved test seeds) and the packaged real photos."""

from __future__ import annotations

import pytest
import torch

from editable_deepsc.errors import BadInput
from editable_deepsc.generator.photos import REAL_PHOTOS, real_photo, real_photos
from editable_deepsc.generator.teacher import (
    TEST_SEEDS,
    TRAIN_SEEDS,
    face_latents,
    random_train_seeds,
    teacher_faces,
)
from editable_deepsc.generator.teacher import test_seeds as reserved_seeds


def test_seed_ranges_are_disjoint_and_documented():
    assert TRAIN_SEEDS.stop <= TEST_SEEDS.start
    assert list(reserved_seeds(3, 10)) == [TEST_SEEDS.start + 10, TEST_SEEDS.start + 11, TEST_SEEDS.start + 12]
    with pytest.raises(BadInput):
        reserved_seeds(10, len(TEST_SEEDS) - 5)
    seeds = random_train_seeds(1000, torch.Generator().manual_seed(0))
    assert all(TRAIN_SEEDS.start <= s < TRAIN_SEEDS.stop for s in seeds)


def test_faces_are_seeded_and_batch_independent():
    seeds = [7, 8, 9, 10, 11]
    a = teacher_faces(seeds, batch_size=2)
    b = teacher_faces(seeds, batch_size=64)
    c = teacher_faces([9])
    assert a.shape == (5, 3, 64, 64) and a.dtype == torch.float32
    torch.testing.assert_close(a, b, atol=1e-5, rtol=0)
    torch.testing.assert_close(a[2:3], c, atol=1e-5, rtol=0)
    assert float(a.min()) >= -1.0 and float(a.max()) <= 1.0
    assert float((a[0] - a[1]).abs().mean()) > 0.05  # different seeds, different faces
    assert torch.equal(face_latents([7])[0], face_latents([7, 8])[0])
    with pytest.raises(BadInput):
        face_latents([])


def test_real_photos():
    photos = real_photos()
    assert set(photos) == set(REAL_PHOTOS)
    assert photos["astronaut"].shape == (3, 512, 512)
    assert photos["grace_hopper"].shape == (3, 600, 512)
    for x in photos.values():
        assert x.dtype == torch.float32 and float(x.min()) >= -1.0 and float(x.max()) <= 1.0
        assert float(x.std()) > 0.2  # a real photo, not a blank
    with pytest.raises(BadInput, match="available"):
        real_photo("mona_lisa")
