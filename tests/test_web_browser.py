"""End-to-end tests of the web demo in real headless Chromium (Debian's chromium + Python Playwright).

The app runs on a background uvicorn server around the 16x16 toy system
(tests/web_toys.py), so the browser tests need no trained weights and run in
seconds. One slow test drives the real built-in system when its weights exist.

Chromium comes from Debian's ``chromium`` package (installed by
``scripts/install_chromium.sh`` when missing and running as root); the tests
skip, saying why, only where it cannot be installed.
"""

from __future__ import annotations

import io
import json

import pytest
from PIL import Image
from web_toys import toy_face, toy_samples, toy_system

from editable_deepsc.imaging.io import to_pil
from editable_deepsc.web.app import create_app
from editable_deepsc.web.compare import BaselineSpec
from editable_deepsc.web.headless import ensure_chromium, launch
from editable_deepsc.web.server import start_in_thread

sync_api = pytest.importorskip("playwright.sync_api", reason="the playwright package is missing "
                               "(pip install -r requirements/test.txt)")

TIMEOUT_MS = 30_000


@pytest.fixture(scope="module")
def chromium_path() -> str:
    path, why = ensure_chromium()
    if path is None:
        pytest.skip(f"headless Chromium unavailable: {why}")
    return path


@pytest.fixture(scope="module")
def system():
    return toy_system()


@pytest.fixture(scope="module")
def server(system, tmp_path_factory):
    # max_queue=0: while one request runs, any other model request is told "busy" at once
    # a stand-in for a baseline that is not there (DeepJSCC before its model is trained)
    baselines = (BaselineSpec("no-such-method", "Missing method", 1 / 12),
                 BaselineSpec("jpeg-ldpc", "JPEG + 5G LDPC", 0.5))
    app = create_app(system, toy_samples(system), max_queue=0, baselines=baselines,
                     tmp_dir=tmp_path_factory.mktemp("webtmp"))
    srv = start_in_thread(app)
    yield srv
    system.tx.parser.gate.set()
    srv.stop()


@pytest.fixture(scope="module")
def browser(chromium_path):
    pw = sync_api.sync_playwright().start()
    b = launch(pw, chromium_path)
    yield b
    b.close()
    pw.stop()


@pytest.fixture
def page(browser, server):
    ctx = browser.new_context(accept_downloads=True, viewport={"width": 1400, "height": 1000})
    ctx.set_default_timeout(TIMEOUT_MS)
    pg = ctx.new_page()
    pg.foreign_requests, pg.console_errors = [], []
    pg.on("request", lambda r: None if r.url.startswith(server.url) else pg.foreign_requests.append(r.url))
    pg.on("console", lambda m: pg.console_errors.append(m.text) if m.type == "error" else None)
    pg.goto(server.url)
    pg.wait_for_selector("body[data-ready='1']")
    yield pg
    assert pg.foreign_requests == [], "the page must load nothing from other hosts"
    ctx.close()


def _png(image) -> bytes:
    buf = io.BytesIO()
    (to_pil(image) if not isinstance(image, Image.Image) else image).save(buf, format="PNG")
    return buf.getvalue()


def _upload(page, name: str, data: bytes, mime: str = "image/png") -> None:
    page.set_input_files("#upload", files=[{"name": name, "mimeType": mime, "buffer": data}])


def _wait_turns(page, n: int) -> None:
    # locator waits only: the page's Content-Security-Policy forbids eval (wait_for_function)
    page.locator(f"#history .turn[data-index='{n - 1}']").wait_for()
    assert page.locator("#history .turn").count() == n


def _turn(page, i: int):
    return page.locator(f"#history .turn[data-index='{i}']")


def _image_bytes(page, server, selector: str) -> bytes:
    src = page.get_attribute(selector, "src")
    return page.request.get(server.url + src.split("?")[0]).body()


def _start_sample(page, name: str = "toy-11") -> None:
    page.click(f".samples button[data-sample='{name}']")
    page.locator("#session-info", has_text="sample:").wait_for()


