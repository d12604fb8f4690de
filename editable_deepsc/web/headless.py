"""Headless Chromium for the browser tests and the screenshot script (Debian's ``chromium``).

Playwright's own browser download does not work offline, so the Python
``playwright`` package is pointed at the system Chromium (``/usr/bin/chromium``,
from Debian's ``chromium`` package; ``scripts/install_chromium.sh`` installs it).
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

CHROMIUM_ARGS: tuple[str, ...] = (
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
)
"""Launch flags: no sandbox (CI runs as root), no GPU, no traffic of the browser's own."""

INSTALL_SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "install_chromium.sh"


def find_chromium() -> str | None:
    """Path of a Chromium binary: ``$EDSC_CHROMIUM``, ``/usr/bin/chromium`` or on ``PATH``; else None."""
    env = os.environ.get("EDSC_CHROMIUM")
    candidates = [env] if env else []
    candidates += ["/usr/bin/chromium", shutil.which("chromium") or "", shutil.which("chromium-browser") or ""]
    for c in candidates:
        if c and os.path.isfile(c) and os.access(c, os.X_OK):
            return c
    return None


def ensure_chromium(timeout: float = 1200.0) -> tuple[str | None, str]:
    """Find Chromium, installing Debian's package with ``scripts/install_chromium.sh`` if needed.

    Installation is tried only as root with ``apt-get`` available and unless
    ``EDSC_NO_BROWSER_INSTALL`` is set.

    Returns
    -------
    path : str or None
        The binary, or None if it is not there and could not be installed.
    why : str
        Why not (empty when found).
    """
    path = find_chromium()
    if path:
        return path, ""
    if os.environ.get("EDSC_NO_BROWSER_INSTALL"):
        return None, "Chromium is not installed and EDSC_NO_BROWSER_INSTALL is set"
    if not shutil.which("apt-get"):
        return None, "Chromium is not installed and apt-get is not available to install it"
    if hasattr(os, "geteuid") and os.geteuid() != 0:
        return None, "Chromium is not installed and installing it needs root (run scripts/install_chromium.sh)"
    try:
        r = subprocess.run(["bash", str(INSTALL_SCRIPT)], capture_output=True, text=True, timeout=timeout)
    except (OSError, subprocess.TimeoutExpired) as e:
        return None, f"installing Chromium failed: {e}"
    path = find_chromium()
    if path:
        return path, ""
    tail = (r.stderr or r.stdout or "").strip().splitlines()[-3:]
    return None, "installing Chromium with apt-get failed: " + " | ".join(tail)


def launch(playwright, executable_path: str | None = None):
    """Launch headless Chromium through a started Playwright (``sync_playwright().start()``)."""
    path = executable_path or find_chromium()
    if path is None:
        raise RuntimeError("Chromium not found: run scripts/install_chromium.sh (Debian package 'chromium')")
    return playwright.chromium.launch(executable_path=path, args=list(CHROMIUM_ARGS), headless=True)


__all__ = ["CHROMIUM_ARGS", "ensure_chromium", "find_chromium", "launch"]
