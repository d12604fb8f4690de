"""Pure-torch CLIP, its BPE tokenizer and ClipGuidance, on a tiny random CLIP built and saved here."""

from __future__ import annotations

import collections
import gzip
import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from editable_deepsc.clip import ClipConfig, ClipModel, ClipTextEncoder, ClipTokenizer, load_clip
from editable_deepsc.clip.tokenizer import _PATTERN, byte_symbols
from editable_deepsc.errors import BadInput, CheckpointError
from editable_deepsc.guidance.base import Guidance
from editable_deepsc.guidance.clip import CLIP_PROMPTS, ClipGuidance, prompt_for
from editable_deepsc.text.encoder import TextEncoder
from editable_deepsc.text.targets import EditTarget, ParsedInstruction

CORPUS = ("a photo of a smiling face. a photo of a sad face with an open mouth; the old man looked up at the sky "
          "and the young woman turned her head to the left. a frightened, disgusted or surprised person; "
          "20 years older, café, naïve, don't smile!")


def learn_merges(corpus: str, n: int) -> list[tuple[str, str]]:
    """A minimal BPE learner (most frequent pair first), to make a small vocabulary in CLIP's format."""
    table = byte_symbols()
    words: collections.Counter = collections.Counter()
    for piece in _PATTERN.findall(corpus.lower()):
        s = "".join(table[b] for b in piece.encode())
        words[tuple(s[:-1]) + (s[-1] + "</w>",)] += 1
    merges = []
    for _ in range(n):
        pairs: collections.Counter = collections.Counter()
        for w, c in words.items():
            for pair in zip(w, w[1:]):
                pairs[pair] += c
        if not pairs:
            break
        (a, b), _ = pairs.most_common(1)[0]
        merges.append((a, b))
        new: collections.Counter = collections.Counter()
        for w, c in words.items():
            out, i = [], 0
            while i < len(w):
                if i < len(w) - 1 and (w[i], w[i + 1]) == (a, b):
                    out.append(a + b)
                    i += 2
                else:
                    out.append(w[i])
                    i += 1
            new[tuple(out)] += c
        words = new
    return merges


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict[str, Path]:
    """A gzip merges file in CLIP's format, a tiny random CLIP saved as safetensors and as a .pt state dict."""
    d = tmp_path_factory.mktemp("clip")
    merges = learn_merges(CORPUS, 150)
    with gzip.open(d / "bpe.txt.gz", "wt", encoding="utf-8") as f:
        f.write("bpe_simple_vocab_16e6.txt#version: 0.2\n" + "\n".join(f"{a} {b}" for a, b in merges) + "\n")
    tok = ClipTokenizer(d / "bpe.txt.gz", context_length=16)
    cfg = ClipConfig(embed_dim=32, image_resolution=32, vision_patch_size=8, vision_width=64, vision_layers=2,
                     vision_heads=2, context_length=16, vocab_size=tok.vocab_size, text_width=64, text_layers=2,
                     text_heads=2, quick_gelu=True)
    model = ClipModel.random(cfg, seed=3)
    sd = {k: v.contiguous() for k, v in model.state_dict().items()}
    save_file(sd, str(d / "tiny.safetensors"))
    torch.save({"state_dict": {"module." + k: v for k, v in sd.items()}}, d / "tiny.pt")
    return {"dir": d, "vocab": d / "bpe.txt.gz", "st": d / "tiny.safetensors", "pt": d / "tiny.pt",
            "model": model, "merges": merges}


# --------------------------------------------------------------------------- tokenizer
def test_tokenizer_format_and_roundtrip(files):
    tok = ClipTokenizer(files["vocab"], context_length=16)
    assert tok.vocab_size == 512 + len(files["merges"]) + 2
    assert tok.eot_id == tok.vocab_size - 1 and tok.sot_id == tok.vocab_size - 2
    ids = tok.encode("A photo of a SMILING face")
    assert len(ids) == 6  # every word of the corpus is one merged token
    assert tok.decode(ids) == "a photo of a smiling face"
    assert tok.decode(tok.encode("café, naïve & zebra")) == "café , naïve & zebra"
    assert tok.encode("&amp;") == tok.encode("&")  # html entities unescaped like the original
    t = tok.tokenize(["a smiling face", "the old man " * 20])
    assert t.shape == (2, 16) and t.dtype == torch.long
    assert t[0, 0] == tok.sot_id and t[0, 4] == tok.eot_id and (t[0, 5:] == 0).all()
    assert t[1, -1] == tok.eot_id  # truncated, end-of-text kept
    assert t.argmax(dim=1).tolist() == [4, 15]


