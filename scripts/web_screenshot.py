"""Screenshot of a web-demo session in headless Chromium → docs/img/web_session.png.

Starts the app on a free local port, picks a sample, sends a few instructions,
turns on the baseline comparison and saves a full-page screenshot.

    .venv/bin/python scripts/web_screenshot.py                 # built-in system (needs its weights)
    .venv/bin/python scripts/web_screenshot.py --toy           # the 16x16 toy system of the tests

Needs Debian's chromium (scripts/install_chromium.sh) and the playwright package.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def build(toy: bool, inversion: str = "encoder"):
    if toy:
        sys.path.insert(0, str(ROOT / "tests"))
        from web_toys import toy_samples, toy_system

        system = toy_system()
        return system, toy_samples(system), ["make her smile", "a bit more", "now older"]
    from editable_deepsc.system import EditableDeepSC, SystemConfig
    from editable_deepsc.web.samples import builtin_samples

    system = EditableDeepSC.load(SystemConfig(inversion=inversion))
    return system, builtin_samples(), ["make her smile", "a bit more", "now make her older"]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--toy", action="store_true", help="Use the toy system of the tests (no weights).")
    ap.add_argument("--out", default=str(ROOT / "docs" / "img" / "web_session.png"))
    ap.add_argument("--sample", default=None, help="Sample name (default: the first one).")
    ap.add_argument("--snr", type=float, default=6.0)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--no-compare", action="store_true", help="Leave the baseline panel off.")
    ap.add_argument("--inversion", default="encoder", choices=["encoder", "hybrid", "optimize"],
                    help="Image semantic encoder mode of the built-in system.")
    args = ap.parse_args(argv)

    from playwright.sync_api import sync_playwright

    from editable_deepsc.channel.config import ChannelConfig
    from editable_deepsc.web.app import create_app
    from editable_deepsc.web.headless import ensure_chromium, launch
    from editable_deepsc.web.server import start_in_thread

    chromium, why = ensure_chromium()
    if chromium is None:
        print(f"error: {why}", file=sys.stderr)
        return 2
    system, samples, instructions = build(args.toy, args.inversion)
    app = create_app(system, samples, default_channel=ChannelConfig("awgn", args.snr), default_seed=args.seed)
    srv = start_in_thread(app)
    pw = sync_playwright().start()
    browser = launch(pw, chromium)
    t0 = time.perf_counter()
    try:
        page = browser.new_page(viewport={"width": 1440, "height": 1000}, device_scale_factor=1)
        page.set_default_timeout(300_000)
        page.goto(srv.url)
        page.wait_for_selector("body[data-ready='1']")
        name = args.sample or samples[0].name
        page.click(f".samples button[data-sample='{name}']")
        page.locator("#session-info", has_text="sample:").wait_for()
        if not args.no_compare:
            page.check("#compare-toggle")
        for i, text in enumerate(instructions):
            page.fill("#instruction", text)
            page.click("#send")
            page.locator(f"#history .turn[data-index='{i}']").wait_for()
        if not args.no_compare:
            page.locator(f"#compare[data-turns='{len(instructions)}']:not([data-loading])").wait_for()
        page.locator("#status[data-state='idle']").wait_for()
        out = Path(args.out)
        out.parent.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(out), full_page=True)
        print(f"wrote {out} ({'toy' if args.toy else 'built-in'} system, {time.perf_counter() - t0:.1f} s)")
    finally:
        browser.close()
        pw.stop()
        srv.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
