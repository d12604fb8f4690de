"""The web demo's HTTP API, limits and file handling (no browser), on the toy system."""

from __future__ import annotations

import asyncio
import io
import re
import threading
import time

import pytest
import torch
from PIL import Image
from starlette.testclient import TestClient
from web_toys import toy_face, toy_samples, toy_system

from editable_deepsc.baselines.edit_at_receiver import deliver_and_edit, edit_at_receiver
from editable_deepsc.cli import main
from editable_deepsc.channel.config import ChannelConfig
from editable_deepsc.errors import BadInput
from editable_deepsc.imaging.io import to_pil
from editable_deepsc.text.targets import EditTarget
from editable_deepsc.web.app import STATIC_DIR, create_app, example_instruction
from editable_deepsc.web.compare import BaselineCache, BaselineSpec, compare_turn
from editable_deepsc.web.sessions import SessionLimits
from editable_deepsc.web.uploads import UploadLimits, safe_path, sanitise_filename, save_upload
from editable_deepsc.web.worker import ServerBusy, Worker


@pytest.fixture(scope="module")
def system():
    return toy_system()


@pytest.fixture
def client(system, tmp_path):
    app = create_app(system, toy_samples(system), tmp_dir=tmp_path / "app",
                     upload_limits=UploadLimits(max_bytes=200_000, max_side=512),
                     session_limits=SessionLimits(max_sessions=2, max_turns=3),
                     baselines=(BaselineSpec("no-such-method", "Missing", 0.1), BaselineSpec("ideal", "ideal", 1.0)))
    with TestClient(app, base_url=BASE) as c:
        c.app_state = app.state
        yield c


BASE = "http://127.0.0.1:7860"  # the Host header must name the bound address
PNG = {"Content-Type": "image/png"}


def _png(image, size=None) -> bytes:
    img = to_pil(image) if torch.is_tensor(image) else image
    if size:
        img = img.resize(size, Image.NEAREST)
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


def _start(client, sample="toy-11", **q):
    r = client.post("/api/sessions", params={"sample": sample, **q})
    assert r.status_code == 201, r.text
    return r.json()


def _files_under(root):
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())


# ---------------------------------------------------------------------- file names and paths
@pytest.mark.parametrize("name, expected", [
    ("../../etc/passwd", "etc_passwd"),
    ("..\\..\\windows\\evil.png", "windows_evil.png"),
    ("/abs/path/me.jpg", "abs_path_me.jpg"),
    ("Föto 1.PNG", "Foto_1.PNG"),
    ("....", "upload"),
    ("", "upload"),
    ("a" * 100 + ".png", "a" * 60 + ".png"),
])
def test_sanitise_filename(name, expected):
    assert sanitise_filename(name) == expected


def test_safe_path_refuses_escapes(tmp_path):
    assert safe_path(tmp_path, "x.png") == (tmp_path / "x.png").resolve()
    for bad in ("../x.png", "sub/../../x.png", "/etc/passwd"):
        with pytest.raises(BadInput):
            safe_path(tmp_path, bad)
    p = save_upload(b"data", tmp_path, "../../id", "../../../etc/cron.d/evil")
    assert p.parent == tmp_path.resolve() and p.name == "id-etc_cron.d_evil"


def test_upload_with_traversal_name_stays_in_the_apps_folder(client, system, tmp_path):
    before = _files_under(tmp_path)
    r = client.post("/api/sessions", content=_png(toy_face(system), (64, 64)),
                    headers={"X-Filename": "..%2F..%2F..%2Fescape.png", "Content-Type": "image/png"})
    assert r.status_code == 201, r.text
    assert r.json()["origin"] == "upload:escape.png"
    after = _files_under(tmp_path)
    new = sorted(set(after) - set(before))
    assert len(new) == 1 and re.fullmatch(r"app/uploads/[A-Za-z0-9_-]+-escape\.png", new[0])
    assert not (tmp_path.parent / "escape.png").exists()
    # a refused upload leaves no file behind
    r = client.post("/api/sessions", content=b"GIF89a not really", headers={"X-Filename": "x.gif", **PNG})
    assert r.status_code == 400 and r.json()["error"]["type"] == "bad_image"
    assert _files_under(tmp_path) == after


def test_path_traversal_in_urls_is_refused(client):
    sid = _start(client)["id"]
    for url in (f"/api/sessions/{sid}/images/..%2F..%2Fetc%2Fpasswd.png", "/static/..%2F..%2Fapp.py",
                "/static/../app.py", f"/api/sessions/{sid}/images/source.png/../../x"):
        r = client.get(url)
        assert r.status_code == 404, url
        assert b"import" not in r.content
    assert client.get("/api/sessions/not-an-id!/log").json()["error"]["type"] == "no_session"
    assert client.get("/api/sessions/" + "A" * 22 + "/log").status_code == 404


# ---------------------------------------------------------------------- limits and errors
@pytest.mark.parametrize("hint, text", [
    ("pitch: less (e.g. 'hang the head')", "hang the head"),
    ("age (20 years older / younger / make him 60)", "20 years older"),
    ("neutral (neutral expression)", "neutral expression"),
    ("smile", "smile"),
])
def test_suggestions_are_typeable_instructions(hint, text):
    assert example_instruction(hint) == text


def test_upload_limits_are_stated(client, system):
    r = client.post("/api/sessions", content=b"\0" * 200_001, headers=PNG)
    assert r.status_code == 413 and r.json()["error"]["type"] == "too_large"
    assert r.json()["error"]["message"] == "the upload is 200001 bytes; the limit is 200000 bytes"
    r = client.post("/api/sessions", content=_png(Image.new("RGB", (600, 600))), headers=PNG)
    assert r.status_code == 413
    assert r.json()["error"]["message"] == "the image is 600x600 px; the limit is 195 KB and 512 px per side"
    r = client.post("/api/sessions", content=b"", headers=PNG)
    assert r.status_code == 400 and "no image" in r.json()["error"]["message"]
    r = client.post("/api/sessions", content=_png(Image.new("RGB", (64, 64), (90, 90, 90))), headers=PNG)
    assert r.status_code == 422 and r.json()["error"]["type"] == "no_face"


def test_turns_errors_and_log(client):
    s = _start(client, snr_db="20")
    assert s["channel"] == {"name": "awgn", "snr_db": 20.0}
    sid = s["id"]
    r = client.post(f"/api/sessions/{sid}/send", json={"instruction": "add a hat"})
    err = r.json()["error"]
    assert r.status_code == 422 and err["type"] == "unsupported_instruction"
    assert err["supported"] == ["smile", "older", "turn"] and err["nearest"] == "smile"
    assert [(x["text"], x["nearest"]) for x in err["suggestions"]] == [("smile", True), ("older", False),
                                                                       ("turn", False)]
    assert client.post(f"/api/sessions/{sid}/undo").json()["error"]["message"] == "nothing to undo"
    for body, msg in (({"instruction": "  "}, "type an instruction"),
                      ({"instruction": "smile", "snr_db": 99}, "SNR"),
                      ({"instruction": "smile", "channel": "wifi"}, "unknown channel"),
                      ({"instruction": "x" * 201}, "longer than 200")):
        r = client.post(f"/api/sessions/{sid}/send", json=body)
        assert r.status_code == 400 and msg in r.json()["error"]["message"], body
    t0 = client.post(f"/api/sessions/{sid}/send", json={"instruction": "smile", "snr_db": 10}).json()
    assert (t0["turn"]["kind"], t0["turn"]["symbols"], t0["turn"]["snr_db"]) == ("full", 12, 10.0)
    assert t0["session"]["active_edits"] == 1
    png = client.get(t0["turn"]["image_url"])
    assert png.headers["content-type"] == "image/png" and Image.open(io.BytesIO(png.content)).size == (16, 16)
    t1 = client.post(f"/api/sessions/{sid}/send", json={"instruction": "more", "channel": "rayleigh"}).json()
    assert (t1["turn"]["kind"], t1["turn"]["symbols"], t1["turn"]["channel"]) == ("delta", 8, "rayleigh")
    u = client.post(f"/api/sessions/{sid}/undo").json()
    assert u["turn"]["symbols"] == 0 and u["session"]["symbols_total"] == 20
    r = client.post(f"/api/sessions/{sid}/send", json={"instruction": "smile"})  # 4th turn: over the limit of 3
    assert r.status_code == 400 and "limit of 3 turns" in r.json()["error"]["message"]
    log = client.get(f"/api/sessions/{sid}/log")
    assert "attachment" in log.headers["content-disposition"]
    assert [t["symbols"] for t in log.json()["turns"]] == [12, 8, 0]
    r = client.post(f"/api/sessions/{sid}/reset").json()["session"]
    assert r["turns"] == 0 and r["channel"]["name"] == "rayleigh"


