"""``edsc eval`` on a weight-free toy system: records, resume, shards, Ray path, determinism, headline, CLI errors."""

from __future__ import annotations

import json
import sys
import types

import pytest
import torch

from editable_deepsc.baselines.deepjscc import DeepJSCC, DeepJSCCConfig, save_model
from editable_deepsc.errors import BadInput
from editable_deepsc.eval.compare_config import EvalConfig
from editable_deepsc.eval.compare_report import headline, smallest_cbr
from editable_deepsc.eval.compare_records import read_records
from editable_deepsc.eval.compare_run import run_eval, shard_samples

pytestmark = pytest.mark.usefixtures("one_torch_thread")

TOY = "eval_toys:toy_system"
METRIC_KEYS = ("psnr", "ssim", "ms_ssim", "lpips", "identity", "met", "success", "ref_success", "decode_failed",
               "cbr", "k", "seconds", "lpips_name", "lpips_proxy", "fid_name", "fid_proxy")


@pytest.fixture(scope="module")
def jscc_path(tmp_path_factory):
    torch.manual_seed(0)
    p = tmp_path_factory.mktemp("jscc") / "toy-deepjscc.safetensors"
    save_model(DeepJSCC(DeepJSCCConfig(c=8, width=8)), p)
    return str(p)


def _cfg(n=2, **kw):
    base = dict(methods=("editable-deepsc", "deepjscc"), snrs=(0.0, 6.0), n=n, cbrs=(1 / 12,), curve_cbr=1 / 12,
                grid_samples=1, seed=5, proxy_input_size=64)
    base.update(kw)
    return EvalConfig(**base)


def _numbers(records):
    drop = {"seconds"}
    return sorted((r["sample_id"], r["condition"], json.dumps({k: v for k, v in r.items() if k not in drop},
                                                              sort_keys=True)) for r in records)


def _run(cfg, out, jscc_path, **kw):
    return run_eval(cfg, out, system_spec=TOY, method_options={"deepjscc": {"model": jscc_path}}, progress=False, **kw)


@pytest.fixture(scope="module")
def first_run(tmp_path_factory, jscc_path):
    out = tmp_path_factory.mktemp("eval") / "a"
    summary = _run(_cfg(), out, jscc_path)
    return out, summary


