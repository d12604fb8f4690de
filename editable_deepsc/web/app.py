"""The web demo as a Starlette app: a JSON API and one static page of its own.

:func:`create_app` takes a ready :class:`~editable_deepsc.system.EditableDeepSC`
(tests inject a tiny one). Routes:

====================================  ===========================================================
``GET /``                             the page (``static/index.html``; no external resources)
``GET /api/config``                   samples, channels, SNR range, upload limits, baselines
``GET /api/status``                   the worker's state — answers at once, even while busy
``GET /api/samples/{name}.png``       a sample's thumbnail
``POST /api/sessions``                start: raw image bytes as body (``X-Filename`` header) or
                                      ``?sample=NAME``; ``&snr_db=&channel=&seed=``
``POST /api/sessions/{id}/send``      ``{"instruction", "snr_db", "channel"}`` → the turn
``POST /api/sessions/{id}/undo``      revert the last edit (nothing sent)
``POST /api/sessions/{id}/reset``     start the conversation again on the same image
``POST /api/sessions/{id}/compare``   ``{"snr_db", "channel", "cbr": {name: value}}`` → baselines
``GET /api/sessions/{id}/log``        the session log (JSON download)
``GET /api/sessions/{id}/images/N``   a stored PNG (``?download=1`` as attachment)
``DELETE /api/sessions/{id}``         forget the session
====================================  ===========================================================

Errors are JSON ``{"error": {"type", "message", ...}}`` with a 4xx/5xx status:
``unsupported_instruction`` (422, with ``supported`` and ``nearest``),
``no_face`` (422), ``too_large`` (413), ``bad_image`` / ``bad_input`` (400),
``forbidden`` (403: foreign ``Host`` or ``Origin``), ``no_session`` (404), ``timeout`` (408: a
stalled upload), ``unsupported_media_type`` (415), ``busy`` (503), ``error`` (500).

Abuse limits: the ``Host`` header must name the bound address (DNS rebinding), state-changing
requests from another origin are refused (cross-site requests), JSON endpoints take only
``application/json`` and uploads only ``image/*`` or ``application/octet-stream`` (no
cross-site ``text/plain`` form posts), a body that stalls for ``upload_timeout`` seconds is
dropped, and one client holds at most ``SessionLimits.max_per_client`` sessions.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import re
import shutil
import tempfile
from pathlib import Path
from typing import Any, Awaitable, Callable
from urllib.parse import unquote, urlsplit

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import ClientDisconnect, Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from editable_deepsc.channel.config import ChannelConfig
from editable_deepsc.errors import BadInput, EdscError, ImageError, NoFaceFound, UnsupportedInstruction
from editable_deepsc.imaging.io import resize
from editable_deepsc.web.compare import COMPARE_BASELINES, BaselineCache, BaselineSpec, availability, compare_turn
from editable_deepsc.web.samples import Sample, find_sample
from editable_deepsc.web.sessions import (SessionLimits, SessionNotFound, SessionStore, TooManyTurns, WebSession,
                                          png_bytes)
from editable_deepsc.web.uploads import UploadLimits, UploadTooLarge, decode_upload, sanitise_filename, save_upload
from editable_deepsc.web.worker import ServerBusy, Worker
from editable_deepsc.vocab import CORRECTIONS, DEFAULT_CORRECTION

log = logging.getLogger("editable_deepsc.web")

STATIC_DIR = Path(__file__).with_name("static")
LOCAL_HOSTS: tuple[str, ...] = ("127.0.0.1", "localhost", "::1")
"""Host names accepted by default (the server bound to this machine only)."""
UPLOAD_TIMEOUT = 30.0
"""Seconds a request body may stall (no new bytes) before the request is dropped (408)."""
JSON_LIMIT = 16 * 1024
"""Largest JSON request body (bytes)."""
UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
MAX_INSTRUCTION_CHARS = 200
_NAME = re.compile(r"^[a-z0-9-]{1,64}$")
CSP = ("default-src 'self'; img-src 'self' data: blob:; style-src 'self'; script-src 'self'; "
       "connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'")


# ---------------------------------------------------------------------- errors
_EG = re.compile(r"e\.g\.\s*['\"]([^'\"]+)['\"]")
_PAREN = re.compile(r"\(([^)]*)\)")


def example_instruction(hint: str) -> str:
    """A typeable instruction from a parser hint.

    Examples
    --------
    >>> example_instruction("pitch: less (e.g. 'hang the head')")
    'hang the head'
    >>> example_instruction("happy (smile / stop smiling)")
    'smile'
    >>> example_instruction("smile")
    'smile'
    """
    m = _EG.search(hint)
    if m:
        return m.group(1).strip()
    m = _PAREN.search(hint)
    if m and m.group(1).strip():
        return m.group(1).split("/")[0].strip()
    return hint.strip()


def _suggestions(exc: UnsupportedInstruction) -> list[dict]:
    out, seen = [], set()
    for hint, nearest in ([(exc.nearest, True)] if exc.nearest else []) + [(h, False) for h in exc.supported]:
        text = example_instruction(str(hint))
        if text and text not in seen:
            seen.add(text)
            out.append({"text": text, "hint": str(hint), "nearest": nearest})
    return out


class Forbidden(BadInput):
    """A request from a foreign host name or origin (cross-site or DNS rebinding)."""


class UnsupportedMediaType(BadInput):
    """A body of a content type the endpoint does not take."""


class BodyTimeout(BadInput):
    """The client stopped sending its body."""


#: Exception class -> (HTTP status, error type the page shows); the first match wins, so
#: subclasses come before their bases.
ERROR_TYPES: tuple[tuple[type[Exception], int, str], ...] = (
    (UnsupportedInstruction, 422, "unsupported_instruction"),
    (NoFaceFound, 422, "no_face"),
    (UploadTooLarge, 413, "too_large"),
    (ImageError, 400, "bad_image"),
    (Forbidden, 403, "forbidden"),
    (UnsupportedMediaType, 415, "unsupported_media_type"),
    (BodyTimeout, 408, "timeout"),
    (ServerBusy, 503, "busy"),
    (SessionNotFound, 404, "no_session"),
    (BadInput, 400, "bad_input"),
    (EdscError, 500, "error"),
)


def error_response(exc: Exception) -> JSONResponse:
    """Map an exception to the JSON error the page shows (:data:`ERROR_TYPES`)."""
    match = next(((status, kind) for cls, status, kind in ERROR_TYPES if isinstance(exc, cls)), None)
    if match is None:
        log.exception("unexpected error in the web demo", exc_info=exc)
        status = 500
        body: dict[str, Any] = {"type": "error",
                                "message": f"internal error ({exc.__class__.__name__}); see the server log"}
    else:
        status, kind = match
        body = {"message": str(exc), "type": kind}
        if isinstance(exc, UnsupportedInstruction):
            body["supported"], body["nearest"] = list(exc.supported), exc.nearest
            body["suggestions"] = _suggestions(exc)
        elif isinstance(exc, ServerBusy):
            body["waiting"] = exc.waiting
    headers = {"Retry-After": "2"} if status == 503 else None
    return JSONResponse({"error": body}, status_code=status, headers=headers)


class SecurityHeaders:
    """ASGI middleware: a strict Content-Security-Policy (nothing but this server) and no sniffing."""

    HEADERS = ((b"content-security-policy", CSP.encode()), (b"x-content-type-options", b"nosniff"),
               (b"referrer-policy", b"no-referrer"))

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)

        async def send_with_headers(message):
            if message["type"] == "http.response.start":
                names = {k.lower() for k, _ in message.get("headers", [])}
                message["headers"] = list(message.get("headers", [])) + [h for h in self.HEADERS if h[0] not in names]
            await send(message)

        return await self.app(scope, receive, send_with_headers)


def _host_name(netloc: str) -> str:
    """``"[::1]:7860"`` → ``"::1"``, ``"Localhost:80"`` → ``"localhost"``."""
    host = netloc.strip().lower()
    if host.startswith("["):
        return host[1:].split("]", 1)[0]
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


class RequestGuard:
    """ASGI middleware: refuse foreign ``Host`` headers and cross-origin state-changing requests.

    Reads ``app.state.allowed_hosts`` (``None``: any host name, for a server exposed on purpose).
    A browser sends ``Origin`` with every cross-origin POST/DELETE (and ``Sec-Fetch-Site``): such
    a request must come from the page's own origin, i.e. match the ``Host`` header.
    """

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
        host = headers.get("host", "")
        allowed = getattr(scope["app"].state, "allowed_hosts", LOCAL_HOSTS)
        problem = None
        if allowed is not None and _host_name(host) not in allowed:
            problem = f"this server answers to {', '.join(allowed)}, not to the host name {host!r}"
        elif scope["method"] in UNSAFE_METHODS:
            origin = headers.get("origin")
            if origin is not None and (origin == "null" or urlsplit(origin).netloc.lower() != host.lower()):
                problem = f"requests from another site ({origin}) are refused"
            elif headers.get("sec-fetch-site") == "cross-site":
                problem = "cross-site requests are refused"
        if problem is not None:
            return await error_response(Forbidden(problem))(scope, receive, send)
        return await self.app(scope, receive, send)


def _endpoint(fn: Callable[[Request], Awaitable[Response]]) -> Callable[[Request], Awaitable[Response]]:
    async def wrapped(request: Request) -> Response:
        try:
            return await fn(request)
        except ClientDisconnect:  # the client went away: nothing to answer, nothing wrong here
            log.info("client disconnected during %s %s", request.method, request.url.path)
            return Response(status_code=499)
        except Exception as e:  # noqa: BLE001 - every error becomes a JSON message for the page
            return error_response(e)

    wrapped.__name__ = fn.__name__
    return wrapped


# ---------------------------------------------------------------------- helpers
def _channel(data: dict, default: ChannelConfig) -> ChannelConfig:
    name = data.get("channel", default.name)
    snr = data.get("snr_db", default.snr_db)
    if not isinstance(name, str):
        raise BadInput(f"channel must be a name, got {name!r}")
    if isinstance(snr, str):
        try:
            snr = float(snr)
        except ValueError:
            raise BadInput(f"SNR must be a number, got {snr!r}") from None
    return ChannelConfig(str(name), snr)


def _media_type(request: Request) -> str:
    return request.headers.get("content-type", "").split(";", 1)[0].strip().lower()


async def _json(request: Request, limit: int = JSON_LIMIT) -> dict:
    if _media_type(request) != "application/json":
        raise UnsupportedMediaType("send the request as JSON (Content-Type: application/json)")
    body = await _read_body(request, limit, what="request")
    if not body:
        return {}
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise BadInput("the request body is not valid JSON") from None
    if not isinstance(data, dict):
        raise BadInput("the request body must be a JSON object")
    return data


def size_message(what: str, size: int | None, limit: int) -> str:
    """``"the request is 20 KB; the limit is 16 KB"``: both sizes in the limit's unit (bytes when
    that unit would show them equal); ``size=None``: "larger than the limit"."""
    unit, name = (2**20, "MB") if limit >= 2**20 else (1024, "KB")

    def fmt(n: int) -> str:
        return f"{n / unit:.1f}".rstrip("0").rstrip(".") + f" {name}"

    if size is None:
        return f"the {what} is larger than the limit of {fmt(limit)}"
    a, b = fmt(size), fmt(limit)
    if a == b:
        a, b = f"{size} bytes", f"{limit} bytes"
    return f"the {what} is {a}; the limit is {b}"


async def _read_body(request: Request, limit: int, what: str = "upload") -> bytes:
    """Read at most ``limit`` bytes of the body; refuse larger ones without reading them all, and
    give up on a body that stalls for ``app.state.upload_timeout`` seconds."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise UploadTooLarge(size_message(what, int(declared), limit))
    timeout = getattr(request.app.state, "upload_timeout", UPLOAD_TIMEOUT)
    chunks, size = [], 0
    stream = request.stream().__aiter__()
    while True:
        try:
            chunk = await asyncio.wait_for(stream.__anext__(), timeout)
        except StopAsyncIteration:
            break
        except asyncio.TimeoutError:
            raise BodyTimeout(f"the {what} stalled: no data for {timeout:g} s") from None
        size += len(chunk)
        if size > limit:
            raise UploadTooLarge(size_message(what, None, limit))
        chunks.append(chunk)
    return b"".join(chunks)


