"""FFHQ-aligned CelebA photos (training and validation splits) for the ``ffhq`` encoder's image losses and checks."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path

import torch

from editable_deepsc.errors import BadInput
from editable_deepsc.train import encoder_samples as samples
from editable_deepsc.zoo import registry

CELEBA_FILE = "celeba-aligned-{split}.safetensors"


def celeba_aligned(work_dir: Path, size: int = 256, split: str = "train", limit: int | None = None,
                   log: Callable[[str], None] = print) -> torch.Tensor:  # fmt: skip
    """FFHQ-aligned CelebA photos of ``split`` (``train`` 000001-000700 or ``val`` 000701-000800) at ``size``.

    Aligned once (face-api landmarks, :func:`~editable_deepsc.inversion.ffhq_align.align_photo`)
    and cached in ``work_dir/celeba-aligned-<split>.safetensors``; photos without a detected
    face are skipped (their numbers are in the file's metadata). The held-out split is refused.

    Returns
    -------
    torch.Tensor
        uint8 (N, 3, size, size).
    """
    if split not in ("train", "val"):
        raise BadInput(f"encoder training reads the CelebA train or val split only, not {split!r}")
    from safetensors import safe_open
    from safetensors.torch import load_file

    from editable_deepsc.data.celeba import decode_photo, iter_celeba
    from editable_deepsc.errors import NoFaceFound
    from editable_deepsc.guidance.faces.align import FaceAligner
    from editable_deepsc.inversion.ffhq_align import align_photo

    path = Path(work_dir) / CELEBA_FILE.format(split=split)
    if path.is_file():
        with safe_open(str(path), "pt") as f:
            meta = f.metadata()
        if int(json.loads(meta["size"])) == size and json.loads(meta.get("limit", "null")) == limit:
            return load_file(str(path))["images"]
    aligner = FaceAligner()
    crops, numbers, missed = [], [], []
    t = time.time()
    for number, jpeg in iter_celeba(split, limit=limit):
        try:
            crop, _, _ = align_photo(decode_photo(jpeg), size=size, aligner=aligner)
        except NoFaceFound:
            missed.append(number)
            continue
        crops.append(samples.to_uint8(crop)[0])
        numbers.append(number)
    images = torch.stack(crops)
    meta = {"size": json.dumps(size), "limit": json.dumps(limit), "numbers": json.dumps(numbers),
            "missed": json.dumps(missed)}  # fmt: skip
    registry.save_state_dict({"images": images}, path, metadata=meta)
    log(f"aligned {len(numbers)} CelebA {split} photos ({len(missed)} without a face) in {time.time() - t:.0f} s")
    return images