def test_tokenizer_matches_transformers_clip_tokenizer(files, tmp_path):
    transformers = pytest.importorskip("transformers")
    tok = ClipTokenizer(files["vocab"])
    (tmp_path / "vocab.json").write_text(json.dumps(tok.encoder))
    (tmp_path / "merges.txt").write_text("#version: 0.2\n" + "\n".join(f"{a} {b}" for a, b in files["merges"]))
    ref = transformers.CLIPTokenizer(str(tmp_path / "vocab.json"), str(tmp_path / "merges.txt"))
    for text in ["a photo of a smiling face", "The OLD man looked up!! at 20:30", "café naïve don't",
                 "zebra quux", "  multiple   spaces\tand\nlines "]:
        assert tok.encode(text) == ref(text, add_special_tokens=False)["input_ids"], text


def test_bad_vocab_file(tmp_path):
    with pytest.raises(CheckpointError, match="cannot read"):
        ClipTokenizer(tmp_path / "missing.txt.gz")
    (tmp_path / "bad.txt").write_text("#version\na b c\n")
    with pytest.raises(CheckpointError, match="two symbols"):
        ClipTokenizer(tmp_path / "bad.txt")


# --------------------------------------------------------------------------- model
def test_config_inferred_and_reload_is_identical(files):
    model = files["model"]
    tok = ClipTokenizer(files["vocab"], context_length=16)
    images = torch.rand(2, 3, 48, 48, generator=torch.Generator().manual_seed(0)) * 2 - 1
    tokens = tok.tokenize(["a smiling face", "an old man"])
    with torch.no_grad():
        want_i, want_t = model.encode_image(images), model.encode_text(tokens)
    for path in (files["st"], files["pt"]):
        loaded = load_clip(path, head_width=32)
        assert loaded.cfg == model.cfg
        with torch.no_grad():
            assert torch.equal(loaded.encode_image(images), want_i)
            assert torch.equal(loaded.encode_text(tokens), want_t)
    assert want_i.shape == (2, 32) and torch.allclose(want_i.norm(dim=1), torch.ones(2))
    # default head width 64 gives 1 head: same weights, different (valid) model
    assert load_clip(files["st"]).cfg.vision_heads == 1


def test_text_is_causal(files):
    model, tok = files["model"], ClipTokenizer(files["vocab"], context_length=16)
    a = tok.tokenize(["a smiling face"])
    b = a.clone()
    b[0, 5:] = 7  # tokens after end-of-text must not change the feature
    with torch.no_grad():
        assert torch.allclose(model.encode_text(a), model.encode_text(b), atol=1e-6)


def test_bad_checkpoints(files, tmp_path):
    sd = load_clip(files["st"]).state_dict()
    with pytest.raises(CheckpointError, match="not found"):
        load_clip(tmp_path / "none.safetensors")
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="cannot read"):
        load_clip(tmp_path / "junk.pt")
    save_file({"visual.layer1.0.conv1.weight": torch.zeros(1)}, str(tmp_path / "rn.safetensors"))
    with pytest.raises(CheckpointError, match="ResNet"):
        load_clip(tmp_path / "rn.safetensors")
    partial = {k: v.contiguous() for k, v in sd.items() if "ln_final" not in k}
    save_file(partial, str(tmp_path / "partial.safetensors"))
    with pytest.raises(CheckpointError, match="ln_final"):
        load_clip(tmp_path / "partial.safetensors")
    extra = dict({k: v.contiguous() for k, v in sd.items()}, **{"visual.ls_1": torch.zeros(3)})
    save_file(extra, str(tmp_path / "extra.safetensors"))
    with pytest.raises(CheckpointError, match="unexpected"):
        load_clip(tmp_path / "extra.safetensors")


def test_clip_text_encoder_fits_protocol(files):
    model = load_clip(files["st"], head_width=32)
    enc = ClipTextEncoder(model, ClipTokenizer(files["vocab"]))
    assert isinstance(enc, TextEncoder) and enc.dim == 32
    e = enc.encode(["a smiling face", "a sad face", "an old man"], batch_size=2)
    assert e.shape == (3, 32) and torch.allclose(e.norm(dim=1), torch.ones(3), atol=1e-5)