def test_upload_two_instructions_undo_update_images_and_numbers(page, server, system):
    # an 80x64 upload (the toy face upscaled) is cropped to 64x64 and resized to the generator's 16x16
    photo = to_pil(toy_face(system, 11)).resize((80, 64), Image.NEAREST)  # non-square: cropped to the centre
    _upload(page, "../../my face.png", _png(photo))
    page.locator("#session-info", has_text="upload:").wait_for()
    info = page.text_content("#session-info")
    assert "upload:my_face.png" in info and "cropped the 80x64 photo" in info
    assert page.is_disabled("#undo")
    start = _image_bytes(page, server, "#current-img")
    assert Image.open(io.BytesIO(start)).size == (16, 16)

    page.fill("#instruction", "make her smile")
    page.click("#send")
    _wait_turns(page, 1)
    t0 = _turn(page, 0)
    assert t0.get_attribute("data-kind") == "full"
    assert t0.locator(".symbols").text_content() == "12 symbols"
    assert t0.locator(".cbr").text_content() == "CBR 0.0156"  # 12 / (3*16*16)
    assert t0.locator(".snr").text_content() == "AWGN 6 dB"
    assert "happy: more" in t0.locator(".targets").text_content()
    assert page.input_value("#instruction") == ""  # cleared after a successful send
    after_first = _image_bytes(page, server, "#current-img")
    assert after_first != start

    page.locator("#snr").fill("20")
    page.select_option("#channel", "rayleigh")
    page.fill("#instruction", "a bit more")
    page.press("#instruction", "Enter")
    _wait_turns(page, 2)
    t1 = _turn(page, 1)
    assert t1.get_attribute("data-kind") == "delta"  # follow-up: only the edit delta crosses the channel
    assert t1.locator(".symbols").text_content() == "8 symbols"
    assert t1.locator(".snr").text_content() == "RAYLEIGH 20 dB"
    assert "x0.5" in t1.locator(".targets").text_content()
    after_second = _image_bytes(page, server, "#current-img")
    assert after_second != after_first
    assert page.get_attribute("#session-info", "data-symbols-total") == "20"

    page.click("#undo")
    _wait_turns(page, 3)
    t2 = _turn(page, 2)
    assert t2.get_attribute("data-kind") == "none"
    assert t2.locator(".symbols").text_content() == "0 symbols"
    # the receiver is back at the first turn's latent: the very same image
    assert _image_bytes(page, server, "#current-img") == after_first
    assert page.get_attribute("#session-info", "data-symbols-total") == "20"

    with page.expect_download() as dl:
        page.click("#download-log")
    log = json.loads(open(dl.value.path()).read())
    assert [t["action"] for t in log["turns"]] == ["edit", "edit", "undo"]
    assert [t["symbols"] for t in log["turns"]] == [12, 8, 0]
    assert log["web"]["origin"] == "upload:my_face.png"
    with page.expect_download() as dl:
        page.click("#download-image")
    assert dl.value.suggested_filename.endswith(".png")
    assert open(dl.value.path(), "rb").read() == after_first
    assert page.console_errors == []


def test_unsupported_instruction_shows_suggestions_and_sends_nothing(page):
    _start_sample(page)
    page.fill("#instruction", "add a hat")
    page.click("#send")
    page.wait_for_selector("#error:not([hidden])")
    assert page.get_attribute("#error", "data-type") == "unsupported_instruction"
    assert "not supported" in page.text_content("#error")
    nearest = page.locator("#error .suggestions button.nearest")
    assert nearest.text_content() == "smile"
    assert page.locator("#error .suggestions button").count() == 3
    assert page.locator("#history .turn").count() == 0
    assert page.input_value("#instruction") == "add a hat"  # kept, so the user can fix it
    nearest.click()
    assert page.input_value("#instruction") == "smile"
    page.click("#send")
    _wait_turns(page, 1)
    assert page.is_hidden("#error")


def test_non_image_oversized_and_faceless_uploads_are_explained(page):
    _upload(page, "notes.txt", b"this is not an image", "text/plain")
    page.wait_for_selector("#error[data-type='bad_image']")
    text = page.text_content("#error")
    assert "not an image" in text and "8 MB and 4096 px per side" in text

    _upload(page, "huge.png", b"\0" * (8 * 1024 * 1024 + 1))  # refused in the page before uploading
    page.wait_for_selector("#error[data-type='too_large']")
    assert "the limit is 8 MB and 4096 px per side" in page.text_content("#error")

    _upload(page, "wide.png", _png(Image.new("RGB", (4100, 8))))  # small file, too many pixels: server says no
    page.locator("#error", has_text="4100x8").wait_for()
    assert page.get_attribute("#error", "data-type") == "too_large"

    _upload(page, "blank.png", _png(Image.new("RGB", (64, 64), (128, 128, 128))))
    page.wait_for_selector("#error[data-type='no_face']")
    assert "No face found" in page.text_content("#error")
    assert page.is_disabled("#send")  # no session was started


