"""Editing on the ffhq set: the face view, the exit view, chunked sample scores and the group-restricted
direction fit, on tiny generators and a fake guidance (fast)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch

from editable_deepsc.errors import BadInput
from editable_deepsc.generator.exit_view import ExitView, work_generator
from editable_deepsc.guidance.faces.view import WHOLE, FaceView, view_for_generator
from editable_deepsc.train import score_store

sys.path.insert(0, str(Path(__file__).parent))
from test_ffhq_generator import tiny  # noqa: E402


def test_face_view_box_and_crop():
    v = FaceView(0.78, 0.5, 0.51)
    assert v.box(256) == (28, 31, 200)
    x = torch.arange(2 * 3 * 256 * 256, dtype=torch.float32).reshape(2, 3, 256, 256)
    c = v.crop(x)
    assert c.shape == (2, 3, 200, 200)
    assert torch.equal(c, x[..., 31:231, 28:228])
    assert WHOLE.crop(x) is x
    with pytest.raises(BadInput, match="side"):
        FaceView(1.2)
    with pytest.raises(BadInput, match="leaves the image"):
        FaceView(0.8, 0.5, 0.95)
    with pytest.raises(BadInput, match="unknown face view field"):
        FaceView.from_json({"side": 0.5, "zoom": 2})
    with pytest.raises(BadInput, match="square"):
        v.crop(torch.zeros(1, 3, 10, 12))


def test_sets_name_their_face_view():
    assert view_for_generator("mobilestylegan-ffhq") == FaceView(0.78, 0.5, 0.51)
    assert view_for_generator("edsc-faces64") == WHOLE
    assert view_for_generator("someone-elses-generator") == WHOLE


def test_guidance_reads_only_the_view():
    from editable_deepsc.editing.face_guidance import FaceNetGuidance

    torch.manual_seed(0)
    x = torch.rand(2, 3, 128, 128) * 2 - 1
    v = FaceView(0.5, 0.5, 0.5)
    inside = FaceNetGuidance(view=v).measure(x, ("age", "happy"))
    plain = FaceNetGuidance().measure(v.crop(x), ("age", "happy"))
    for a in ("age", "happy"):
        assert torch.allclose(inside[a], plain[a], atol=1e-5)
    y = x.clone()
    y[..., :10, :] = 1.0  # outside the window: no effect
    again = FaceNetGuidance(view=v).measure(y, ("age",))
    assert torch.allclose(again["age"], inside["age"], atol=1e-5)
    whole = FaceNetGuidance().measure(x, ("age",))
    assert not torch.allclose(whole["age"], inside["age"], atol=1e-2)


def test_exit_view_is_the_generator_at_its_exit():
    g = tiny(exits={"32": 1})
    ev = ExitView(g, 32)
    assert (ev.num_ws, ev.w_dim, ev.z_dim, ev.resolution, ev.name) == (g.num_ws, g.w_dim, g.z_dim, 32, g.name)
    w = g.broadcast(g.mapping(torch.randn(2, g.z_dim)))
    assert torch.equal(ev.synthesis(w), g.synthesis(w, size=32))
    assert torch.equal(ev.full(w), g.synthesis(w))
    assert ev.synthesis(w).shape == (2, 3, 32, 32)
    assert next(ev.parameters()).data_ptr() == next(g.parameters()).data_ptr()
    with pytest.raises(BadInput, match="no 128 px output"):
        ExitView(g, 128)
    assert work_generator(g) is g  # not in a shipped set: full resolution
    assert isinstance(work_generator(g, 32), ExitView) and work_generator(ev) is g
    assert work_generator(g, 64) is g


class FakeGuidance:
    """Reads 'attributes' off image statistics; counts the images it saw."""

    view = FaceView(0.5)

    def __init__(self):
        self.seen = 0

    def measure(self, images, attributes):
        self.seen += len(images)
        m = images.mean(dim=(1, 2, 3))
        return {a: m * (i + 1) for i, a in enumerate(attributes)}

    def embedding(self, images):
        return images.flatten(1)[:, :128]


def test_scores_are_chunked_and_resume(tmp_path):
    g = tiny(exits={"32": 1})
    ev = ExitView(g, 32)
    gd = FakeGuidance()
    s = score_store.score_samples(ev, gd, 10, tmp_path / "s", seed=3, attributes=("age", "happy"), chunk=4,
                                  batch_size=3, progress=False)  # fmt: skip
    assert gd.seen == 10 and s.w.shape == (10, g.w_dim) and s.embedding.shape == (10, 128)
    assert sorted(p.name for p in (tmp_path / "s").glob("chunk-*")) == [f"chunk-0000{i}.safetensors" for i in range(3)]
    # the scores are those of G(broadcast(w)) at the exit
    ref = gd.measure(ev.synthesis(ev.broadcast(s.w)), ("age", "happy"))
    assert torch.allclose(s.scores["happy"], ref["happy"], atol=1e-5)
    (tmp_path / "s" / "chunk-00001.safetensors").unlink()
    gd2 = FakeGuidance()
    s2 = score_store.score_samples(ev, gd2, 10, tmp_path / "s", seed=3, attributes=("age", "happy"), chunk=4,
                                   batch_size=3, progress=False)  # fmt: skip
    assert gd2.seen == 4  # only the missing chunk
    assert torch.equal(s2.w, s.w) and torch.allclose(s2.scores["age"], s.scores["age"])
    with pytest.raises(BadInput, match="other settings .*seed"):
        score_store.score_samples(ev, gd2, 10, tmp_path / "s", seed=4, attributes=("age", "happy"), chunk=4,
                                  progress=False)  # fmt: skip
    assert score_store.load_scores(tmp_path / "s", limit=5).w.shape == (5, g.w_dim)


class PixelGuidance:
    """A fake face-net: 'age' = the image's projection on a fixed smooth pattern, descriptor = an 8x8 thumbnail."""

    view = FaceView()
    pattern = torch.nn.functional.interpolate(torch.randn(1, 3, 4, 4, generator=torch.Generator().manual_seed(5)),
                                              size=32, mode="bilinear", align_corners=False)

    def measure(self, images, attributes):
        v = 400.0 * (images * self.pattern).mean(dim=(1, 2, 3))
        return {a: v for a in attributes}

    def embedding(self, images):
        return torch.nn.functional.adaptive_avg_pool2d(images, 8).flatten(1)


