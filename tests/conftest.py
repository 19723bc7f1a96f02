"""Shared fixtures: the real data shipped in data/, tiny synthetic cohorts, and one small
trained-and-exported run per cell type."""
from __future__ import annotations

import http.client
import os
import shutil
import subprocess
import sys
import threading
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from cgpa_rnn.port import free_port

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

ROOT = Path(__file__).resolve().parent.parent
SHIPPED = ROOT / "model" / "default"
IN_CI = bool(os.environ.get("CI"))


@pytest.fixture(scope="session")
def real_data() -> Path:
    from cgpa_rnn.data import SHIPPED_DATA

    return SHIPPED_DATA


def tiny_config(cell: str, **overrides):
    from cgpa_rnn.model.config import ModelConfig, TrainConfig

    values = dict(max_epochs=25, patience=10, tune_weight_decay=(), seed=0)
    values.update(overrides)
    return TrainConfig(model=ModelConfig(cell=cell, hidden=6, ensemble=1), **values)


@pytest.fixture(scope="session")
def tiny_cohort():
    from cgpa_rnn.data.synthetic import synthetic_cohort

    return synthetic_cohort(students=60, seed=3)


@pytest.fixture(scope="session")
def exported_runs(tmp_path_factory, tiny_cohort) -> dict[str, Path]:
    """One trained, exported run directory per cell type, built once per test session."""
    from cgpa_rnn.export import pipeline
    from cgpa_rnn.model.config import CELLS

    runs = {}
    for cell in CELLS:
        run = tmp_path_factory.mktemp(f"run-{cell}")
        pipeline.train(tiny_cohort, tiny_config(cell), run, console=False)
        pipeline.export(run)
        runs[cell] = run
    return runs


@pytest.fixture()
def run_copy(exported_runs, tmp_path) -> Path:
    """A private copy of the elman run, for tests that damage or change files."""
    target = tmp_path / "run"
    shutil.copytree(exported_runs["elman"], target)
    return target


def cgpa(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess:
    """The real console script, as a user runs it."""
    return subprocess.run([sys.executable, "-m", "cgpa_rnn", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=600)


def copy_repository(destination: Path) -> Path:
    """The repository's own files (tracked, or new and not ignored) copied to `destination`."""
    listed = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=ROOT,
                            capture_output=True, text=True, check=True).stdout
    for name in listed.split("\0"):
        if name and (ROOT / name).is_file():
            (destination / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, destination / name)
    return destination


@pytest.fixture(scope="session")
def app_url():
    from cgpa_rnn.demo.app import build_demo, launch

    demo = build_demo(SHIPPED)
    port = free_port()
    launch(demo, server_name="127.0.0.1", port=port, prevent_thread_lock=True, quiet=True)
    yield f"http://127.0.0.1:{port}/"
    demo.close()


def port_of(url: str) -> int:
    return int(url.rstrip("/").rsplit(":", 1)[1])


def connection_from(port: int, address: str) -> http.client.HTTPConnection:
    """A connection to the local server from `address` (loopback has many: 127.0.0.x), so a test can
    be several clients, each with its own share of the server (demo/fairness.py)."""
    return http.client.HTTPConnection("127.0.0.1", port, timeout=60, source_address=(address, 0))


def request_from(port: int, address: str, method: str, path: str, body=None, headers=None) -> tuple[int, bytes]:
    connection = connection_from(port, address)
    try:
        connection.request(method, path, body, headers or {})
        answer = connection.getresponse()
        return answer.status, answer.read()
    finally:
        connection.close()


def need(tool: str) -> str:
    """A program the test needs: skipped without it on a developer's machine, required in CI."""
    found = shutil.which(tool)
    if not found:
        if IN_CI:
            pytest.fail(f"CI must run this test, but {tool} is not installed (.ci/run installs it)")
        pytest.skip(f"{tool} is not installed")
    return found


@pytest.fixture(scope="session")
def browser():
    """Debian's chromium, headless, driven by playwright."""
    need("chromium")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        # Background networking off: this machine has no internet and Chromium would keep trying.
        instance = playwright.chromium.launch(executable_path=shutil.which("chromium"), headless=True, args=[
            "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
            "--disable-sync", "--no-first-run"])
        yield instance
        instance.close()


@pytest.fixture(scope="session")
def ort_web_dist() -> Path:
    """onnxruntime-web's dist/ folder, installed from the npm registry by export/node/package.json."""
    npm = need("npm")
    need("node")
    folder = ROOT / "export" / "node"
    dist = folder / "node_modules" / "onnxruntime-web" / "dist"
    if not (dist / "ort.wasm.min.js").is_file():
        subprocess.run([npm, "install", "--no-audit", "--no-fund", "--loglevel=error"], cwd=folder, check=True,
                       capture_output=True, timeout=600)
    return dist


@pytest.fixture()
def static_server():
    """Serve a folder on a free loopback port; yields a function folder -> URL."""
    servers = []

    def serve(folder: Path) -> str:
        server = ThreadingHTTPServer(("127.0.0.1", 0), partial(_QuietHandler, directory=str(folder)))
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return f"http://127.0.0.1:{server.server_address[1]}/"
    yield serve
    for server in servers:
        server.shutdown()


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass
