"""The web server's part of the bad-input and abuse sweep (issue: hardening), one case per finding."""

from __future__ import annotations

import asyncio
import io
import json
import logging

import numpy as np
import pytest
from PIL import Image
from starlette.testclient import TestClient
from web_toys import toy_face, toy_samples, toy_system

from editable_deepsc.imaging.io import to_pil
from editable_deepsc.system import Transmitter
from editable_deepsc.web.app import create_app
from editable_deepsc.web.sessions import SessionLimits
from editable_deepsc.web.uploads import UploadLimits

BASE = "http://127.0.0.1:7860"
PNG = {"Content-Type": "image/png"}


@pytest.fixture(scope="module")
def system():
    return toy_system()


@pytest.fixture
def app(system, tmp_path):
    return create_app(system, toy_samples(system), tmp_dir=tmp_path / "app",
                      upload_limits=UploadLimits(max_bytes=200_000, max_side=512),
                      session_limits=SessionLimits(max_sessions=4, max_turns=5, max_per_client=2),
                      baselines=(), upload_timeout=0.2)


@pytest.fixture
def client(app):
    with TestClient(app, base_url=BASE) as c:
        yield c


def _png(image, size=None) -> bytes:
    img = to_pil(image) if not isinstance(image, Image.Image) else image
    if size:
        img = img.resize(size, Image.NEAREST)
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


def _start(client, sample="toy-11", **kw):
    r = client.post("/api/sessions", params={"sample": sample}, **kw)
    assert r.status_code == 201, r.text
    return r.json()["id"]


# ---------------------------------------------------------------------- cross-site and DNS rebinding
def test_foreign_host_header_is_refused(app):
    with TestClient(app, base_url="http://evil.example:7860") as c:
        r = c.get("/api/config")
        assert r.status_code == 403 and r.json()["error"]["type"] == "forbidden"
        assert "evil.example" in r.json()["error"]["message"]
        assert c.post("/api/sessions", params={"sample": "toy-11"}).status_code == 403
    with TestClient(app, base_url="http://localhost:7860") as c:
        assert c.get("/api/config").status_code == 200
    with TestClient(app, base_url="http://[::1]:7860") as c:
        assert c.get("/api/status").status_code == 200


def test_foreign_origin_cannot_change_state(client, app):
    sid = _start(client)
    for origin in ("http://evil.example", "null", "http://127.0.0.1:9999"):
        h = {"Origin": origin}
        r = client.post("/api/sessions", params={"sample": "toy-12"}, headers=h)
        assert r.status_code == 403 and "another site" in r.json()["error"]["message"], origin
        r = client.post(f"/api/sessions/{sid}/send", json={"instruction": "smile"}, headers=h)
        assert r.status_code == 403
        assert client.delete(f"/api/sessions/{sid}", headers=h).status_code == 403
    r = client.post(f"/api/sessions/{sid}/undo", headers={"Sec-Fetch-Site": "cross-site"})
    assert r.status_code == 403
    assert len(app.state.sessions) == 1
    assert client.get(f"/api/sessions/{sid}/log", headers={"Origin": "http://evil.example"}).status_code == 200
    same = client.post(f"/api/sessions/{sid}/send", json={"instruction": "smile"}, headers={"Origin": BASE})
    assert same.status_code == 200, same.text


def test_text_plain_and_form_posts_are_refused(client, system):
    sid = _start(client)
    r = client.post(f"/api/sessions/{sid}/send", content=json.dumps({"instruction": "smile"}),
                    headers={"Content-Type": "text/plain"})
    assert r.status_code == 415 and r.json()["error"]["type"] == "unsupported_media_type"
    r = client.post(f"/api/sessions/{sid}/compare", content=b"snr_db=3",
                    headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert r.status_code == 415
    r = client.post("/api/sessions", content=_png(toy_face(system), (64, 64)), headers={"Content-Type": "text/plain"})
    assert r.status_code == 415
    r = client.post("/api/sessions", content=_png(toy_face(system), (64, 64)))
    assert r.status_code == 415
    r = client.post("/api/sessions", content=_png(toy_face(system), (64, 64)), headers=PNG)
    assert r.status_code == 201


def test_one_client_cannot_push_other_sessions_out(app):
    with TestClient(app, base_url=BASE, client=("10.0.0.1", 5000)) as alice:
        page = TestClient(app, base_url=BASE, client=("10.0.0.2", 5000))  # shares alice's running app
        mine = _start(alice)
        theirs = [_start(page) for _ in range(6)]  # a hostile page fills the store with sessions
        assert [page.get(f"/api/sessions/{s}/log").status_code for s in theirs] == [404] * 4 + [200] * 2
        assert alice.get(f"/api/sessions/{mine}/log").status_code == 200
        assert len(app.state.sessions) == 3


# ---------------------------------------------------------------------- bodies
def _call(app, method: str, path: str, headers: dict, receive_msgs) -> tuple[int, bytes]:
    """Drive the ASGI app directly with a hand-made ``receive`` (a stalled or vanished client)."""
    async def run():
        sent = []
        scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": method,
                 "scheme": "http", "path": path, "raw_path": path.encode(), "query_string": b"", "root_path": "",
                 "headers": [(k.lower().encode(), v.encode()) for k, v in headers.items()],
                 "client": ("127.0.0.1", 1234), "server": ("127.0.0.1", 7860), "app": app}
        msgs = list(receive_msgs)

        async def receive():
            if msgs:
                m = msgs.pop(0)
                if m is None:  # stall forever
                    await asyncio.Event().wait()
                return m
            await asyncio.Event().wait()

        async def send(message):
            sent.append(message)

        async with app.router.lifespan_context(app):
            await app(scope, receive, send)
        start = next(m for m in sent if m["type"] == "http.response.start")
        return start["status"], b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")

    return asyncio.run(run())