def test_group_directions_are_restricted_and_keep_the_whole_w_plus_slope(tmp_path):
    from editable_deepsc.train.group_directions import (
        fit_group_directions,
        group_masks,
        group_table_markdown,
        outside_face_mask,
    )

    g = tiny(exits={"32": 1})
    ev = ExitView(g, 32)
    gd = PixelGuidance()
    s = score_store.score_samples(ev, gd, 80, tmp_path / "s", attributes=("age",), chunk=40, progress=False)
    sets = (("coarse",), ("middle",), ("fine",), ("coarse", "middle"), ("coarse", "middle", "fine"))
    d = fit_group_directions(ev, gd, s, ("age",), n_cal=12, alpha_cal=0.5, identity_mu=(1.0,), n_metric=16,
                             group_sets=sets)  # fmt: skip
    st = d.stats["age"]
    assert set(st["trials"]) >= {"coarse", "middle", "fine", "coarse+middle", "all"}
    masks = group_masks(ev)
    chosen = torch.zeros(g.num_ws, dtype=torch.bool)
    for grp in st["groups"].replace("all", "coarse+middle+fine").split("+"):
        chosen |= masks[grp]
    vec = d.vector("age")
    # on the tiny generator only the fine styles move the reading: the direction lives there alone
    assert st["groups"] == "fine" and int((~chosen).sum()) > 0 and vec[~chosen].abs().max() == 0
    assert vec[chosen].abs().max() > 0
    # the stored vector moves the reading by the whole-W+ slope per unit alpha
    cal = ev.broadcast(s.w[:12])
    with torch.no_grad():
        up = gd.measure(ev.synthesis(cal + 0.25 * vec), ("age",))["age"]
        down = gd.measure(ev.synthesis(cal - 0.25 * vec), ("age",))["age"]
    measured = float((up - down).mean() / 0.5)
    assert d.slope("age") != 0
    assert measured == pytest.approx(d.slope("age"), rel=0.35)
    assert st["trials"]["all"]["slope"] == pytest.approx(d.slope("age"))
    assert 0 < st["outside_ratio"] and 0 < st["identity_ratio"]
    with pytest.raises(BadInput, match="whole W"):
        fit_group_directions(ev, gd, s, ("age",), n_cal=4, identity_mu=(), group_sets=(("fine",),))
    u = d.unrestricted()
    assert u.vector("age").shape == vec.shape and u.slope("age") == d.slope("age")
    assert torch.equal(u.vector("age")[0], u.vector("age")[-1])  # one w direction in every style
    d.save(tmp_path / "d.safetensors")
    back = type(d).load(tmp_path / "d.safetensors")
    assert torch.equal(back.whole["age"], d.whole["age"]) and back.stats["age"]["groups"] == "fine"
    table = group_table_markdown(d)
    assert "| age |" in table and "coarse+middle" in table
    m = outside_face_mask(256)
    assert not m[int(0.56 * 256), 128] and m[5, 5] and 0.4 < float(m.float().mean()) < 0.7