def _turn_json(ws: WebSession, turn) -> dict:
    d = turn.to_json()
    d["image_url"] = ws.put_image(f"turn-{turn.index}", turn.rx_image)
    d["seconds_total"] = round(sum(turn.timings.values()), 4)
    return d


def _session_json(ws: WebSession) -> dict:
    s = ws.session
    return {
        "id": ws.id, "origin": ws.origin, "notes": ws.notes,
        "source_url": f"/api/sessions/{ws.id}/images/source.png",
        "start_url": f"/api/sessions/{ws.id}/images/start.png",
        "current_url": _current_url(ws),
        "channel": {"name": s.channel.name, "snr_db": s.channel.snr_db},
        "invert_seconds": round(s.invert_seconds, 4),
        "active_edits": len(s.w_tx), "turns": len(s.turns),
        "symbols_total": sum(t.symbols for t in s.turns), "seed": s.seed, "face": ws.face,
        "verify_rx": s.verify,
    }


def _thumbnail(image, side: int = 128):
    """Downscale a (1, 3, H, W) image so that its longer side is at most ``side`` px."""
    h, w = image.shape[-2:]
    if max(h, w) <= side:
        return image
    return resize(image, (max(1, round(h * side / max(h, w))), max(1, round(w * side / max(h, w)))))


