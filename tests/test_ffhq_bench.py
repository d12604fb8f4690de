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


def test_fast_cpu_path_is_the_default_and_the_same_function(monkeypatch):
    g = tiny(exits={"16": 0, "32": 0})
    assert g.fast is True and all(m.fast for m in g.modules() if hasattr(m, "fast"))
    with torch.no_grad():
        wp = g.broadcast(g.mapping(torch.randn(3, 16, generator=torch.Generator().manual_seed(1)))).clone()
        wp[:, 5:] = g.mapping(torch.randn(3, 16, generator=torch.Generator().manual_seed(2)))[:, None]  # not a broadcast
    calls = []
    bmm = torch.bmm
    monkeypatch.setattr(torch, "bmm", lambda *a: calls.append(1) or bmm(*a))
    outs, grads = {}, {}
    for fast in (False, True):
        g.set_fast(fast)
        assert all(m.fast == fast for m in g.modules() if hasattr(m, "fast"))
        for size in g.sizes:
            n = len(calls)
            with torch.no_grad():
                outs[fast, size] = g.synthesis(wp, size=size)
            assert (len(calls) > n) == fast  # the folded pointwise products run only on the fast path
            w = wp.clone().requires_grad_(True)
            img = g.synthesis(w, size=size)
            (img * torch.linspace(-1, 1, img.numel()).reshape(img.shape)).sum().backward()
            grads[fast, size] = w.grad
            torch.testing.assert_close(img.detach(), outs[fast, size], atol=1e-5, rtol=0)
    for size in g.sizes:
        assert outs[False, size].abs().max() > 0.05
        torch.testing.assert_close(outs[True, size], outs[False, size], atol=1e-5, rtol=0)
        torch.testing.assert_close(grads[True, size], grads[False, size], atol=1e-6, rtol=1e-5)
    g.add_exit(8, 0)  # a head added later follows the chosen path
    assert g.exits["8"].fast is True


def test_variant_names_of_the_cli_match_the_bench():
    from editable_deepsc.cli.bench_generator import VARIANT_NAMES
    from editable_deepsc.eval.generator_bench import VARIANTS

    assert tuple(VARIANTS) == VARIANT_NAMES


@torch.no_grad()
def test_every_cpu_variant_computes_the_same_image_on_the_tiny_model():
    from editable_deepsc.eval import generator_bench as gb

    g = tiny(exits={"16": 0, "32": 0})
    wp = g.broadcast(g.mapping(torch.randn(2, 16, generator=torch.Generator().manual_seed(3))))
    ref = {s: g.synthesis(wp, size=s) for s in g.sizes}
    tol = {"bf16": 0.1}  # bfloat16 keeps 8 bits of mantissa
    for name in gb.VARIANTS:
        if name == "compile":  # needs a C++ compiler and minutes; timed by the bench only
            continue
        fn = gb.variant_synthesis(g, name)
        for s in g.sizes:
            torch.testing.assert_close(fn(wp, s).float(), ref[s], atol=tol.get(name, 1e-5), rtol=0, msg=f"{name} at {s}")
    assert g.fast is True and all(m.depthwise for m in g.layers.modules() if hasattr(m, "weight_dw"))  # g unchanged
    fused = gb.fuse_depthwise(g)
    assert not any(getattr(m, "depthwise", False) for m in fused.modules())
    with pytest.raises(Exception, match="unknown variant"):
        gb.variant_synthesis(g, "fp8")