def test_sessions_are_evicted_least_recently_used_first(client, system):
    a = _start(client)["id"]
    up = client.post("/api/sessions", content=_png(toy_face(system), (64, 64)), headers={"X-Filename": "b.png", **PNG})
    b = up.json()["id"]
    upload_dir = client.app_state.upload_dir
    assert len(list(upload_dir.iterdir())) == 1
    client.get(f"/api/sessions/{a}/log")  # a is used again; b is now the oldest
    c = _start(client)["id"]
    assert client.get(f"/api/sessions/{b}/log").status_code == 404
    assert client.get(f"/api/sessions/{a}/log").status_code == 200
    assert client.get(f"/api/sessions/{c}/log").status_code == 200
    assert list(upload_dir.iterdir()) == []  # the evicted session's upload is deleted
    assert len(a) >= 20 and a != c


def test_page_loads_nothing_from_elsewhere(client):
    r = client.get("/")
    assert r.status_code == 200 and "default-src 'self'" in r.headers["content-security-policy"]
    for f in STATIC_DIR.iterdir():
        text = f.read_text()
        assert not re.search(r"(https?:)?//[a-z0-9.-]+\.[a-z]{2,}", text), f.name
        assert ".innerHTML" not in text and "insertAdjacentHTML" not in text
    cfg = client.get("/api/config").json()
    assert [b["available"] for b in cfg["baselines"]] == [False, True]
    assert cfg["baselines"][0]["reason"] == "Missing is not available yet (no 'no-such-method' method in the " \
                                            "baseline registry)"
    assert cfg["upload"]["describe"] == "195 KB and 512 px per side"
    assert UploadLimits().describe() == "8 MB and 4096 px per side"


def test_unexpected_errors_become_a_json_500_and_the_worker_goes_on(system, tmp_path):
    from editable_deepsc.web.samples import Sample

    def broken():
        raise RuntimeError("disk on fire")

    app = create_app(system, toy_samples(system) + [Sample("broken", "broken", broken)], tmp_dir=tmp_path)
    with TestClient(app, base_url=BASE) as c:
        r = c.post("/api/sessions", params={"sample": "broken"})
        assert r.status_code == 500
        assert r.json()["error"] == {"type": "error", "message": "internal error (RuntimeError); see the server log"}
        assert _start(c)["origin"] == "sample:toy-11"


# ---------------------------------------------------------------------- worker
def test_worker_status_answers_while_busy_and_refuses_overflow():
    async def scenario():
        w = Worker(max_queue=1)
        gate = threading.Event()
        first = asyncio.ensure_future(w.run("slow", lambda: gate.wait(10) and "first"))
        while not w.status().busy:
            await asyncio.sleep(0.005)
        second = asyncio.ensure_future(w.run("queued", lambda: "second"))
        await asyncio.sleep(0.05)
        t0 = time.perf_counter()
        st = w.status()
        assert time.perf_counter() - t0 < 0.05
        assert (st.busy, st.running, st.queued) == (True, "slow", 1)
        with pytest.raises(ServerBusy, match="2 request"):
            await w.run("third", lambda: "third")
        gate.set()
        assert await first == "first" and await second == "second"
        st = w.status()
        assert (st.busy, st.queued, st.served) == (False, 0, 2)
        w.shutdown()

    asyncio.run(scenario())


def test_busy_http_answer(system, tmp_path):
    app = create_app(system, toy_samples(system), max_queue=0, tmp_dir=tmp_path)
    parser = system.tx.parser
    parser.gate.clear()
    parser.entered.clear()
    with TestClient(app, base_url=BASE) as c:
        sid = _start(c)["id"]
        results = {}
        th = threading.Thread(target=lambda: results.update(
            slow=c.post(f"/api/sessions/{sid}/send", json={"instruction": "smile slowly"})))
        th.start()
        try:
            assert parser.entered.wait(10)
            st = c.get("/api/status").json()
            assert st["busy"] and st["running"] == "send"
            r = c.post("/api/sessions", params={"sample": "toy-12"})
            assert r.status_code == 503 and r.json()["error"]["type"] == "busy"
            assert r.headers["retry-after"] == "2"
        finally:
            parser.gate.set()
            th.join(20)
        assert results["slow"].status_code == 200