def _current_url(ws: WebSession) -> str:
    s = ws.session
    name = f"turn-{s.turns[-1].index}" if s.turns else "start"
    return f"/api/sessions/{ws.id}/images/{name}.png"


# ---------------------------------------------------------------------- handlers
# Every handler reads what it needs from ``request.app.state`` (set once by :func:`create_app`).
async def index(request: Request) -> Response:
    return FileResponse(STATIC_DIR / "index.html", media_type="text/html")


@_endpoint
async def config(request: Request) -> Response:
    from editable_deepsc.channel import CHANNELS, SNR_RANGE_DB

    st = request.app.state
    rows = []
    for spec in st.baselines:
        ok, reason = availability(spec)
        rows.append({"name": spec.name, "label": spec.label, "cbr": spec.cbr, "available": ok, "reason": reason})
    system, limits = st.system, st.upload_limits
    gen = system.generator
    return JSONResponse({
        "samples": [{"name": s.name, "label": s.label, "thumb_url": f"/api/samples/{s.name}.png"}
                    for s in st.samples],
        "channels": list(CHANNELS), "snr_range": list(SNR_RANGE_DB),
        "default_channel": {"name": st.default_channel.name, "snr_db": st.default_channel.snr_db},
        "default_seed": int(st.default_seed),
        "upload": {"max_bytes": limits.max_bytes, "max_side": limits.max_side, "describe": limits.describe()},
        "max_instruction_chars": MAX_INSTRUCTION_CHARS, "max_turns": st.sessions.limits.max_turns,
        "baselines": rows, "system": system.config.to_json(),
        "generator": {"name": getattr(gen, "name", "?"), "resolution": int(gen.resolution),
                      "full_symbols": int(getattr(system.tx.codec, "k", 0))},
    })