def test_stalled_upload_times_out(app):
    status, body = _call(app, "POST", "/api/sessions",
                         {"host": "127.0.0.1:7860", "content-type": "image/png", "content-length": "5000"},
                         [{"type": "http.request", "body": b"\x89PNG" + b"\0" * 100, "more_body": True}, None])
    assert status == 408
    err = json.loads(body)["error"]
    assert err["type"] == "timeout" and "stalled" in err["message"]
    assert list((app.state.upload_dir).iterdir()) == []


def test_client_disconnect_is_not_an_error(app, caplog):
    caplog.set_level(logging.INFO, logger="editable_deepsc.web")
    status, _ = _call(app, "POST", "/api/sessions",
                      {"host": "127.0.0.1:7860", "content-type": "image/png", "content-length": "5000"},
                      [{"type": "http.request", "body": b"\x89PNG", "more_body": True}, {"type": "http.disconnect"}])
    assert status == 499
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert any("disconnected" in r.getMessage() for r in caplog.records)


def test_size_messages_use_the_limits_unit(client):
    from editable_deepsc.web.app import size_message

    sid = _start(client)
    r = client.post(f"/api/sessions/{sid}/send", content=b"{" + b" " * (20 * 1024 - 2) + b"}",
                    headers={"Content-Type": "application/json"})
    assert r.status_code == 413
    assert r.json()["error"]["message"] == "the request is 20 KB; the limit is 16 KB"
    assert size_message("upload", 9 * 2**20, 8 * 2**20) == "the upload is 9 MB; the limit is 8 MB"
    assert size_message("upload", 200_001, 200_000) == "the upload is 200001 bytes; the limit is 200000 bytes"
    assert size_message("request", None, 16 * 1024) == "the request is larger than the limit of 16 KB"


@pytest.mark.parametrize("body", [{"instruction": "smile", "snr_db": True}, {"instruction": "smile", "snr_db": False},
                                  {"instruction": "smile", "channel": 1}])
def test_non_numbers_are_not_snrs(client, body):
    sid = _start(client)
    r = client.post(f"/api/sessions/{sid}/send", json=body)
    assert r.status_code == 400 and r.json()["error"]["type"] == "bad_input", r.text
    r = client.post(f"/api/sessions/{sid}/compare", json={"cbr": {"ideal": True}})
    assert r.status_code == 400


# ---------------------------------------------------------------------- faces
def test_faceless_uploads_of_the_generators_size_are_checked(system, tmp_path):
    real = toy_system()
    real.tx.__class__ = Transmitter  # the real face check (the toy's stand-in only knows flat images)
    app = create_app(real, toy_samples(real), tmp_dir=tmp_path, baselines=())
    rng = np.random.default_rng(1)
    with TestClient(app, base_url=BASE) as c:
        for side in (16, 64):  # 16: the toy generator's own size (no alignment), 64: a "photo"
            noise = Image.fromarray(rng.integers(0, 256, (side, side, 3), np.uint8))
            r = c.post("/api/sessions", content=_png(noise), headers=PNG)
            assert r.status_code == 422 and r.json()["error"]["type"] == "no_face", (side, r.text)


def test_contradictory_instruction_is_refused_with_the_reason(tmp_path):
    from editable_deepsc.text.parser import default_parser

    real = toy_system()
    real.tx.parser = default_parser()  # the real parser (the toy's only knows three words)
    app = create_app(real, toy_samples(real), tmp_dir=tmp_path, baselines=())
    with TestClient(app, base_url=BASE) as c:
        sid = _start(c)
        r = c.post(f"/api/sessions/{sid}/send", json={"instruction": "smile and frown"})
        assert r.status_code == 422 and r.json()["error"]["type"] == "unsupported_instruction"
        assert "cannot look more happy and more angry" in r.json()["error"]["message"]
        assert c.get(f"/api/sessions/{sid}/log").json()["turns"] == []  # nothing sent


def test_serve_binds_host_names_to_its_address():
    from editable_deepsc.web.server import allowed_hosts_for

    assert allowed_hosts_for("127.0.0.1") == ("127.0.0.1", "localhost", "::1")
    assert allowed_hosts_for("192.168.1.5") == ("192.168.1.5",)
    assert allowed_hosts_for("0.0.0.0") is None


# ---------------------------------------------------------------------- keep what works
def test_default_upload_limits_refuse_big_files_and_sides():
    from editable_deepsc.web.uploads import UploadTooLarge, check_image_bytes

    limits = UploadLimits()
    wide = io.BytesIO()
    Image.new("1", (4097, 8)).save(wide, format="PNG")
    with pytest.raises(UploadTooLarge, match="4097x8 px; the limit is 8 MB and 4096 px per side"):
        check_image_bytes(wide.getvalue(), limits)
    with pytest.raises(UploadTooLarge, match="8 MB"):
        check_image_bytes(b"\0" * (8 * 2**20 + 1), limits)


def test_sessions_and_uploads_stay_bounded_after_many_sessions(system, tmp_path):
    app = create_app(system, toy_samples(system), tmp_dir=tmp_path, baselines=(),
                     session_limits=SessionLimits(max_sessions=16, max_per_client=16))
    face = _png(toy_face(system), (64, 64))
    with TestClient(app, base_url=BASE) as c:
        for i in range(120):
            r = c.post("/api/sessions", content=face, headers={**PNG, "X-Filename": f"f{i}.png"})
            assert r.status_code == 201
        assert len(app.state.sessions) == 16
        assert len(list(app.state.upload_dir.iterdir())) == 16  # evicted sessions' uploads are deleted
    assert not tmp_path.joinpath("uploads").exists() or list(tmp_path.joinpath("uploads").iterdir()) == []
