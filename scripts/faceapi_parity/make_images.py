"""Write the images the face-api parity fixtures are computed on (run once; the PNGs are committed).

Images (``tests/fixtures/faceapi/images/``):

* ``teacher_<seed>.png`` — 64×64 faces of the teacher DCGAN (PyPI ``gan-face-generate``,
  z ~ N(0, I) from ``torch.Generator().manual_seed(seed)``), upscaled bicubic to 150×150.
* ``astronaut.png`` — scikit-image's ``astronaut`` sample, resized to 256×256.
* ``grace_hopper.png`` — matplotlib's ``grace_hopper.jpg`` sample, resized to 218×256 (w×h).
* ``astronaut_face.png`` / ``grace_hopper_face.png`` — face crops of those two (non-square for
  Grace Hopper, so the nets' pad-to-square path is covered).

Usage::

    python scripts/faceapi_parity/make_images.py
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image

OUT = Path(__file__).resolve().parents[2] / "tests" / "fixtures" / "faceapi" / "images"
TEACHER_SEEDS = (1, 2, 3, 4, 5, 6)


def teacher_faces(seeds: tuple[int, ...]) -> list[Image.Image]:
    """Generate teacher faces (64×64) directly from the package weights."""
    import gan_face_generate
    from gan_face_generate.models import Generator

    path = Path(gan_face_generate.__file__).parent / "weights.tar"
    net = Generator(ngpu=0, nc=3, nz=100, ngf=64)
    net.load_state_dict(torch.load(path, map_location="cpu", weights_only=True)["netG_state_dict"])
    net.eval()
    images = []
    for seed in seeds:
        z = torch.randn(1, 100, 1, 1, generator=torch.Generator().manual_seed(seed))
        with torch.no_grad():
            x = net(z)[0]
        arr = ((x.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).permute(1, 2, 0).numpy()
        images.append(Image.fromarray(arr, "RGB"))
    return images


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    for seed, img in zip(TEACHER_SEEDS, teacher_faces(TEACHER_SEEDS)):
        img.resize((150, 150), Image.BICUBIC).save(OUT / f"teacher_{seed}.png")

    import matplotlib.cbook as cbook
    import skimage.data

    astronaut = Image.fromarray(np.asarray(skimage.data.astronaut()), "RGB")
    astronaut.resize((256, 256), Image.BICUBIC).save(OUT / "astronaut.png")
    astronaut.crop((150, 20, 310, 180)).save(OUT / "astronaut_face.png")

    with Image.open(cbook.get_sample_data("grace_hopper.jpg")) as im:
        hopper = im.convert("RGB")
    hopper.resize((218, 256), Image.BICUBIC).save(OUT / "grace_hopper.png")
    hopper.crop((130, 60, 370, 340)).save(OUT / "grace_hopper_face.png")
    print("wrote", sorted(p.name for p in OUT.glob("*.png")))


if __name__ == "__main__":
    main()