def test_busy_server_answers_status_at_once_and_refuses_extra_work(browser, page, server, system):
    _start_sample(page)
    gate = system.tx.parser.gate
    gate.clear()
    system.tx.parser.entered.clear()
    page.fill("#instruction", "smile slowly")
    page.click("#send")
    assert system.tx.parser.entered.wait(10)
    other = browser.new_context().new_page()
    try:
        other.goto(server.url)
        other.wait_for_selector("body[data-ready='1']")
        # the status badge reads busy although the only worker is occupied
        other.locator("#status[data-state='busy']").wait_for(timeout=5000)
        assert "server busy: send" in other.text_content("#status")
        other.click(".samples button[data-sample='toy-12']")
        other.wait_for_selector("#error[data-type='busy']", timeout=5000)
        assert "try again" in other.text_content("#error")
    finally:
        gate.set()
        other.context.close()
    _wait_turns(page, 1)
    page.locator("#status[data-state='idle']").wait_for()


def test_compare_panel_and_reset(page):
    _start_sample(page)
    page.check("#compare-toggle")
    page.wait_for_selector("#compare .method[data-method='jpeg-ldpc'] img")
    missing = page.locator("#compare .method[data-method='no-such-method']")
    assert "not available" in missing.text_content()
    jl = page.locator("#compare .method[data-method='jpeg-ldpc']")
    assert "CBR 0.5000 (384 symbols" in jl.locator(".cbr").text_content()  # 0.5 * 3*16*16
    assert page.get_attribute("#compare", "data-turns") == "0"
    page.fill("#instruction", "make her older")
    page.click("#send")
    _wait_turns(page, 1)
    page.locator("#compare[data-turns='1']:not([data-loading])").wait_for()
    ours = page.locator("#compare .method[data-method='editable-deepsc']").text_content()
    assert "last edit: 12 symbols, CBR 0.0156" in ours
    assert "Editable-DeepSC's full latent uses 3.1% of this CBR" in jl.text_content()  # 0.015625 / 0.5

    page.click("#reset")
    page.locator("#history .turn").first.wait_for(state="detached")
    assert page.is_disabled("#undo")
    assert "0 active edit(s)" in page.text_content("#session-info")


@pytest.mark.slow
def test_real_builtin_system_in_the_browser(browser, tmp_path):
    """One turn on the built-in models (needs the trained weights in the zoo)."""
    from editable_deepsc.errors import CheckpointError
    from editable_deepsc.system import EditableDeepSC

    try:
        real = EditableDeepSC.load()
    except (CheckpointError, FileNotFoundError, KeyError) as e:
        pytest.skip(f"built-in weights not in the zoo yet: {e}")
    srv = start_in_thread(create_app(real, tmp_dir=tmp_path))
    ctx = browser.new_context()
    ctx.set_default_timeout(180_000)
    pg = ctx.new_page()
    try:
        pg.goto(srv.url)
        pg.wait_for_selector("body[data-ready='1']")
        pg.click(".samples button[data-sample^='face-']")
        pg.locator("#session-info", has_text="sample:").wait_for()
        pg.fill("#instruction", "make her smile")
        pg.click("#send")
        pg.wait_for_selector("#history .turn[data-index='0']")
        assert pg.locator("#history .turn[data-index='0']").get_attribute("data-kind") == "full"
        sym = int(pg.locator("#history .turn[data-index='0'] .symbols").text_content().split()[0])
        assert sym == real.tx.codec.k
        pg.check("#compare-toggle")
        pg.locator("#compare[data-turns='1']:not([data-loading]) .method[data-method='jpeg-ldpc']").wait_for()
        assert "CBR 0.0833 (1024 symbols" in pg.locator("#compare .method[data-method='jpeg-ldpc']").text_content()
        # a real photo: detected, aligned and inverted
        pg.click(".samples button[data-sample='astronaut']")
        pg.locator("#session-info", has_text="sample:astronaut").wait_for()
        assert pg.locator("#error").is_hidden()
    finally:
        ctx.close()
        srv.stop()