async def status(request: Request) -> Response:
    st = request.app.state
    d = st.worker.status().to_json()
    d["sessions"] = len(st.sessions)
    return JSONResponse(d, headers={"Cache-Control": "no-store"})


@_endpoint
async def sample_image(request: Request) -> Response:
    st = request.app.state
    name = request.path_params["name"]
    if not _NAME.match(name):
        raise BadInput("malformed sample name")
    sample = find_sample(st.samples, name)
    async with st.sample_lock:
        if name not in st.sample_png:
            st.sample_png[name] = await asyncio.to_thread(lambda: png_bytes(_thumbnail(sample.load())))
    return Response(st.sample_png[name], media_type="image/png", headers={"Cache-Control": "max-age=3600"})


@_endpoint
async def create_session(request: Request) -> Response:
    st = request.app.state
    system, limits, store = st.system, st.upload_limits, st.sessions
    q = request.query_params
    ch = _channel(dict(q), st.default_channel)
    try:
        seed = int(q.get("seed", str(st.default_seed)))
    except ValueError:
        raise BadInput(f"seed must be an integer, got {q.get('seed')!r}") from None
    verify = _verify_options(q)
    sid, client = store.new_id(), _client(request)
    upload_path, notes = None, []
    if q.get("sample"):
        sample = find_sample(st.samples, q["sample"])
        origin = f"sample:{sample.name}"
        load = sample.load
    else:
        kind = _media_type(request)
        if not (kind.startswith("image/") or kind == "application/octet-stream"):
            raise UnsupportedMediaType("upload the photo as its raw bytes (Content-Type: image/... or "
                                       f"application/octet-stream), not {kind or 'without a content type'}")
        data = await _read_body(request, limits.max_bytes)
        if not data:
            raise ImageError("no image in the request: upload a photo or pick a sample")
        client_name = unquote(request.headers.get("x-filename", "upload"))
        upload_path = save_upload(data, st.upload_dir, sid, client_name)
        origin = f"upload:{sanitise_filename(client_name)}"

        def load():
            try:
                img, found = decode_upload(data, limits)
            except Exception:
                upload_path.unlink(missing_ok=True)
                raise
            notes.extend(found)
            return img

    def start() -> WebSession:
        prepared = system.prepare_input(load())  # the face check, whatever the image's size
        if prepared.faces_found and prepared.faces_found > 1:
            notes.append(f"{prepared.faces_found} faces found; using the one with the highest detector score")
        session = system.session(prepared if system.tx.takes_photos else prepared.image, ch, seed=seed, **verify)
        ws = WebSession(id=sid, session=session, image=prepared.image, origin=origin, notes=notes,
                        upload_path=upload_path, baselines=BaselineCache(), client=client,
                        face=prepared.face_json())
        ws.put_image("source", session.source)
        ws.put_image("start", session.current_rx_image)
        return ws

    try:
        ws = await st.worker.run("start", start)
    except Exception:
        if upload_path is not None:
            upload_path.unlink(missing_ok=True)
        raise
    store.add(ws)
    return JSONResponse(_session_json(ws), status_code=201)


