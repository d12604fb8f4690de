"""Experiment (not a shipped feature): refine hybrid inversions inside an ffhq codec's kept subspace.

The ffhq codecs carry the 2(k-1) strongest separable coordinates of W+; a hybrid inversion spreads
a photo's identity over far more, so truncation alone loses it. This refines each latent for 40 Adam
steps *inside* the kept coordinates (face-api identity to the photo + pixel MSE at the 256 exit), then
reports the face-api distance to the photo after truncation and after the codec at 20/12/6 dB AWGN.
Each line gives face-api distances (the descriptor the refinement optimises, so it can be fooled) and,
after "|", the distances by FaceRes, the second descriptor nothing optimises, with its threshold.

    PYTHONPATH=. python scripts/experiment_subspace_inversion.py runs/celeba-latents [K ...]

The cache must hold hybrid inversions of CelebA 000712, 000715, 000720 and 000725
(``edsc bench codec --models ffhq --photo-cache DIR`` makes them).
"""
import sys
import time

import torch
import torch.nn.functional as F
from editable_deepsc.generator import load_generator
from editable_deepsc.generator.exit_view import work_generator
from editable_deepsc.channel import load_codec, AWGN
from editable_deepsc.editing.face_guidance import FaceNetGuidance
from editable_deepsc.guidance.faces.view import view_for_generator
from editable_deepsc.inversion.photo_target import PhotoIdentity, PhotoTarget, SecondIdentity
from editable_deepsc.data.celeba import celeba_jpeg, decode_photo
from editable_deepsc.zoo.registry import load_state_dict
torch.set_num_threads(1)
CACHE = sys.argv[1] if len(sys.argv) > 1 else "runs/celeba-latents"
g = load_generator("mobilestylegan-ffhq"); wg = work_generator(g)
gd = FaceNetGuidance(view=view_for_generator(g.name))
names = [712, 715, 720, 725]
w = torch.cat([load_state_dict(f"{CACHE}/celeba-{i:06d}-hybrid-mobilestylegan-ffhq.safetensors", verify=False)["w_plus"] for i in names])
tg = [PhotoTarget.from_photo(decode_photo(celeba_jpeg(i)), size=256) for i in names]
crops = torch.cat([t.crop for t in tg])
pid = PhotoIdentity(tg, analyzer=gd.analyzer)
second = SecondIdentity(tg)
print("same person: face-api <=", round(float(__import__("editable_deepsc.inversion.photo_target", fromlist=["x"]).same_person_threshold()[0]), 3),
      "| FaceRes <=", round(float(second.threshold), 3))
def ident(x):
    with torch.no_grad():
        img = wg.synthesis(x).clamp(-1,1)
        return [round(float(v),3) for v in pid.distance(img)], "|", [round(float(v),3) for v in second.distance(img)]
print("hybrid inversions, not truncated:", ident(w))
for k in [int(a) for a in (sys.argv[2:] or [1024, 128])]:
    c = load_codec(f"edsc-codec-mobilestylegan-ffhq-k{k}")
    u = c.coordinates(w).detach().clone().requires_grad_(True)
    opt = torch.optim.Adam([u], lr=0.03)
    t0 = time.time()
    for s in range(40):
        img = wg.synthesis(c.latents(u))
        loss = (1 - F.cosine_similarity(pid.embed(pid.chips(img)), pid.source, dim=1)).sum() + F.mse_loss(img, crops, reduction="none").flatten(1).mean(1).sum()
        opt.zero_grad(); loss.backward(); opt.step()
    ws = c.latents(u).detach()
    print(f"k{k}: {time.time()-t0:.0f}s; trunc before", ident(c.latents(c.coordinates(w))), "after", ident(ws))
    with torch.no_grad():
        for snr in (20, 12, 6):
            print(f"   {snr} dB", ident(c(ws, AWGN(), snr, rng=torch.Generator().manual_seed(0))))