class _Result:
    def __init__(self, w):
        self.w_plus = w


class FakeEditor:
    """Adds ``shift`` to every latent; refuses the attributes in ``refuse``."""

    def __init__(self, shift, refuse=()):
        self.shift = shift
        self.support = None if not refuse else type("S", (), {"is_supported_all": lambda s, ts: all(
            t.attribute not in refuse for t in ts)})()  # fmt: skip
        self.calls = 0

    def edit(self, w, targets, identity_reference=None):
        self.calls += len(w)
        return _Result(w + self.shift)


class FakeJudge:
    """'Renders' the latent's mean; met when it rose by at least 0.5, kept when below 1.2."""

    def render(self, w):
        return w.mean(dim=(1, 2))

    def judge(self, targets, images, strength=1.0):
        met = images >= 0.5
        second = images.abs()
        return {"met": met, "second": second, "first": second, "kept": second <= 1.2,
                "success": met & (second <= 1.2), "outside": images * 10}


def test_photo_edit_bench_rows_and_page(tmp_path):
    from editable_deepsc.eval.edit_bench import DEFAULT_INSTRUCTIONS
    from editable_deepsc.eval.photo_edit_bench import InvertedPhoto, run_photo_edit_bench, whole_comparison, write_page

    photos = [InvertedPhoto(f"p{i}", None, torch.full((1, 2, 3), 0.1 * i)) for i in range(4)]  # means 0, .1, .2, .3
    paper, fast, whole = FakeEditor(1.0), FakeEditor(0.3, refuse=("eyes_open",)), FakeEditor(1.0)
    ins = [i for i in DEFAULT_INSTRUCTIONS if i.key in ("age:more", "happy:more", "eyes_open:less")]
    rows = run_photo_edit_bench({"paper": paper, "fast": fast}, photos, FakeJudge(), ins, whole, batch_size=3,
                                progress=False)  # fmt: skip
    by = {r["key"]: r for r in rows}
    assert "fast-whole" in by["age:more"] and "fast-whole" not in by["happy:more"]
    assert by["eyes_open:less"]["fast"] == {"refused": True}
    f = by["happy:more"]["fast"]  # means .3 .4 .5 .6: met for two of four, all kept
    assert f["met"] == pytest.approx(0.5) and f["kept"] == 1.0 and f["success"] == pytest.approx(0.5)
    assert f["outside"] == pytest.approx(4.5)
    p = by["happy:more"]["paper"]  # means 1.0 .. 1.3: all met, 1.3 not kept
    assert p["success"] == pytest.approx(0.75) and "speedup" in f and "speedup" not in p
    assert whole.calls == 4 and paper.calls == 12
    comp = whole_comparison(rows)
    assert len(comp) == 1 and comp[0]["ratio"] == pytest.approx(4.5 / 11.5)
    payload = {"command": "edsc bench edit --models ffhq --set celeba --n 4", "presets": ["paper", "fast"],
               "rows": rows, "meta": {"n": 4, "photos": ["p0", "p1", "p2", "p3"], "inversion": "hybrid",
                                      "threads": 1, "seconds": 3.0, "directions": "edsc train directions ...",
                                      "inversion_identity": {"second": 0.2, "kept": 1.0, "first": 0.4,
                                                             "second_threshold": 0.378}},
               "observations": ["a face looked odd"]}  # fmt: skip
    text = write_page(payload, tmp_path / "page.md").read_text()
    assert "refused (unsupported)" in text and "50% · 50% · 100% · 4.5" in text and "0.39" in text
    assert "a face looked odd" in text and "source photo" in text


