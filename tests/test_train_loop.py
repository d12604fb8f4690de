"""train.loop: resume counters/modules/optimisers, checkpoint + JSONL log line, cosine decay."""

from __future__ import annotations

import io
import json
import math

import pytest
import torch

from editable_deepsc.train.loop import ResumableRun, cosine_decay


def _model_and_opt(seed: int):
    torch.manual_seed(seed)
    m = torch.nn.Linear(3, 2)
    return m, torch.optim.Adam(m.parameters(), lr=0.1)


def test_fresh_run_then_resume(tmp_path):
    ckpt = tmp_path / "checkpoint.safetensors"
    m, opt = _model_and_opt(0)
    run = ResumableRun(ckpt, {"m": m}, {"m": opt})
    assert (run.start, run.seconds) == (0, 0.0) and not ckpt.exists()
    bar = run.steps(3, 5, "test", progress=False)
    assert list(bar) == [0, 1, 2]
    m(torch.ones(1, 3)).sum().backward()
    opt.step()
    log = io.StringIO()
    elapsed = run.save(3, log, {"loss": 0.5})
    line = json.loads(log.getvalue())
    assert line == {"step": 3, "seconds": round(elapsed, 1), "loss": 0.5} and elapsed >= 0

    m2, opt2 = _model_and_opt(1)
    run2 = ResumableRun(ckpt, {"m": m2}, {"m": opt2})
    assert run2.start == 3 and run2.seconds == pytest.approx(elapsed)
    assert torch.equal(m2.weight, m.weight)
    assert torch.equal(opt2.state_dict()["state"][0]["exp_avg"], opt.state_dict()["state"][0]["exp_avg"])
    assert list(run2.steps(5, 5, "test", progress=False)) == [3, 4]
    assert run2.elapsed() >= run2.seconds


def test_cosine_decay_endpoints_and_midpoint():
    assert cosine_decay(0.0, 1.0, 0.1) == 1.0
    assert cosine_decay(1.0, 1.0, 0.1) == pytest.approx(0.1)
    assert cosine_decay(0.5, 2e-3, 0.0) == pytest.approx(1e-3)
    assert cosine_decay(0.25, 1.0, 0.0) == pytest.approx(0.5 * (1 + math.cos(math.pi / 4)))
