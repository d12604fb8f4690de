"""The built-in editor reproduces latents recorded before the editing/ restructuring (issue 13), bit for bit.

``tests/data/edit_golden.safetensors`` was written by the editor of commit 26ee89d (one
``Editor.edit`` of 771 lines) on the first 3 held-out test faces: every preset (paper, fast,
instant) for three instructions, instant with ``verify``, fast through an AWGN channel (JECC,
seeded), fast confined to layers 0-3 and fast/instant confined to a random 40-d subspace, with one
torch thread (CPU results depend on the thread count: the tests run with one).
"""

from __future__ import annotations

import pytest
import torch

from editable_deepsc.zoo import registry

GOLDEN = "tests/data/edit_golden.safetensors"

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not (registry.CARDS_DIR / "edsc-faces64-critic.json").is_file(), reason="built-in models"),
]


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def golden() -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    return load_file(GOLDEN)


@pytest.fixture(scope="module")
def base():
    from editable_deepsc.editing.builtin import build_editor

    return build_editor("paper")


INSTRUCTIONS = {"smile": (("happy", "more"),), "yaw_smile": (("happy", "more"), ("yaw", "more")),
                "older": (("age", "more"),)}  # fmt: skip


def _targets(key: str):
    from editable_deepsc.text.targets import EditTarget

    return [EditTarget(a, d) for a, d in INSTRUCTIONS[key]]


def _editor(base, preset: str, **overrides):
    from editable_deepsc.editing.builtin import build_editor

    return build_editor(preset, generator=base.generator, guidance=base.guidance, **overrides)


def test_faces_are_the_recorded_ones(golden, base):
    from editable_deepsc.eval.edit_bench import test_latents

    assert torch.equal(test_latents(base.generator, 3), golden["w0"])


@pytest.mark.parametrize("preset", ["paper", "fast", "instant"])
def test_presets_reproduce_recorded_latents(golden, base, preset):
    ed = _editor(base, preset)
    for key in INSTRUCTIONS:
        r = ed.edit(golden["w0"], _targets(key))
        assert torch.equal(r.w_plus, golden[f"{preset}.{key}"]), key
        assert torch.equal(r.steps, golden[f"{preset}.{key}.steps"]) and torch.equal(r.met, golden[f"{preset}.{key}.met"])


def test_verify_jecc_layers_and_subspace_reproduce_recorded_latents(golden, base):
    from editable_deepsc.channel import make_channel
    from editable_deepsc.channel.codec_zoo import load_codec

    w0 = golden["w0"]
    r = _editor(base, "instant", verify=True).edit(w0, _targets("smile"))
    assert torch.equal(r.w_plus, golden["instant_verify.smile"])
    through = (load_codec("edsc-codec-faces64-k64"), make_channel("awgn"), 5.0)
    r = _editor(base, "fast").edit(w0, _targets("smile"), through_channel=through, rng=torch.Generator().manual_seed(5))
    assert torch.equal(r.w_plus, golden["fast_jecc.smile"])
    r = _editor(base, "fast", layers=(0, 1, 2, 3)).edit(w0, _targets("smile"))
    assert torch.equal(r.w_plus, golden["fast_layers.smile"])
    q, _ = torch.linalg.qr(torch.randn(w0.shape[1] * w0.shape[2], 40, generator=torch.Generator().manual_seed(1)))
    for preset in ("fast", "instant"):
        r = _editor(base, preset).edit(w0, _targets("smile"), subspace=q)
        assert torch.equal(r.w_plus, golden[f"{preset}_subspace.smile"]), preset