# ---------------------------------------------------------------------- receiver-side editing
def test_edit_at_receiver_inverts_then_applies_edits_in_order(system):
    face = toy_face(system, 5)
    plain = edit_at_receiver(system, face, [])
    assert torch.allclose(plain.image, face, atol=1e-3)  # the toy encoder inverts its own faces exactly
    smile = (EditTarget("happy", "more"),)
    one = edit_at_receiver(system, face, [smile], seed=1)
    two = edit_at_receiver(system, face, [smile, (EditTarget("age", "more"),)], seed=1)
    happy = lambda img: system.measure(img, ("happy",))["happy"]  # noqa: E731
    age = lambda img: system.measure(img, ("age",))["age"]  # noqa: E731
    assert happy(one.image) > happy(face) + 0.05
    assert age(two.image) > age(one.image)
    assert len(two.steps) == 2 and set(two.timings) == {"invert", "edit"}
    with pytest.raises(BadInput):
        edit_at_receiver(system, face, [()])


def test_deliver_and_edit_and_the_compare_panel(system, monkeypatch):
    face = toy_face(system, 5)
    d = deliver_and_edit(system, face, "ideal", cbr=1.0, channel=ChannelConfig("awgn", 30.0),
                         instructions=[(EditTarget("happy", "more"),)], seed=0)
    rec = d.to_json()
    assert rec["method"] == "ideal" and rec["k"] == 768 and rec["decoded_ok"]
    assert d.image.shape == (1, 3, 16, 16) and rec["receiver_edit"]["steps"]
    session = system.session(face, ChannelConfig("awgn", 20.0))
    session.send("smile")
    cache = BaselineCache()
    specs = (BaselineSpec("no-such-method", "Missing", 0.1), BaselineSpec("ideal", "ideal", 1.0))
    rows = compare_turn(system, session, cache, session.channel, {}, specs)
    assert rows[0]["available"] is False and "no-such-method" in rows[0]["reason"]
    assert rows[1]["cbr"] == 1.0 and rows[1]["k"] == 768 and rows[1]["edits"] == 1
    again = compare_turn(system, session, cache, session.channel, {}, specs)
    assert torch.equal(again[1]["image"], rows[1]["image"])  # cached link, same seeds
    with pytest.raises(BadInput):
        compare_turn(system, session, cache, session.channel, {"ideal": 2.0}, specs)
    # a CBR too small to carry anything, and a failed decoding (mid-grey fallback: no face to edit),
    # are reported per baseline instead of failing the panel
    specs = (BaselineSpec("ideal", "ideal", 0.001), BaselineSpec("jpeg-ldpc", "JPEG + 5G LDPC", 1 / 12))
    tiny, failed = compare_turn(system, session, cache, ChannelConfig("awgn", 6.0), {}, specs)
    assert "too small" in tiny["error"] and "image" not in tiny
    assert failed["decoded_ok"] is False and failed["k"] == 64
    assert failed["error"].startswith("the receiver cannot edit what arrived: no face found")
    assert torch.equal(failed["image"], failed["received"])
    # registered, but its trained model is missing: "not available", with the reason
    from editable_deepsc.baselines import registry

    monkeypatch.setitem(registry.TRANSMIT_METHODS, "needs-weights", "web_toys:transmit_needs_weights")
    (row,) = compare_turn(system, session, cache, session.channel, {}, (BaselineSpec("needs-weights", "JSCC", 0.1),))
    assert row["available"] is False
    assert row["reason"] == "JSCC is not available: unknown model 'toy-jscc' (not in the zoo)"


# ---------------------------------------------------------------------- CLI
def test_serve_cli_checks_arguments_before_loading_models(capsys):
    assert main(["serve", "--port", "70000"]) == 2
    assert "'--port': 70000 is not in the range 0<=x<=65535" in capsys.readouterr().err
    assert main(["serve", "--snr", "99"]) == 2
    import socket

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        assert main(["serve", "--port", str(busy.getsockname()[1])]) == 2  # before loading any model
        assert "cannot listen on 127.0.0.1" in capsys.readouterr().err
    assert main(["serve", "--help"]) == 0
    assert "127.0.0.1" in capsys.readouterr().out