def test_support_table_from_bench_rows(tmp_path):
    from editable_deepsc.editing.support import load_support
    from editable_deepsc.errors import UnsupportedInstruction
    from editable_deepsc.eval.photo_edit_bench import support_table
    from editable_deepsc.text.targets import EditTarget

    row = {"success": 0.7, "met": 0.8, "kept": 0.9, "second": 0.2, "n": 10}
    rows = [{"key": "age:more", "fast": row}, {"key": "age:less", "fast": {**row, "success": 0.4}},
            {"key": "happy:more+yaw:more", "fast": row}, {"key": "eyes_open:less", "fast": {"refused": True}}]
    t = support_table(rows, "gen-x", "fast", 0.378, 0.6, "cmd")
    assert sorted(t.entries) == ["age:less", "age:more"] and t.supported_keys() == ["age:more"]
    p = t.save(tmp_path / "supported-gen-x.json")
    back = load_support("gen-x", p)
    assert back.is_supported(EditTarget("age", "more")) and not back.is_supported(EditTarget("age", "less"))
    with pytest.raises(UnsupportedInstruction, match="40% of 10"):
        back.check([EditTarget("age", "less")])
    assert load_support("gen-y", p) is None


def test_identity_reference_pulls_towards_it_and_bounds_relative_to_the_inversion():
    from edit_toys import TinyGenerator, ToyGuidance, target

    from editable_deepsc.editing.editor import Editor

    g = TinyGenerator()

    def id_loss(images, reference):  # 0 = same "person": mean squared pixel difference
        return (images - reference).pow(2).mean((1, 2, 3))

    cfg = dict(preset="custom", steps=40, lr=0.05, schedule="constant", lambda_id=20.0, max_id_loss=0.02)
    from editable_deepsc.editing.config import EditConfig

    ed = Editor(g, ToyGuidance(), identity=id_loss, config=EditConfig(**cfg))
    w0 = torch.randn(3, g.num_ws, g.w_dim, generator=torch.Generator().manual_seed(1)) * 0.5
    with torch.no_grad():
        x0 = g.synthesis(w0)
    plain = ed.edit(w0, [target("age")])
    same = ed.edit(w0, [target("age")], identity_reference=x0)  # the default reference, given explicitly
    assert torch.allclose(same.w_plus, plain.w_plus, atol=1e-6)
    photo = (x0 + 0.3).clamp(-1, 1)  # a "source photo" the inversion is already some way from
    far = ed.edit(w0, [target("age")], identity_reference=photo)
    # the bound is relative to where G(w0) stands against the photo: the edit still stops early
    assert bool(far.met.all()) and int(far.steps.max()) < 40
    # and the identity term now pulls towards the photo, not towards G(w0)
    with torch.no_grad():
        assert float(id_loss(far.images, photo).mean()) < float(id_loss(plain.images, photo).mean())
    with pytest.raises(BadInput, match="identity_reference must be"):
        ed.edit(w0, [target("age")], identity_reference=x0[:2])
    with pytest.raises(BadInput, match="NaN"):
        ed.edit(w0, [target("age")], identity_reference=torch.full_like(x0, float("nan")))


def test_shipped_ffhq_directions_live_in_the_groups_they_name():
    from editable_deepsc.editing.directions import load_directions
    from editable_deepsc.generator.mixing import group_mask
    from editable_deepsc.generator.mobile_stylegan import MobileStyleGANConfig
    from editable_deepsc.zoo.sets import load_set

    assert load_set("ffhq").member("directions") == "mobilestylegan-ffhq-directions"
    d = load_directions("mobilestylegan-ffhq")
    assert d is not None and d.meta["mode"] == "groups" and d.meta["n"] >= 10000 and (d.num_ws, d.w_dim) == (23, 512)
    cfg = MobileStyleGANConfig()
    restricted = 0
    for a in d.attributes:
        groups = d.stats[a]["groups"]
        mask = group_mask(cfg, "all" if groups == "all" else groups.split("+"))
        v = d.vector(a)
        assert v[~mask].abs().max() == 0 if (~mask).any() else True
        assert v[mask].norm(dim=1).min() > 0  # every style of the chosen groups moves
        restricted += groups != "all"
        # the stored vector has the whole-W+ direction's slope per unit alpha (see the stats)
        assert d.slope(a) == pytest.approx(d.stats[a]["trials"]["all"]["slope"])
        assert d.whole[a].shape == (512,)
    assert restricted >= 3