def _verify_options(q) -> dict:
    """``verify_rx=1`` (and ``correction=delta|resend``) of a new session → :meth:`EditableDeepSC.session`
    keywords (receiver-verified turns); checked before any work."""
    flag = q.get("verify_rx", "0")
    if flag not in ("0", "1"):
        raise BadInput(f"verify_rx must be 0 or 1, got {flag!r}")
    if flag == "0":
        return {}
    correction = q.get("correction", DEFAULT_CORRECTION)
    if correction not in CORRECTIONS:
        raise BadInput(f"correction must be one of {', '.join(CORRECTIONS)}, got {correction!r}")
    return {"verify_rx": True, "correction": correction}


def _client(request: Request) -> str:
    return request.client.host if request.client is not None else ""


def _check_turns(store: SessionStore, ws: WebSession) -> None:
    if len(ws.session.turns) >= store.limits.max_turns:
        raise TooManyTurns(f"this session reached its limit of {store.limits.max_turns} turns; reset it")


@_endpoint
async def send(request: Request) -> Response:
    st = request.app.state
    ws = st.sessions.get(request.path_params["sid"])
    data = await _json(request)
    text = data.get("instruction")
    if not isinstance(text, str) or not text.strip():
        raise BadInput("type an instruction, e.g. \"make her smile\"")
    text = text.strip()
    if len(text) > MAX_INSTRUCTION_CHARS:
        raise BadInput(f"the instruction is longer than {MAX_INSTRUCTION_CHARS} characters")
    ch = _channel(data, ws.session.channel)
    _check_turns(st.sessions, ws)

    def run() -> dict:
        s = ws.session
        before = s.channel
        s.set_channel(ch)
        try:
            turn = s.send(text)
        except Exception:
            s.set_channel(before)
            raise
        return _turn_json(ws, turn)

    turn = await st.worker.run("send", run)
    return JSONResponse({"turn": turn, "session": _session_json(ws)})


@_endpoint
async def undo(request: Request) -> Response:
    st = request.app.state
    ws = st.sessions.get(request.path_params["sid"])
    _check_turns(st.sessions, ws)
    turn = await st.worker.run("undo", lambda: _turn_json(ws, ws.session.undo()))
    return JSONResponse({"turn": turn, "session": _session_json(ws)})


