"""Running the web app with uvicorn (foreground for ``edsc serve``, background thread for tests)."""

from __future__ import annotations

import socket
import threading
import time
from dataclasses import dataclass

from editable_deepsc.errors import BadInput


def check_bind(host: str, port: int) -> None:
    """Validate ``host``/``port`` before loading any model.

    Raises
    ------
    BadInput
        Port outside [0, 65535] (0: any free port) or an empty host.
    """
    if not str(host).strip():
        raise BadInput("host must not be empty")
    if not 0 <= int(port) <= 65535:
        raise BadInput(f"port must be in [0, 65535], got {port}")


def allowed_hosts_for(host: str) -> tuple[str, ...] | None:
    """Host names a server bound to ``host`` answers to: this machine's names for a loopback
    address, ``host`` itself otherwise, and any (``None``) for the wildcard addresses."""
    from editable_deepsc.web.app import LOCAL_HOSTS

    h = str(host).strip().lower().strip("[]")
    if h in ("0.0.0.0", "::", ""):
        return None
    if h in LOCAL_HOSTS or h.startswith("127."):
        return tuple(dict.fromkeys((*LOCAL_HOSTS, h)))
    return (h,)


def bind_socket(host: str = "127.0.0.1", port: int = 0) -> socket.socket:
    """A listening-ready TCP socket bound to ``host:port`` (``port=0``: a free port).

    Raises
    ------
    BadInput
        The address cannot be bound (in use, not local, ...).
    """
    check_bind(host, port)
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, int(port)))
    except OSError as e:
        sock.close()
        raise BadInput(f"cannot listen on {host}:{port}: {e.strerror or e}") from None
    return sock


def serve(app, host: str = "127.0.0.1", port: int = 7860, log_level: str = "info",
          sock: socket.socket | None = None) -> None:
    """Serve ``app`` until interrupted (Ctrl-C), on ``sock`` if given, else on ``host:port``."""
    import uvicorn

    sock = sock if sock is not None else bind_socket(host, port)
    config = uvicorn.Config(app, log_level=log_level, access_log=False, timeout_graceful_shutdown=2)
    uvicorn.Server(config).run(sockets=[sock])


@dataclass
class RunningServer:
    """A uvicorn server on a background thread (tests, screenshots).

    Attributes
    ----------
    url : str
        ``http://127.0.0.1:<port>``.
    """

    url: str
    server: object
    thread: threading.Thread

    def stop(self, timeout: float = 10.0) -> None:
        self.server.should_exit = True
        self.thread.join(timeout)


def start_in_thread(app, host: str = "127.0.0.1", port: int = 0, timeout: float = 20.0) -> RunningServer:
    """Start ``app`` on a daemon thread and wait until it accepts connections.

    Raises
    ------
    RuntimeError
        The server did not start within ``timeout`` seconds.
    """
    import uvicorn

    sock = bind_socket(host, port)
    real_port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False, lifespan="on"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True, name="edsc-web-server")
    thread.start()
    t0 = time.monotonic()
    while not server.started:
        if not thread.is_alive() or time.monotonic() - t0 > timeout:
            raise RuntimeError("the web server did not start")
        time.sleep(0.02)
    return RunningServer(url=f"http://{host}:{real_port}", server=server, thread=thread)


__all__ = ["RunningServer", "allowed_hosts_for", "bind_socket", "check_bind", "serve", "start_in_thread"]