# --------------------------------------------------------------------------- guidance
def test_prompts_cover_every_attribute_and_less_is_contrastive():
    from editable_deepsc.text.targets import ATTRIBUTES

    assert set(CLIP_PROMPTS) == set(ATTRIBUTES)
    more, _ = prompt_for(EditTarget("happy", "more"))
    less, away = prompt_for(EditTarget("happy", "less"))
    assert more == away and less != more and "not" not in less.split()
    assert "60 year old" in prompt_for(EditTarget("age", "set", amount=60.0))[0]


@pytest.mark.parametrize("mode", ["global", "directional"])
def test_gradient_steps_on_pixels_lower_the_loss(files, mode):
    g = ClipGuidance.from_files(files["st"], files["vocab"], mode=mode)
    assert isinstance(g, Guidance)
    gen = torch.Generator().manual_seed(1)
    reference = torch.rand(2, 3, 64, 64, generator=gen) * 1.6 - 0.8
    pixels = reference.clone().requires_grad_(True)
    target = ParsedInstruction("smile and look older", (EditTarget("happy", "more"), EditTarget("age", "more")))
    opt = torch.optim.Adam([pixels], lr=0.05)
    first = g.loss(pixels, target, reference).detach()
    assert first.shape == (2,)
    score0 = g.score(reference, target).detach()
    for _ in range(20):
        opt.zero_grad()
        g.loss(pixels, target, reference).sum().backward()
        opt.step()
    last = g.loss(pixels, target, reference).detach()
    print(f"\n{mode}: loss {first.tolist()} -> {last.tolist()}")
    assert (last < first - 0.05).all()
    if mode == "global":
        assert (g.score(pixels.detach(), target) > score0).all()
        assert (g.score(pixels.detach(), target, reference) > 0).all()


def test_loss_less_differs_and_bad_targets(files):
    g = ClipGuidance.from_files(files["st"], files["vocab"])
    x = torch.zeros(1, 3, 32, 32)
    more = g.loss(x, EditTarget("happy", "more"))
    less = g.loss(x, EditTarget("happy", "less"))
    half = g.loss(x, EditTarget("happy", "more", strength=0.5))
    assert not torch.allclose(more, less)
    assert torch.allclose(half, 0.5 * more)
    assert torch.allclose(g.loss(x, "a photo of a smiling face"), more)
    with pytest.raises(BadInput):
        g.loss(x, ParsedInstruction("more", ()))
    with pytest.raises(BadInput):
        ClipGuidance(g.model, g.tokenizer, mode="sideways")
    short = ClipTokenizer(files["vocab"], max_merges=10)
    with pytest.raises(CheckpointError, match="wrong vocabulary"):
        ClipGuidance(g.model, short)


@pytest.mark.slow
def test_editor_runs_clip_guidance_on_a_full_size_stylegan2(files):
    """The generic editor path at full size: a config-f StyleGAN2 at 256 px (14 × 512 W+, random weights —
    no public weights can be fetched here) driven by ClipGuidance (tiny random CLIP)."""
    from editable_deepsc.editing.config import EditConfig
    from editable_deepsc.editing.editor import Editor
    from editable_deepsc.generator.stylegan2 import StyleGAN2Generator

    torch.manual_seed(0)
    gen = StyleGAN2Generator(256).eval().requires_grad_(False)
    assert (gen.num_ws, gen.w_dim, gen.resolution) == (14, 512, 256)
    guidance = ClipGuidance.from_files(files["st"], files["vocab"], mode="directional")
    cfg = EditConfig(steps=4, lr=0.05, schedule="constant", lambda_keep=0.0, lambda_l2=0.0, score_threshold=None)
    w0 = gen.broadcast(gen.mapping(torch.randn(1, 512, generator=torch.Generator().manual_seed(1))))
    res = Editor(gen, guidance, config=cfg).edit(w0, EditTarget("happy", "more"))
    assert res.w_plus.shape == (1, 14, 512) and res.images.shape == (1, 3, 256, 256)
    assert torch.isfinite(res.w_plus).all() and not torch.equal(res.w_plus, w0)
    assert len(res.loss_history) == 4 and res.loss_history[-1] < res.loss_history[0]
    assert int(res.steps[0]) == 4 and not bool(res.met[0])  # no score threshold: runs every step, judges nothing
