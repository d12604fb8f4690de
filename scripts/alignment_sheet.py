"""Make docs/img/ffhq-alignment.jpg and print the paste-back PSNR of each photo.

Two public-domain photos that ship with the dependencies (scikit-image's astronaut, 512x512, and
matplotlib's grace_hopper.jpg, 512x600): the photo with the detected landmarks and the FFHQ quad
(green = its top edge), the aligned 256x256 crop, and the photo with a grey-scaled crop pasted
back through the feathered mask. The PSNR of pasting back the *unedited* crop is measured over
the whole photo and over the mask's full-weight region.

    python scripts/alignment_sheet.py [--out docs/img/ffhq-alignment.jpg]
"""

from __future__ import annotations

import argparse

import matplotlib.cbook as cbook
import torch
from PIL import Image, ImageDraw
from skimage import data as skdata

from editable_deepsc.guidance.faces.align import FaceAligner
from editable_deepsc.imaging.io import from_pil, to_pil
from editable_deepsc.inversion.ffhq_align import align_photo, paste_back, paste_mask

ROW = 256


def psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    return float(10 * torch.log10(4.0 / ((a - b) ** 2).mean()))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default="docs/img/ffhq-alignment.jpg")
    args = ap.parse_args()
    torch.manual_seed(0)
    photos = {
        "astronaut": from_pil(Image.fromarray(skdata.astronaut())),
        "grace_hopper": from_pil(Image.open(cbook.get_sample_data("grace_hopper.jpg"))),
    }
    aligner = FaceAligner()
    rows = []
    for name, photo in photos.items():
        crop, tf, lm = align_photo(photo, 256, aligner=aligner)
        back = paste_back(photo, crop, tf)
        full = paste_mask(tf) >= 1.0
        print(f"{name}: {photo.shape[-1]}x{photo.shape[-2]}, quad side {tf.side:.0f} px, angle {tf.angle_degrees:+.1f} deg; "
              f"paste-back of the unedited 256 crop: PSNR {psnr(back, photo):.1f} dB (whole photo), "
              f"{psnr(back[..., full], photo[..., full]):.1f} dB (full-weight mask region)")
        grey = crop.mean(dim=1, keepdim=True).expand(-1, 3, -1, -1)
        edited = to_pil(paste_back(photo, grey, tf))
        shown = to_pil(photo)
        draw = ImageDraw.Draw(shown)
        q = [tuple(p) for p in tf.quad]
        draw.polygon(q, outline=(255, 0, 0))
        draw.line([q[0], q[3]], fill=(0, 255, 0), width=3)
        for x, y in lm.tolist():
            draw.ellipse([x - 1.5, y - 1.5, x + 1.5, y + 1.5], fill=(255, 255, 0))
        tiles = [im.resize((round(im.width * ROW / im.height), ROW), Image.LANCZOS) for im in (shown, to_pil(crop), edited)]
        row = Image.new("RGB", (sum(t.width for t in tiles) + 8 * (len(tiles) - 1), ROW), "white")
        x = 0
        for t in tiles:
            row.paste(t, (x, 0))
            x += t.width + 8
        rows.append(row)
    sheet = Image.new("RGB", (max(r.width for r in rows), (ROW + 8) * len(rows) - 8), "white")
    for k, r in enumerate(rows):
        sheet.paste(r, (0, k * (ROW + 8)))
    sheet.save(args.out, quality=88)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
