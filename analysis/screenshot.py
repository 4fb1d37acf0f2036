"""Render an HTML report to PNG with headless Chromium: `python -m analysis.screenshot in.html out.png`."""
from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")

# Offline and quiet: no first-run UI, no background fetches, no sandbox (containers run as root).
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--hide-scrollbars"]


def find_browser() -> str | None:
    """The first Chromium-family browser on PATH, or None."""
    return next((path for name in BROWSERS if (path := shutil.which(name))), None)


def chromium_command(browser: str, page: Path, profile: Path, *, screenshot: Path | None = None,
                     size: tuple[int, int] = (1280, 2000), dump_dom: bool = False) -> list[str]:
    """The headless Chromium command line for a screenshot and/or a dump of the rendered DOM."""
    cmd = [browser, *FLAGS, f"--user-data-dir={profile}", f"--window-size={size[0]},{size[1]}"]
    if screenshot is not None:
        cmd.append(f"--screenshot={screenshot}")
    if dump_dom:
        cmd.append("--dump-dom")
    return cmd + [page.resolve().as_uri()]


def run_chromium(page: Path, *, screenshot: Path | None = None, size: tuple[int, int] = (1280, 2000),
                 dump_dom: bool = False, timeout: float = 60) -> subprocess.CompletedProcess:
    """Run headless Chromium once, in a throwaway profile; raises if no browser or on timeout."""
    browser = find_browser()
    if browser is None:
        raise FileNotFoundError("no chromium on PATH (apt-get install -y chromium)")
    with tempfile.TemporaryDirectory(prefix="stancebeam-chromium-") as profile:
        cmd = chromium_command(browser, page, Path(profile), screenshot=screenshot, size=size,
                               dump_dom=dump_dom)
        return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False,
                              stdin=subprocess.DEVNULL)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m analysis.screenshot",
                                     description="Screenshot an HTML report with headless Chromium.")
    parser.add_argument("html", type=Path)
    parser.add_argument("png", type=Path)
    parser.add_argument("--width", type=int, default=1280)
    parser.add_argument("--height", type=int, default=2000)
    parser.add_argument("--timeout", type=float, default=60, help="seconds (default 60)")
    args = parser.parse_args(argv)
    if not args.html.is_file():
        print(f"screenshot: error: no such file: {args.html}", file=sys.stderr)
        return 2
    args.png.parent.mkdir(parents=True, exist_ok=True)
    args.png.unlink(missing_ok=True)  # so a stale file never passes for a fresh screenshot
    try:
        done = run_chromium(args.html, screenshot=args.png.resolve(),
                            size=(args.width, args.height), timeout=args.timeout)
    except (FileNotFoundError, subprocess.TimeoutExpired) as exc:
        print(f"screenshot: error: {exc}", file=sys.stderr)
        return 2
    if done.returncode != 0 or not args.png.is_file():
        print(f"screenshot: error: chromium exited {done.returncode}\n{done.stderr[-2000:]}",
              file=sys.stderr)
        return 2
    print(f"wrote {args.png}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
