"""What the static site costs a visitor: bytes on the wire until the model is ready, and time
to the first prediction, in Chromium with an empty cache, as two kinds of static host serve it.

    python -m cgpa_rnn.export.site_bench SITE [--runs 3] [--mbps 20]

`plain` is `python -m http.server`: every file as it is. `precompressed` is a host that sends
the `.br`/`.gz` file beside a file when the browser accepts that encoding (nginx
gzip_static/brotli_static, Caddy's `precompressed`, ...). Bytes are counted by the server
(headers and bodies); times are the browser's, from navigation start, on loopback and with
the network throttled to a typical connection. Needs playwright and Debian's chromium.
"""
from __future__ import annotations

import argparse
import importlib.util
import mimetypes
import shutil
import statistics
import sys
import threading
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

ENCODINGS = (("br", ".br"), ("gzip", ".gz"))


class _Counter:
    """A write-only stream that counts what passes through it."""

    def __init__(self, stream, server):
        self.stream, self.server = stream, server

    def write(self, data) -> int:
        with self.server.lock:
            self.server.bytes_sent += len(data)
        return self.stream.write(data)

    def __getattr__(self, name):  # flush, closed, ... as the socket's stream has them
        return getattr(self.stream, name)


class PlainHandler(SimpleHTTPRequestHandler):
    """`python -m http.server`, counting the bytes it sends."""

    def setup(self):
        super().setup()
        self.wfile = _Counter(self.wfile, self.server)

    def log_message(self, *args):
        pass


class PrecompressedHandler(PlainHandler):
    """Sends FILE.br or FILE.gz for FILE when the request accepts that encoding."""

    def send_head(self):
        path = Path(self.translate_path(self.path))
        accepted = {part.split(";")[0].strip() for part in self.headers.get("Accept-Encoding", "").split(",")}
        for encoding, suffix in ENCODINGS:
            packed = path.with_name(path.name + suffix)
            if encoding in accepted and path.is_file() and packed.is_file():
                handle = open(packed, "rb")
                self.send_response(200)
                self.send_header("Content-Type", mimetypes.guess_type(path.name)[0] or "application/octet-stream")
                self.send_header("Content-Encoding", encoding)
                self.send_header("Content-Length", str(packed.stat().st_size))
                self.send_header("Vary", "Accept-Encoding")
                self.end_headers()
                return handle
        return super().send_head()


def serve(folder: str | Path, precompressed: bool) -> ThreadingHTTPServer:
    """A loopback server for `folder` on a free port; the caller shuts it down."""
    handler = PrecompressedHandler if precompressed else PlainHandler
    server = ThreadingHTTPServer(("127.0.0.1", 0), partial(handler, directory=str(folder)))
    server.lock, server.bytes_sent = threading.Lock(), 0
    server.url = f"http://127.0.0.1:{server.server_address[1]}/"
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def load_once(browser, server, mbps: float | None = None) -> dict:
    """One cold visit: a fresh browser context, the page until ready, then one prediction."""
    context = browser.new_context()
    page = context.new_page()
    if mbps:
        cdp = context.new_cdp_session(page)
        cdp.send("Network.enable")
        cdp.send("Network.emulateNetworkConditions", {"offline": False, "latency": 20,
                                                      "downloadThroughput": mbps * 1e6 / 8,
                                                      "uploadThroughput": mbps * 1e6 / 8})
    with server.lock:
        server.bytes_sent = 0
    page.goto(server.url)
    page.wait_for_function("window.cgpa !== undefined")
    ready_ms = page.evaluate("window.cgpa.ready.then(() => performance.now())")
    with server.lock:
        ready_bytes = server.bytes_sent
    first_ms = page.evaluate("window.cgpa.predict([[7.1, 6.8, null, 7.3]], [115]).then(() => performance.now())")
    context.close()
    return {"bytes": ready_bytes, "ready_ms": ready_ms, "first_prediction_ms": first_ms}


def site_bench(site: str | Path, runs: int = 3, mbps: float = 20.0) -> list[dict]:
    from playwright.sync_api import sync_playwright

    rows = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=shutil.which("chromium"), headless=True,
                                             args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"])
        for precompressed in (False, True):
            server = serve(site, precompressed)
            try:
                for speed in (None, mbps):
                    visits = [load_once(browser, server, speed) for _ in range(runs)]
                    rows.append({"host": "precompressed" if precompressed else "plain (python -m http.server)",
                                 "network": f"{mbps:g} Mbps" if speed else "loopback",
                                 "bytes": visits[0]["bytes"],
                                 "ready_ms": statistics.median(v["ready_ms"] for v in visits),
                                 "first_prediction_ms": statistics.median(v["first_prediction_ms"] for v in visits)})
            finally:
                server.shutdown()
        browser.close()
    return rows


def format_site_bench(rows: list[dict]) -> str:
    lines = [f"{'host':32} {'network':9} {'MB until ready':>15} {'ready ms':>9} {'first prediction ms':>20}"]
    for row in rows:
        lines.append(f"{row['host']:32} {row['network']:9} {row['bytes'] / 1e6:15.2f} {row['ready_ms']:9.0f} "
                     f"{row['first_prediction_ms']:20.0f}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m cgpa_rnn.export.site_bench", description=__doc__.split("\n")[0])
    parser.add_argument("site", help="a folder written by `cgpa web`")
    parser.add_argument("--runs", type=int, default=3, help="cold visits per row (median)")
    parser.add_argument("--mbps", type=float, default=20.0, help="the throttled connection's speed")
    args = parser.parse_args(argv)
    if importlib.util.find_spec("playwright") is None or shutil.which("chromium") is None:
        sys.exit('error: the site benchmark needs playwright (pip install ".[test]") and Debian\'s chromium '
                 "(apt-get install chromium)")
    print(format_site_bench(site_bench(args.site, args.runs, args.mbps)))


if __name__ == "__main__":
    main()
