"""The Hugging Face Space, built as the Hub builds it: the tracked files alone in an empty
folder, a fresh virtual environment from requirements.txt, `python app.py`."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.request

import pytest
from conftest import copy_repository, free_port


def _wait_for(url: str, server: subprocess.Popen, seconds: float = 180) -> dict:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if server.poll() is not None:
            pytest.fail(f"app.py exited with {server.returncode}:\n{server.stdout.read()}")
        try:
            with urllib.request.urlopen(url + "config", timeout=5) as answer:
                return json.load(answer)
        except OSError:
            time.sleep(1)
    pytest.fail(f"app.py did not answer at {url} within {seconds} s")


@pytest.mark.slow
def test_the_space_builds_and_serves_from_its_own_files(tmp_path):
    from gradio_client import Client

    space = copy_repository(tmp_path / "lonely" / "space")  # its parent holds nothing else beside it
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    python = str(venv / "bin" / "python")
    # PyTorch's CPU index is out of reach here: pip warns and takes the same pins from PyPI.
    install = subprocess.run([python, "-m", "pip", "install", "-q", "--retries", "0", "--timeout", "5",
                              "-r", "requirements.txt"], cwd=space, capture_output=True, text=True, timeout=1200)
    assert install.returncode == 0, install.stderr[-3000:]

    port = free_port()
    env = {**os.environ, "GRADIO_SERVER_PORT": str(port), "GRADIO_SERVER_NAME": "127.0.0.1",
           "GRADIO_ANALYTICS_ENABLED": "False", "HF_HUB_OFFLINE": "1", "PYTHONPATH": ""}
    server = subprocess.Popen([python, "app.py"], cwd=space, env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True)
    try:
        url = f"http://127.0.0.1:{port}/"
        config = _wait_for(url, server)
        samples = [c["props"].get("samples") for c in config["components"] if c.get("type") == "dataset"]
        assert samples and len(samples[0]) >= 3, "the Space shows no examples from the shipped data"
        answer = Client(url, verbose=False).predict("7.1", "6.8", "", "7.3", "", "115", api_name="/predict")
        torch_prediction, onnx_prediction, difference = answer[0], answer[1], answer[2]
        assert 0 < float(onnx_prediction) <= 10 and torch_prediction == onnx_prediction and float(difference) <= 1e-5
    finally:
        server.terminate()
        server.wait(timeout=30)