def test_bench_edit_render_only_rewrites_the_page_from_its_json(tmp_path):
    import json

    from editable_deepsc.cli import main

    page = tmp_path / "editing_ffhq.md"
    argv = ["bench", "edit", "--models", "ffhq", "--render-only", "--markdown", str(page), "--out", str(tmp_path / "o")]
    assert main(argv) == 2 and not page.exists()
    row = {"success": 0.5, "met": 0.75, "kept": 0.5, "second": 0.3, "first": 0.4, "outside": 2.0,
           "seconds_per_edit": 1.0, "n": 4}
    payload = {"command": "edsc bench edit --models ffhq --set celeba --n 4", "presets": ["fast"],
               "rows": [{"instruction": "make him older", "key": "age:more", "fast": row}],
               "meta": {"n": 4, "photos": ["a", "b", "c", "d"], "inversion": "hybrid", "threads": 2, "seconds": 9.0,
                        "directions": None, "inversion_identity": {"second": 0.2, "kept": 1.0, "first": 0.4,
                                                                   "second_threshold": 0.378}},
               "observations": ["the fourth face grew a beard"]}  # fmt: skip
    page.with_suffix(".json").write_text(json.dumps(payload))
    assert main(argv) == 0
    text = page.read_text()
    assert "50% · 75% · 50% · 2.0 · 1.00" in text and "the fourth face grew a beard" in text


@pytest.mark.slow
def test_fast_preset_edits_real_photos_judged_on_the_receivers_image(tmp_path):
    """CelebA 000701/000702 (both smiling), hybrid inversion, 'make her stop smiling' with the shipped directions."""
    from editable_deepsc.editing.builtin import build_editor
    from editable_deepsc.eval.edit_bench import DEFAULT_INSTRUCTIONS
    from editable_deepsc.eval.photo_bench import bench_photos
    from editable_deepsc.eval.photo_edit_bench import ReceivedJudge, inverted_photos, run_photo_edit_bench
    from editable_deepsc.generator import load_generator
    from editable_deepsc.inversion.encoder import load_encoder

    g = load_generator("mobilestylegan-ffhq")
    photos = inverted_photos(bench_photos(2, portraits=False), g, load_encoder("edsc-e4e-ffhq", generator=g),
                             tmp_path, progress=False)  # fmt: skip
    ed = build_editor("fast", generator=g, use_support=False)
    assert ed.generator.resolution == 256 and ed.directions.meta["mode"] == "groups"
    judge = ReceivedJudge(g, ed.guidance, photos)
    ins = [i for i in DEFAULT_INSTRUCTIONS if i.key == "happy:less"]
    row = run_photo_edit_bench({"fast": ed}, photos, judge, ins, progress=False)[0]["fast"]
    assert row["met"] == 1.0 and row["kept"] >= 0.5
    assert 0.0 < row["outside"] < 20.0 and row["seconds_per_edit"] > 0


def test_stop_after_caps_steps_on_the_full_schedule():
    from edit_toys import TinyGenerator, ToyGuidance, target

    from editable_deepsc.editing.config import EditConfig
    from editable_deepsc.editing.editor import Editor

    g = TinyGenerator()
    w0 = torch.randn(2, g.num_ws, g.w_dim, generator=torch.Generator().manual_seed(2)) * 0.3
    impossible = [target("age", "more", strength=4.0)]
    full = EditConfig(preset="custom", steps=50, lr=0.01, early_stop=False)
    capped = full.with_(stop_after=5)
    r = Editor(g, ToyGuidance(), config=capped).edit(w0, impossible, record_every=1)
    assert int(r.steps.max()) == 5 and len(r.loss_history) == 5
    # the same five steps as the uncapped run (same learning-rate schedule)
    r_full = Editor(g, ToyGuidance(), config=full).edit(w0, impossible, record_every=1)
    assert r.loss_history == pytest.approx(r_full.loss_history[:5])
    with pytest.raises(BadInput, match="stop_after"):
        EditConfig(stop_after=-1)
