"""The main job behind ``edsc demo`` / ``./run demo`` (library function; the CLI only formats).

On the built-in model set it edits a few sample faces — held-out teacher test
faces and a real photo shipped with scikit-image (the astronaut) — under a few
instructions the built-in editor supports, sends only the edited latent over
the channel at several SNRs, and writes:

* ``grid.png`` — one row per (face, instruction): source | transmitter's edit |
  received edit at each SNR;
* ``<face>_<instruction>_<snr>dB.png`` — every received image;
* ``summary.json`` — one record per run (what ``edsc edit --json`` prints), plus
  the JPEG + 5G-LDPC baseline sending the *source image* at CBR 1/6 on the same
  channel, for scale.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import torch

from editable_deepsc.baselines.jpeg_ldpc import transmit_jpeg_ldpc
from editable_deepsc.channel.config import ChannelConfig
from editable_deepsc.errors import EdscError
from editable_deepsc.generator.teacher import teacher_faces, test_seeds
from editable_deepsc.imaging import from_pil, resize, save_image
from editable_deepsc.rng import derive_seed
from editable_deepsc.system import EditableDeepSC

DEFAULT_INSTRUCTIONS: tuple[str, ...] = ("make her smile", "turn the head to the left", "open the mouth")
DIGITAL_CBR = 1 / 6


def sample_photo(size: int = 256) -> torch.Tensor:
    """The astronaut photo shipped with scikit-image, square crop (1, 3, size, size) in [-1, 1]."""
    from PIL import Image
    from skimage import data

    img = Image.fromarray(data.astronaut()).crop((96, 0, 352, 256)).resize((size, size), Image.BICUBIC)
    return from_pil(img)


def sample_face(size: int = 64) -> torch.Tensor:
    """The astronaut's face, tight crop (1, 3, size, size) in [-1, 1] (a test image for the codecs)."""
    from PIL import Image
    from skimage import data

    img = Image.fromarray(data.astronaut()).crop((140, 20, 340, 220))
    return resize(from_pil(img), size, mode="bicubic")


def sample_faces(n_teacher: int = 2) -> dict[str, torch.Tensor]:
    """Named sample images: ``n_teacher`` held-out teacher faces (64x64) and the astronaut photo."""
    seeds = test_seeds(n_teacher)
    faces = teacher_faces(seeds)
    out = {f"teacher{s}": faces[i:i + 1] for i, s in enumerate(seeds)}
    out["astronaut"] = sample_photo()
    return out


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:40]


def run_demo(out_dir: Path, snrs: list[float], channel: str = "awgn", seed: int = 0,
             instructions: tuple[str, ...] = DEFAULT_INSTRUCTIONS, n_teacher: int = 2,
             progress: bool = True, models: str | None = None) -> list[dict]:
    """Run Editable-DeepSC on the sample faces; write images, a grid and ``summary.json``.

    Parameters
    ----------
    out_dir : Path
    snrs : list of float
        SNRs in dB (each validated).
    channel : {"awgn", "rayleigh"}
    seed : int
    instructions : tuple of str
        Instructions to apply (refused ones are reported and skipped).
    n_teacher : int
        Held-out teacher faces besides the astronaut photo.
    models : str, optional
        Model set (default: :data:`~editable_deepsc.vocab.DEFAULT_MODEL_SET`).

    Returns
    -------
    list of dict
        One record per run: Editable-DeepSC edits and the digital baseline rows.
    """
    from tqdm import tqdm

    channels = [ChannelConfig(channel, s) for s in snrs]  # validate before any work
    out_dir = Path(out_dir)
    system = EditableDeepSC.load(models=models)
    faces = sample_faces(n_teacher)
    rows: list[dict] = []
    grid_rows: list[torch.Tensor] = []
    jobs = [(name, ins) for name in faces for ins in instructions]
    for name, ins in tqdm(jobs, desc="demo", disable=not progress):
        row_imgs = None
        for ch in channels:
            try:
                res = system.edit(faces[name], ins, ch, seed=seed)
            except EdscError as e:
                rows.append({"method": "editable-deepsc", "face": name, "instruction": ins, "snr_db": ch.snr_db,
                             "channel": ch.name, "refused": str(e)})
                break
            rec = {"method": "editable-deepsc", "face": name, **res.to_json()}
            rows.append(rec)
            save_image(res.rx_image, out_dir / f"{name}_{_slug(ins)}_{ch.snr_db:g}dB.png")
            if row_imgs is None:
                row_imgs = [res.source, res.tx_image]
            row_imgs.append(res.rx_image)
        if row_imgs is not None:
            grid_rows.append(torch.cat(row_imgs, dim=3))
    rows.extend(_digital_rows(faces, channels, seed, out_dir))
    if grid_rows:
        save_image(torch.cat(grid_rows, dim=2), out_dir / "grid.png")
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "summary.json").write_text(json.dumps(rows, indent=1) + "\n")
    return rows


def _digital_rows(faces: dict[str, torch.Tensor], channels: list[ChannelConfig], seed: int, out_dir: Path) -> list[dict]:
    """JPEG + 5G LDPC sending each 64x64 source at CBR 1/6 (for scale: what sending pixels costs)."""
    rows = []
    for name, img in faces.items():
        img64 = resize(img, 64)
        for ch in channels:
            res = transmit_jpeg_ldpc(img64, cbr=DIGITAL_CBR, channel=ch,
                                     seed=derive_seed(seed, "jpeg", name, ch.snr_db))
            save_image(res.image, out_dir / f"{name}_jpeg-ldpc_{ch.snr_db:g}dB.png")
            rec = {k: v for k, v in res.to_json().items() if k != "image"}
            rows.append({"face": name, **rec})
    return rows