@_endpoint
async def reset(request: Request) -> Response:
    st = request.app.state
    ws = st.sessions.get(request.path_params["sid"])
    old = ws.session

    def run() -> None:
        verify = {"verify_rx": True, **old.verify} if old.verify is not None else {}
        ws.session = st.system.session(ws.image, old.channel, seed=old.seed, **verify)
        ws.images = {k: v for k, v in ws.images.items() if k == "source"}
        ws.put_image("start", ws.session.current_rx_image)

    await st.worker.run("reset", run)
    return JSONResponse({"session": _session_json(ws)})


@_endpoint
async def compare(request: Request) -> Response:
    st = request.app.state
    system = st.system
    ws = st.sessions.get(request.path_params["sid"])
    data = await _json(request)
    ch = _channel(data, ws.session.channel)
    cbrs = data.get("cbr") or {}
    if not isinstance(cbrs, dict):
        raise BadInput("cbr must be an object {baseline name: CBR}")
    try:
        if any(isinstance(v, bool) for v in cbrs.values()):
            raise TypeError
        cbrs = {str(k): float(v) for k, v in cbrs.items()}
    except (TypeError, ValueError):
        raise BadInput("every baseline CBR must be a number") from None

    def run() -> dict:
        rows = compare_turn(system, ws.session, ws.baselines, ch, cbrs, st.baselines)
        s = ws.session
        edits = [t for t in s.turns if t.action == "edit"]
        full = int(getattr(system.tx.codec, "k", 0))
        ours = {"label": "Editable-DeepSC", "image_url": _current_url(ws),
                "last_symbols": edits[-1].symbols if edits else 0,
                "last_cbr": edits[-1].cbr if edits else 0.0,
                "full_symbols": full, "full_cbr": system.cbr(full),
                "symbols_total": sum(t.symbols for t in s.turns)}
        out = []
        for r in rows:
            img, rec = r.pop("image", None), r.pop("received", None)
            r.pop("transmission", None)
            if img is not None:
                r["image_url"] = ws.put_image(f"baseline-{r['name']}", img)
                r["received_url"] = ws.put_image(f"baseline-{r['name']}-received", rec)
            out.append(r)
        return {"ours": ours, "baselines": out, "channel": {"name": ch.name, "snr_db": ch.snr_db},
                "edits": len(s.last_targets)}

    return JSONResponse(await st.worker.run("compare", run))


@_endpoint
async def session_log(request: Request) -> Response:
    ws = request.app.state.sessions.get(request.path_params["sid"])
    d = ws.session.log()
    d["web"] = {"origin": ws.origin, "notes": ws.notes,
                "channel": {"name": ws.session.channel.name, "snr_db": ws.session.channel.snr_db}}
    return Response(json.dumps(d, indent=1) + "\n", media_type="application/json", headers={
        "Content-Disposition": f'attachment; filename="edsc-session-{ws.id[:8]}.json"'})


@_endpoint
async def session_image(request: Request) -> Response:
    ws = request.app.state.sessions.get(request.path_params["sid"])
    name = request.path_params["name"]
    if not _NAME.match(name) or name not in ws.images:
        raise SessionNotFound(f"no image {name!r} in this session")
    headers = {"Cache-Control": "no-store"}
    if request.query_params.get("download"):
        headers["Content-Disposition"] = f'attachment; filename="edsc-{ws.id[:8]}-{name}.png"'
    return Response(ws.images[name], media_type="image/png", headers=headers)


@_endpoint
async def delete_session(request: Request) -> Response:
    request.app.state.sessions.remove(request.path_params["sid"])
    return JSONResponse({"deleted": True})


@contextlib.asynccontextmanager
async def lifespan(app: Starlette):
    st = app.state
    try:
        yield
    finally:
        st.worker.shutdown()
        st.sessions.clear()
        if st.own_tmp:
            shutil.rmtree(st.tmp_dir, ignore_errors=True)


