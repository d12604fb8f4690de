"""The demo job behind ``edsc demo`` (library function, the CLI only formats)."""

from __future__ import annotations

import json
from pathlib import Path

import torch

from editable_deepsc.channel import complex_to_real, make_channel, normalize_power, real_to_complex, snr_to_no
from editable_deepsc.imaging import from_pil, resize, save_image
from editable_deepsc.rng import derive_seed, make_generator


def sample_face(size: int = 64) -> torch.Tensor:
    """A real photo shipped with scikit-image (the astronaut), face-centred crop, (1, 3, size, size) in [-1, 1]."""
    from PIL import Image
    from skimage import data

    img = Image.fromarray(data.astronaut()).crop((140, 20, 340, 220))
    return resize(from_pil(img), size, mode="bicubic")


def send_analog(image: torch.Tensor, channel: str, snr_db: float, generator: torch.Generator) -> tuple[torch.Tensor, int]:
    """Uncoded analog transmission: pixel pairs as complex symbols (CBR 1/2), power-normalised.

    Returns the received image (1, 3, H, W) and k.
    """
    flat = image.flatten(1)
    mean, scale = flat.mean(), None
    z = real_to_complex(flat - mean)
    x = normalize_power(z)
    scale = (z.abs().pow(2).mean()).sqrt()
    y = make_channel(channel)(x, snr_to_no(snr_db), generator=generator)
    rx = complex_to_real(y * scale) + mean
    return rx.view_as(image).clamp(-1, 1), x.shape[1]


def run_demo(out_dir: Path, snrs: list[float], channel: str = "awgn", seed: int = 0) -> list[dict]:
    """Send the sample face over ``channel`` at each SNR with every available method.

    Writes ``out_dir/<method>_<snr>dB.png`` and ``out_dir/summary.json``; returns the rows.
    """
    from editable_deepsc.channel import check_snr
    from editable_deepsc.metrics.image import psnr, ssim

    snrs = [check_snr(s) for s in snrs]
    make_channel(channel)  # validate the name before doing any work
    out_dir = Path(out_dir)
    img = sample_face(64)
    save_image(img, out_dir / "source.png")
    rows = []
    for snr in snrs:
        g = make_generator(derive_seed(seed, "analog", snr))
        rx, k = send_analog(img, channel, snr, g)
        save_image(rx, out_dir / f"analog_{snr:g}dB.png")
        rows.append({"method": "analog-uncoded", "channel": channel, "snr_db": snr, "k": k,
                     "cbr": k / img[0].numel(), "psnr": float(psnr(rx, img)), "ssim": float(ssim(rx, img)),
                     "decoded_ok": True})
        try:
            from editable_deepsc.baselines.jpeg_ldpc import transmit_jpeg_ldpc
        except ImportError:
            continue
        res = transmit_jpeg_ldpc(img, cbr=1 / 6, snr_db=snr, channel=channel, seed=derive_seed(seed, "jpeg", snr))
        save_image(res.image, out_dir / f"jpeg-ldpc_{snr:g}dB.png")
        rows.append({k_: v for k_, v in res.to_json().items() if k_ != "image"})
    (out_dir / "summary.json").write_text(json.dumps(rows, indent=1) + "\n")
    return rows
