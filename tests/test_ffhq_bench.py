"""The FFHQ generator's exit evaluation (oracle colour diagnosis), bench JSON and CPU variants, on a tiny instance."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).parent))
from test_ffhq_generator import tiny  # noqa: E402

from editable_deepsc.generator import exit_eval  # noqa: E402


def test_oracle_colour_fit_undoes_an_affine_colour_shift_and_never_hurts():
    gen = torch.Generator().manual_seed(0)
    target = torch.rand(3, 3, 16, 16, generator=gen) * 2 - 1
    m = torch.tensor([[0.8, 0.1, 0.0], [0.0, 0.7, 0.2], [0.1, 0.0, 0.9]])
    shifted = torch.einsum("dc,nchw->ndhw", m, target) + torch.tensor([0.1, -0.2, 0.05])[:, None, None]
    torch.testing.assert_close(exit_eval.oracle_colour_fit(shifted, target), target, atol=1e-5, rtol=0)
    noisy = target + 0.3 * torch.randn(target.shape, generator=gen)
    fitted = exit_eval.oracle_colour_fit(noisy, target)
    assert (exit_eval.psnr_db(fitted, target) >= exit_eval.psnr_db(noisy, target)).all()
    # per image: a shift applied to one image only is undone for that image alone
    one = target.clone()
    one[1] = one[1] * 0.5 + 0.2
    torch.testing.assert_close(exit_eval.oracle_colour_fit(one, target), target, atol=1e-5, rtol=0)
    with pytest.raises(ValueError, match="one shape"):
        exit_eval.oracle_colour_fit(target, target[:, :, :8])


def test_evaluate_exits_reports_the_oracle_psnr_above_the_plain_psnr():
    g = tiny(exits={"16": 0, "32": 0})
    res = exit_eval.evaluate_exits(g, n=6, batch=3, speed_reps=1, log=lambda m: None, perceptual=False)
    assert res["n"] == 6 and res["seeds"][1] - res["seeds"][0] == 5
    for size in ("16", "32"):
        r = res["exits"][size]
        assert r["psnr_oracle_colour_db"] >= r["psnr_db"] and r["psnr_oracle_colour_min_db"] >= r["psnr_min_db"]
        assert r["lpips"] is None and r["id_distance"] is None and r["speedup"] > 0