ROUTES = [
    Route("/", index),
    Route("/api/config", config),
    Route("/api/status", status),
    Route("/api/samples/{name}.png", sample_image),
    Route("/api/sessions", create_session, methods=["POST"]),
    Route("/api/sessions/{sid}", delete_session, methods=["DELETE"]),
    Route("/api/sessions/{sid}/send", send, methods=["POST"]),
    Route("/api/sessions/{sid}/undo", undo, methods=["POST"]),
    Route("/api/sessions/{sid}/reset", reset, methods=["POST"]),
    Route("/api/sessions/{sid}/compare", compare, methods=["POST"]),
    Route("/api/sessions/{sid}/log", session_log),
    Route("/api/sessions/{sid}/images/{name}.png", session_image),
    Mount("/static", StaticFiles(directory=STATIC_DIR), name="static"),
]


# ---------------------------------------------------------------------- app
def create_app(system, samples: list[Sample] | None = None, *, upload_limits: UploadLimits | None = None,
               session_limits: SessionLimits | None = None, max_queue: int = 4,
               baselines: tuple[BaselineSpec, ...] = COMPARE_BASELINES, tmp_dir: str | Path | None = None,
               default_channel: ChannelConfig | None = None, default_seed: int = 0,
               allowed_hosts: tuple[str, ...] | None = LOCAL_HOSTS, upload_timeout: float = UPLOAD_TIMEOUT) -> Starlette:
    """Build the web demo around ``system``.

    Parameters
    ----------
    system : EditableDeepSC
        The models (loaded once; every request shares them through one worker thread).
    samples : list of Sample, optional
        Built-in images offered by the page (default: :func:`~editable_deepsc.web.samples.builtin_samples`).
    upload_limits : UploadLimits, optional
    session_limits : SessionLimits, optional
    max_queue : int
        Requests that may wait for the worker; more get a 503 "busy" answer at once.
    baselines : tuple of BaselineSpec
        The side-by-side panel's methods.
    tmp_dir : path, optional
        The app's temporary folder (uploads go to ``tmp_dir/uploads``). Default: a
        fresh folder from :func:`tempfile.mkdtemp`, removed at shutdown.
    default_channel : ChannelConfig, optional
        Initial channel of new sessions (AWGN, 6 dB).
    default_seed : int
        Seed the page proposes for new sessions.
    allowed_hosts : tuple of str or None
        Host names the ``Host`` header may carry (default: this machine's names); ``None``
        accepts any (a server exposed on purpose, ``edsc serve --host 0.0.0.0``).
    upload_timeout : float
        Seconds a request body may stall before the request is dropped.

    Returns
    -------
    Starlette
        Its ``app.state`` holds everything the handlers read: ``system``, ``samples``,
        ``upload_limits``, ``sessions`` (the :class:`SessionStore`), ``worker``, ``baselines``,
        ``default_channel``, ``default_seed``, ``tmp_dir``, ``upload_dir``, ``allowed_hosts``,
        ``upload_timeout``.
    """
    if samples is None:
        from editable_deepsc.web.samples import builtin_samples

        samples = builtin_samples()
    own_tmp = tmp_dir is None
    tmp = Path(tempfile.mkdtemp(prefix="edsc-web-") if own_tmp else tmp_dir).resolve()
    uploads = tmp / "uploads"
    uploads.mkdir(parents=True, exist_ok=True)

    if not upload_timeout > 0:
        raise BadInput(f"upload_timeout must be positive, got {upload_timeout}")
    app = Starlette(routes=ROUTES, lifespan=lifespan,
                    middleware=[Middleware(SecurityHeaders), Middleware(RequestGuard)])
    st = app.state
    st.system, st.samples, st.baselines = system, list(samples), tuple(baselines)
    st.upload_limits = upload_limits or UploadLimits()
    st.sessions, st.worker = SessionStore(session_limits), Worker(max_queue=max_queue)
    st.default_channel, st.default_seed = default_channel or ChannelConfig("awgn", 6.0), int(default_seed)
    st.tmp_dir, st.upload_dir, st.own_tmp = tmp, uploads, own_tmp
    st.sample_png, st.sample_lock = {}, asyncio.Lock()
    st.allowed_hosts = None if allowed_hosts is None else tuple(h.lower() for h in allowed_hosts)
    st.upload_timeout = float(upload_timeout)
    return app


__all__ = ["CSP", "LOCAL_HOSTS", "MAX_INSTRUCTION_CHARS", "UPLOAD_TIMEOUT", "create_app", "error_response",
           "example_instruction", "size_message"]