def test_records_carry_metrics_and_labels(first_run):
    out, summary = first_run
    recs = [json.loads(x) for x in (out / "records.jsonl").read_text().splitlines()]
    assert len(recs) == 2 * 4 == summary["records"]  # 2 samples x (2 methods x 2 SNRs)
    for r in recs:
        assert all(k in r for k in METRIC_KEYS)
        assert r["lpips_proxy"] is True and r["fid_proxy"] is True
        assert r["lpips_name"] == "lpips-proxy(effnet-lite0)@64px" and r["fid_name"] == "fid-proxy(effnet-lite0)@64px"
        assert 0 <= r["lpips"] and -1 <= r["ssim"] <= 1 and r["ms_ssim"] is not None
        assert r["met"] in (True, False) and r["success"] in (True, False)
        assert r["identity"] is None  # the toy has no face nets
    sem = [r for r in recs if r["method"] == "editable-deepsc"]
    assert {r["k"] for r in sem} == {12} and sem[0]["cbr"] == pytest.approx(12 / (3 * 48 * 48))
    dj = [r for r in recs if r["method"] == "deepjscc"]
    assert {r["k"] for r in dj} == {8 * 12 * 12 // 2} and dj[0]["cbr"] == pytest.approx(1 / 12)
    # the semantic link degrades less at 6 dB than at 0 dB
    ps = {s: sum(r["psnr"] for r in sem if r["snr_db"] == s) for s in (0.0, 6.0)}
    assert ps[6.0] > ps[0.0]
    cfg = json.loads((out / "config.json").read_text())
    assert cfg["config"]["seed"] == 5 and cfg["system_spec"] == TOY
    md = (out / "summary.md").read_text()
    assert "proxy" in md and "Headline at 6 dB" in md and "12.5%" in md
    for name in ("records.csv", "summary.csv", "summary.json", "metrics_vs_snr.png", "quality_vs_cbr.png", "grid.png"):
        assert (out / name).stat().st_size > 0
    rows = json.loads((out / "summary.json").read_text())["rows"]
    assert all(r["fid"] is not None and r["fid"] >= 0 for r in rows)


def test_resume_skips_done_samples_and_same_seed_same_numbers(first_run, tmp_path, jscc_path):
    out, _ = first_run
    ref = _numbers(read_records(out))
    # a copy of the run "killed" during sample 2: its records are partly written, the last line torn
    b = tmp_path / "b"
    (b / "shards").mkdir(parents=True)
    (b / "features").mkdir()
    for f in (out / "features").glob("*.npy"):
        if f.name != "sample-1.npy":
            (b / "features" / f.name).write_bytes(f.read_bytes())
    (b / "config.json").write_text((out / "config.json").read_text())
    lines = [ln for f in sorted((out / "shards").glob("*.jsonl")) for ln in f.read_text().splitlines()]
    keep = [ln for ln in lines if json.loads(ln)["sample_id"] != 1]
    part = [ln for ln in lines if json.loads(ln)["sample_id"] == 1][:2]
    (b / "shards" / "shard-0-old.jsonl").write_text("\n".join(keep + part) + "\n" + part[0][:20])
    s = _run(_cfg(), b, jscc_path)
    assert s["samples_done"] == 1 and s["records"] == 8
    merged = [json.loads(x) for x in (b / "records.jsonl").read_text().splitlines()]
    _assert_same(_numbers(merged), ref)
    assert _run(_cfg(), b, jscc_path)["samples_done"] == 0  # nothing left to do
    with pytest.raises(BadInput):
        _run(_cfg(seed=6), b, jscc_path)  # another config in the same directory
    small = _run(_cfg(n=1), b, jscc_path)  # n may change: a prefix of the samples is reported
    assert small["samples_done"] == 0 and small["records"] == 4
    meta = json.loads((b / "config.json").read_text())
    name = next(iter(meta["zoo_sha256"]))
    meta["zoo_sha256"][name] = "0" * 64  # a model was retrained since the run started
    (b / "config.json").write_text(json.dumps(meta))
    with pytest.raises(BadInput, match="models changed"):
        _run(_cfg(), b, jscc_path)


@pytest.mark.slow
def test_local_workers_match_one_process(first_run, tmp_path, jscc_path):
    out, _ = first_run
    s = _run(_cfg(), tmp_path / "w2", jscc_path, workers=2)
    assert s["samples_done"] == 2
    assert len(list((tmp_path / "w2" / "shards").glob("shard-*.jsonl"))) == 2
    _assert_same(_numbers(read_records(tmp_path / "w2")), _numbers(read_records(out)))


def _assert_same(a, b):
    """Same records, numbers equal up to float32 rounding (BLAS thread counts differ between processes)."""
    assert [x[:2] for x in a] == [y[:2] for y in b]
    for x, y in zip(a, b):
        _assert_close(json.loads(x[2]), json.loads(y[2]))


def _assert_close(a, b):
    """Equal, except floats may differ by float32 rounding."""
    if isinstance(a, float) or isinstance(b, float):
        assert a == pytest.approx(b, rel=1e-5, abs=1e-6)
    elif isinstance(a, dict):
        assert a.keys() == b.keys()
        for k in a:
            _assert_close(a[k], b[k])
    elif isinstance(a, list):
        assert len(a) == len(b)
        for u, v in zip(a, b):
            _assert_close(u, v)
    else:
        assert a == b


def test_sharding_covers_every_sample_once():
    ids = list(range(17))
    for k in (1, 2, 3, 5, 17, 40):
        shards = shard_samples(ids, k)
        flat = [i for s in shards for i in s]
        assert sorted(flat) == ids and len(flat) == len(set(flat))
        assert max(map(len, shards)) - min(map(len, shards)) <= 1
    with pytest.raises(BadInput):
        shard_samples(ids, 0)


def test_ray_engine_runs_the_same_shards(first_run, tmp_path, jscc_path, monkeypatch):
    out, _ = first_run
    calls = []
    fake = types.ModuleType("ray")
    fake.is_initialized = lambda: True

    def remote(fn):
        class _Task:
            @staticmethod
            def remote(**kw):
                calls.append(kw["sample_ids"])
                return fn(**kw)
        return _Task

    fake.remote = remote
    fake.get = lambda xs: list(xs)
    monkeypatch.setitem(sys.modules, "ray", fake)
    s = _run(_cfg(), tmp_path / "ray", jscc_path, workers=2, engine="ray")
    assert sorted(calls) == [[0], [1]] and s["samples_done"] == 2
    _assert_same(_numbers(read_records(tmp_path / "ray")), _numbers(read_records(out)))
    monkeypatch.setitem(sys.modules, "ray", None)  # not installed
    with pytest.raises(BadInput, match="optional extra"):
        _run(_cfg(n=3), tmp_path / "noray", jscc_path, workers=2, engine="ray")
    assert not (tmp_path / "noray").exists()  # nothing written


def test_low_rank_frechet_distance_matches_full():
    import numpy as np

    from editable_deepsc.eval.compare_report import frechet_distance
    from editable_deepsc.metrics.fid import fid_from_features

    rng = np.random.default_rng(0)
    fa, fb = rng.normal(size=(7, 40)), rng.normal(0.3, 1.5, size=(9, 40))
    assert frechet_distance(fa, fb) == pytest.approx(fid_from_features(fa, fb), rel=1e-6)
    assert frechet_distance(fa, fa) == pytest.approx(0.0, abs=1e-6)


def test_smallest_cbr_and_headline_on_synthetic_rows():
    grid = [(1 / 48, 0.40), (1 / 24, 0.30), (1 / 12, 0.20), (1 / 6, 0.10)]
    c, b = smallest_cbr(grid, 0.25)  # halfway between 1/24 and 1/12 in log CBR
    assert b == "=" and c == pytest.approx((1 / 24 * 1 / 12) ** 0.5)
    assert smallest_cbr(grid, 0.5) == (pytest.approx(1 / 48), "<=")
    assert smallest_cbr(grid, 0.05) == (pytest.approx(1 / 6), ">")
    # non-monotone: 1/24 meets by chance but 1/12 does not -> only 1/6 counts
    assert smallest_cbr([(1 / 24, 0.2), (1 / 12, 0.3), (1 / 6, 0.1)], 0.25)[0] > 1 / 12
    # higher-is-better metric
    assert smallest_cbr([(0.1, 0.5), (0.2, 0.9)], 0.7, lower_is_better=False) == (pytest.approx(0.2 ** 0.5 * 0.1 ** 0.5), "=")

    def row(m, cbr, lp, k=None):
        return {"method": m, "snr_db": 6.0, "cbr": cbr, "k": k, "lpips": lp, "ssim": 1 - lp}

    rows = [row("editable-deepsc", 1 / 96, 0.25, 128), row("editable-deepsc", 1 / 48, 0.1, 250),
            *[row("deepjscc", c, q) for c, q in grid], *[row("jpeg-ldpc", c, q + 0.3) for c, q in grid]]
    h = headline(rows, 6.0, default_k=128)
    by = {b["method"]: b for b in h["baselines"]}
    assert h["target"] == 0.25 and h["semantic_cbr"] == pytest.approx(1 / 96)
    assert by["deepjscc"]["ratio"] == pytest.approx((1 / 96) / (1 / 24 * 1 / 12) ** 0.5)
    assert by["deepjscc"]["paper_ratio"] == 0.125 and by["jpeg-ldpc"]["paper_ratio"] == 0.214
    assert by["jpeg-ldpc"]["bound"] == ">" and by["jpeg-ldpc"]["ratio_bound"] == "<"
    assert headline(rows, 6.0, default_k=128, metric="ssim")["target"] == pytest.approx(0.75)


@pytest.mark.parametrize("args", [
    ["--methods", "editable-deepsc,foo"],
    ["--snr", "0,99"],
    ["--snr", "x"],
    ["--cbr", "1/0"],
    ["--n", "0"],
    ["--channel", "optical"],
])
def test_cli_bad_input_exit_2_nothing_written(tmp_path, args):
    from editable_deepsc.cli import main

    out = tmp_path / "res"
    assert main(["eval", *args, "--out", str(out)]) == 2
    assert not out.exists()