def test_bench_cli_writes_the_documented_json(monkeypatch, tmp_path, capsys):
    import json

    from editable_deepsc.cli import main
    from editable_deepsc.generator import ffhq

    monkeypatch.setattr(ffhq, "load_ffhq", lambda exits=True: tiny(exits={"16": 0, "32": 0}))
    out = tmp_path / "bench.json"
    argv = ["bench", "generator", "--threads", "1", "--quick", "--no-openvino", "--variants", "fast,fused-dwpw",
            "--json-out", str(out)]  # fmt: skip
    assert main(argv) == 0
    res = json.loads(out.read_text())
    assert res["command"] == ("edsc bench generator --threads 1 --quick --full-backward-max-batch 2 --no-openvino "
                              f"--variants fast,fused-dwpw --variant-max-seconds 60 --seed 0 --json-out {out}")
    assert res["quick"] is True and res["batches"] == [1] and res["reps"] == 1 and res["openvino"] is None
    assert {"rows", "variants", "sizes", "torch", "threads", "fast_path", "load_average"} <= set(res)
    stages = {(r["stage"], r["mode"]) for r in res["rows"]}
    assert stages == {("mapping", "forward")} | {(f"synthesis-{s}", m) for s in (16, 32, 64)
                                                for m in ("forward", "forward+backward")}  # fmt: skip
    assert all(r["s_per_image"] > 0 and r["threads"] == 1 and r["batch"] == 1 for r in res["rows"])
    var = res["variants"]
    assert {r["variant"] for r in var["rows"]} == {"fp32", "fast", "fused-dwpw"} and len(var["rows"]) == 3 * 3 * 2
    assert all(r["ratio_vs_fp32"] == 1.0 for r in var["rows"] if r["variant"] == "fp32")
    for n in ("fast", "fused-dwpw"):
        p = var["parity"][n]
        assert p["size"] == 64 and p["max_abs"] < 1e-5 and p["within_budget"] is True
    table = capsys.readouterr().out
    assert "| torch | 1 | 1 | synthesis-64 | forward+backward |" in table and "| fused-dwpw |" in table
    # bad input: one error line, nothing written
    out.unlink()
    for args, msg in [(["--variants", "fp8"], "unknown fp8"), (["--threads", "0"], "--threads: expected positive"),
                      (["--reps", "0"], "--reps")]:  # fmt: skip
        assert main(["bench", "generator", "--no-openvino", *args, "--json-out", str(out)]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith("error: ") and msg in err[0], err
    assert not out.exists()


def _held_out(psnr256: float, oracle256: float, speedup: float) -> dict:
    row = lambda p, o, s: {"psnr_db": p, "psnr_min_db": p - 5, "psnr_oracle_colour_db": o,  # noqa: E731
                           "psnr_oracle_colour_min_db": o - 5, "lpips": 0.3, "lpips_kind": "proxy", "id_distance": 0.2,
                           "id_distance_unrelated": 0.5, "seconds": 0.2, "speedup": s}  # fmt: skip
    return {"command": "edsc train exits --n 144 --steps 0 --convs 0 --eval-n 200 --no-export --threads 2", "n": 200,
            "seeds": [1000000, 1000199], "threads": 2, "full_seconds": 1.5,
            "exits": {"128": row(26.0, 28.5, 6.0), "256": row(psnr256, oracle256, speedup)}}  # fmt: skip


def test_card_verdict_states_measured_and_oracle_figures_and_whether_targets_are_met():
    from editable_deepsc.eval.ffhq_card import verdict

    v = verdict({"held_out": _held_out(25.3, 29.1, 5.2)})
    assert "200 held-out latents" in v and "25.3 dB" in v and "**not met**" in v and "5.2x" in v
    assert "29.1 dB at 256" in v and "28.5 dB at 128" in v and "3.8 dB" in v and "not a result" in v
    assert "even with this oracle the 256 exit stays below the 30 dB target" in v
    v = verdict({"held_out": _held_out(31.0, 33.0, 3.0)})
    assert "target is met" in v and "(>= 4x: **not met**)" in v and "stays below" not in v


def test_card_takes_the_bench_and_held_out_files_into_ffhq_json_and_models_md(monkeypatch, tmp_path):
    import json

    from editable_deepsc.cli import main
    from editable_deepsc.eval import ffhq_card
    from editable_deepsc.generator import ffhq

    monkeypatch.setattr(ffhq, "load_ffhq", lambda exits=True: tiny(exits={"16": 0, "32": 0}))
    docs = tmp_path / "docs"
    docs.mkdir()
    assert main(["bench", "generator", "--threads", "1", "--quick", "--no-openvino", "--variants", "fast",
                 "--json-out", str(docs / "ffhq_bench.json")]) == 0  # fmt: skip
    (docs / "ffhq_exits_eval.json").write_text(json.dumps(_held_out(25.3, 29.1, 5.2)))
    exits = {"train": {"command": "edsc train exits --n 144", "n": 144, "steps": 0, "rows": 2048, "seconds": 60.0},
             "held_out": {"n": 64}, "eval_command": "old", "verdict": "hand-written"}  # fmt: skip
    parity = {"seed": 0, "psi_1.0": {"max_abs": 4e-4, "mean_abs": 2e-6}, "psi_0.7": {"max_abs": 3e-4, "mean_abs": 1e-6}}
    (docs / "ffhq.json").write_text(json.dumps({"parity": parity, "exits": exits, "bench": {"note": "x", "table": "y"}}))
    (docs / "models.md").write_text("# Models\n")
    ffhq_card.update(docs)
    data = json.loads((docs / "ffhq.json").read_text())
    assert data["bench"]["command"].startswith("edsc bench generator --threads 1 --quick")
    assert data["exits"]["held_out"]["n"] == 200 and "verdict" not in data["exits"] and "eval_command" not in data["exits"]
    md = (docs / "models.md").read_text()
    assert md.startswith("# Models\n") and ffhq_card.BEGIN in md and ffhq_card.END in md
    assert "`edsc train exits --n 144 --steps 0 --convs 0 --eval-n 200 --no-export --threads 2`" in md
    assert "| 256x256 | 25.30 / 20.30 | 29.10 / 24.10 |" in md and "**not met**" in md
    assert f"`{data['bench']['command']}`" in md and "| torch | 1 | 1 | synthesis-64 | forward |" in md
    assert "| fast | synthesis-64 | forward |" in md and "--quick`: batch 1" in md
    before = md
    ffhq_card.update(docs)  # idempotent
    assert (docs / "models.md").read_text() == before


def test_train_exits_eval_out_needs_held_out_latents(tmp_path, capsys):
    from editable_deepsc.cli import main

    out = tmp_path / "held.json"
    assert main(["train", "exits", "--eval-n", "0", "--eval-out", str(out), "--workdir", str(tmp_path / "w")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["error: --eval-out needs --eval-n >= 1"] and not out.exists() and not (tmp_path / "w").exists()


def test_a_variant_slower_than_the_limit_is_timed_once_and_not_at_larger_sizes():
    from editable_deepsc.eval.generator_bench import bench_variants

    g = tiny(exits={"16": 0, "32": 0})
    var = bench_variants(g, torch.randn(1, 16), ["fast"], reps=2, max_seconds=1e-9, log=lambda m: None)
    fast = [r for r in var["rows"] if r["variant"] == "fast"]
    assert [(r["stage"], r["mode"]) for r in fast] == [("synthesis-16", "forward")]
    assert {r["stage"] for r in var["rows"] if r["variant"] == "fp32"} == {"synthesis-16", "synthesis-32", "synthesis-64"}
    assert "timed once there" in var["skipped"]["fast"] and var["parity"]["fast"]["size"] == 16
