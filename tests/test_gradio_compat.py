"""The one door to Gradio's internals (demo/gradio_compat.py): this Gradio has what it relies on,
a Gradio that moved any of it is named and refused, each patch fails closed; and importing any
module of the project makes no folder and installs no handler."""
from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import tomllib
from concurrent.futures import ThreadPoolExecutor
from types import SimpleNamespace

import gradio as gr
import pytest
from conftest import ROOT, port_of, request_from

from cgpa_rnn.demo import gradio_compat
from cgpa_rnn.demo.middleware import ReprFreeErrors


def test_this_gradio_has_everything_the_demo_relies_on():
    pins = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]["demo"]
    assert f"gradio=={gradio_compat.TESTED_VERSION}" in pins and gr.__version__ == gradio_compat.TESTED_VERSION
    with gr.Blocks() as demo:
        gr.Textbox()
    demo.queue()
    assert gradio_compat.problems(demo) == []
    gradio_compat.check(demo)


def test_a_gradio_that_moved_what_the_demo_relies_on_is_named_and_refused(monkeypatch):
    monkeypatch.setattr(gr.mcp, "tool", lambda: (lambda fn: fn))  # a release that marks tools some other way
    unqueued = SimpleNamespace()  # a Blocks whose queue is kept elsewhere
    found = gradio_compat.problems(unqueued)
    assert found == ["gr.mcp.tool() no longer marks a function with _mcp_type",
                     "the queue no longer keeps its events in event_queue_per_concurrency_id"]
    with pytest.raises(gradio_compat.GradioChanged, match=f"Install gradio=={gradio_compat.TESTED_VERSION}"):
        gradio_compat.check(unqueued)


def _run(coroutine) -> None:
    """Run a coroutine to its end in a thread of its own (a browser test's Playwright may hold this one's loop)."""
    with ThreadPoolExecutor(1) as thread:
        thread.submit(asyncio.run, coroutine).result()


def _lifespan_keeps(demo) -> None:
    async def run():
        async with gradio_compat.marked_tools_only(demo)(None):
            pass

    _run(run())


def test_only_marked_functions_stay_tools_and_a_moved_tool_table_stops_the_server():
    marked = gr.mcp.tool()(lambda: None)
    fns = {0: SimpleNamespace(api_name="predict_json", fn=marked), 1: SimpleNamespace(api_name="predict", fn=print)}
    server = SimpleNamespace(tool_to_endpoint={"predict_json": "/predict_json", "predict": "/predict"})
    _lifespan_keeps(SimpleNamespace(mcp_server_obj=server, fns=fns))
    assert server.tool_to_endpoint == {"predict_json": "/predict_json"}
    unmarked = {0: SimpleNamespace(api_name="predict_json", fn=print)}  # a mark Gradio no longer reads: no tool
    server = SimpleNamespace(tool_to_endpoint={"predict_json": "/predict_json"})
    _lifespan_keeps(SimpleNamespace(mcp_server_obj=server, fns=unmarked))
    assert server.tool_to_endpoint == {}
    with pytest.raises(gradio_compat.GradioChanged, match="no table of tools"):
        _lifespan_keeps(SimpleNamespace(mcp_server_obj=SimpleNamespace(tools=[]), fns=fns))


@pytest.mark.parametrize("body", [b'{"inputs": ["7.1"]}', b'{"data": "7.1"}', b'["7.1"]'])
def test_a_call_in_a_shape_gradio_compat_does_not_know_is_refused_not_passed_on(app_url, body):
    status, answer = request_from(port_of(app_url), "127.0.2.1", "POST", "/gradio_api/call/predict", body,
                                  {"content-type": "application/json"})
    assert status == 400 and 'a list of values under \\"data\\"' in answer.decode()


def test_a_call_of_an_endpoint_that_does_not_exist_is_a_sentence_not_a_traceback(app_url, capfd):
    status, answer = request_from(port_of(app_url), "127.0.2.2", "POST", "/gradio_api/call/nonexistent",
                                  b'{"data": []}', {"content-type": "application/json"})
    assert status == 404 and "no endpoint named 'nonexistent'" in answer.decode()
    assert "Traceback" not in capfd.readouterr().err


@pytest.mark.parametrize("leak", [b"<gradio.components.textbox.Textbox object at 0x7f>", b"<class 'Textbox'>",
                                  b"Traceback (most recent call last):\\n  File",
                                  b"1 validation error, input_value={'path': '/etc/passwd'}"])
def test_python_insides_in_an_error_body_are_never_passed_on(leak):
    sent = []

    async def app(scope, receive, send):
        await send({"type": "http.response.start", "status": 500, "headers": [(b"content-length", b"99")]})
        await send({"type": "http.response.body", "body": b'{"error": "' + leak + b'"}'})

    async def send(message):
        sent.append(message)

    _run(ReprFreeErrors(app)({"type": "http"}, None, send))
    assert json.loads(sent[1]["body"])["detail"].startswith("the request does not match")
    assert dict(sent[0]["headers"])[b"content-length"] == str(len(sent[1]["body"])).encode()


def test_importing_any_module_makes_no_folder_and_installs_no_handler(tmp_path):
    """Every module of the installed package, imported in a fresh process whose temp folder is empty."""
    script = """
import atexit, importlib, os, pkgutil, signal, sys
import gradio, matplotlib.figure, onnx, onnxruntime, pandas, torch  # what they register themselves is theirs
before = atexit._ncallbacks()
names = []
for package in PACKAGES:  # each one's own folder (a checkout's cgpa_rnn also reaches the repository's root)
    folder = importlib.import_module(package).__path__[0]
    names += [f"{package}.{m.name}" for m in pkgutil.iter_modules([folder]) if m.name != "__main__"]
for name in names:
    importlib.import_module(name)
assert len(names) > 40, names
print(atexit._ncallbacks() - before, signal.getsignal(signal.SIGTERM) == signal.SIG_DFL,
      "GRADIO_TEMP_DIR" in os.environ, sorted(os.listdir(os.environ["TMPDIR"])))
"""
    packages = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"]
    script = f"PACKAGES = {packages!r}\n" + script
    environment = {"PATH": "/usr/bin:/bin", "TMPDIR": str(tmp_path), "HOME": str(tmp_path)}
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=environment,
                          cwd=tmp_path, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    callbacks, default_sigterm, temp_dir_set, made = done.stdout.split(" ", 3)
    assert (callbacks, default_sigterm, temp_dir_set) == ("0", "True", "False")
    assert "cgpa-demo" not in made, made
