"""Every snippet in README.md and docs/ runs as written: the command-line block in a copy of
the repository, the Python snippets against the shipped model (and the demo), the Node lines,
and the page's JavaScript in Chromium. The model card's reproduce commands are the README's."""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from conftest import ROOT, SHIPPED, copy_repository

README = (ROOT / "README.md").read_text()
# The README and the pages it links, as one text: each `## section` name is unique across them.
DOCS = "\n".join([README, *(path.read_text() for path in sorted((ROOT / "docs").glob("*.md")))])
BIN = Path(sys.executable).parent  # the environment's `cgpa` script, as the README's set-up leaves it


def fenced(language: str, section: str | None = None) -> list[str]:
    """The ```language blocks of the README and docs/, optionally only those of one `## section`
    (which must exist: a renamed section fails here, not by finding nothing)."""
    text = DOCS
    if section is not None:
        assert DOCS.count(f"\n## {section}\n") == 1, section
        text = DOCS.split(f"\n## {section}\n", 1)[1].split("\n## ", 1)[0]
    return re.findall(rf"```{language}\n(.*?)```", text, flags=re.S)


def commands(block: str) -> list[str]:
    return [line.strip() for line in block.splitlines() if line.strip() and not line.startswith("#")]


SITE_BUILD_BLOCK = fenced("sh", "A free static Space")[0]  # npm install, `cgpa web ... --ort ...`, the upload
NPM_INSTALL = "(cd export/node && npm install)"  # what the ort_web_dist fixture has done


def test_every_snippet_is_of_a_language_the_tests_run():
    languages = re.findall(r"^```(\w*)$", DOCS, flags=re.M)[::2]  # opening fences only
    assert set(languages) <= {"sh", "python", "js", "java"}, languages  # java: a sketch, not run here


def test_every_shell_line_is_run_by_a_test_or_is_an_upload():
    """The command-line, reproduce and Node blocks run below; the hosting blocks' site build runs in
    the browser test; what remains are uploads to the Hub, which no test may make."""
    tested = {*fenced("sh", "The command line"), *fenced("sh", "In Node"), SITE_BUILD_BLOCK}
    rest = [line for block in fenced("sh") if block not in tested for line in commands(block)]
    rest += [line for line in commands(SITE_BUILD_BLOCK)[2:]]
    assert rest and all(line.startswith(("hf upload ", "git archive ")) for line in rest), rest


def test_the_reproduce_commands_are_the_cards():
    listed = commands(fenced("sh", "The command line")[1])
    card = (SHIPPED / "MODEL_CARD.md").read_text()
    assert listed == [line for line in card.splitlines() if line.startswith("cgpa ")]
    assert all(line.split()[0] == "cgpa" and "model/default" in line for line in listed)


def _serve_demo(line: str, cwd: Path, env: dict) -> None:
    """`cgpa demo ... --port N` serves until stopped: it must answer, then it is stopped."""
    server = subprocess.Popen(line, shell=True, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                              text=True, start_new_session=True)
    port = re.search(r"--port (\d+)", line).group(1)
    try:
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            assert server.poll() is None, server.stdout.read()
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/config", timeout=5) as answer:
                    assert answer.status == 200
                if "--mcp" in line:  # the tools an agent lists: the stateless endpoints, described
                    with urllib.request.urlopen(f"http://127.0.0.1:{port}/gradio_api/mcp/schema", timeout=30) as answer:
                        tools = {tool["name"]: tool for tool in json.load(answer)}
                    assert {"predict_student", "score_cohort"} <= set(tools) and tools["predict_student"]["description"]
                return
            except OSError:
                time.sleep(1)
        pytest.fail(f"{line!r} did not answer within 180 s")
    finally:
        os.killpg(server.pid, 15)
        server.wait(timeout=30)


@pytest.mark.slow
def test_the_command_line_block_runs_as_written(tmp_path):
    work = copy_repository(tmp_path / "clone")
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}"}
    for line in commands(fenced("sh", "The command line")[0]):
        for path in re.findall(r"(?:--csv|--data) (\S+)", line):
            assert (work / path).is_file(), f"{line!r} names {path}, which the repository does not have"
        if line.startswith("cgpa demo"):
            _serve_demo(line, work, env)
            continue
        done = subprocess.run(line, shell=True, cwd=work, env=env, capture_output=True, text=True, timeout=900)
        assert done.returncode == 0, f"{line!r} failed:\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}"
    assert (work / "scored.csv").is_file() and (work / "site" / "index.html").is_file()
    assert (work / "hub-model" / "model.onnx").is_file()
    ignored = subprocess.run(["git", "check-ignore", "runs/", "site/", "hub-model/", "scored.csv", "scored-last.csv"],
                             cwd=ROOT, capture_output=True, text=True)
    assert len(ignored.stdout.split()) == 5, "what the README's commands write is not in .gitignore"


EMBEDDING_SNIPPETS = (fenced("python", "Embedding the ONNX model") + fenced("python", "Check your integration")
                      + fenced("python", "The why of a forecast: explain.onnx"))


@pytest.mark.parametrize("index", range(len(EMBEDDING_SNIPPETS)))
def test_the_embedding_snippets_run_with_only_onnxruntime(index):
    code = EMBEDDING_SNIPPETS[index]
    guarded = "import sys\nsys.modules['torch'] = None\nsys.modules['pandas'] = None\n" + code
    done = subprocess.run([sys.executable, "-c", guarded], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert re.search(r"next semester: \d+\.\d\d \(80% interval \d+\.\d\d-\d+\.\d\d\)|\d+ cases agree|"
                     r"prior \d+\.\d\d \+ correction [+-]\d+\.\d\d = \d+\.\d\d", done.stdout), done.stdout


def test_the_api_snippets_run_against_the_demo(app_url, monkeypatch, capsys):
    monkeypatch.chdir(ROOT)  # the snippets name the shipped data set by its path in the repository
    snippets = fenced("python", "The demo's API") + fenced("python", "Agents (MCP)")
    assert snippets and all("http://127.0.0.1:7860/" in code for code in snippets)  # each one is run below
    for code in snippets:
        exec(compile(code.replace("http://127.0.0.1:7860/", app_url), "docs/demo.md", "exec"), {})
    printed = capsys.readouterr().out
    assert re.search(r"\d+\.\d+ \d+\.\d+ \d+\.\d+", printed) and "students scored" in printed, printed


def test_the_node_lines_run(ort_web_dist):
    lines = commands(fenced("sh", "In Node")[0])
    assert lines[0] == "cd export/node && npm install"  # what the ort_web_dist fixture has done
    for line in lines[1:]:
        done = subprocess.run(line, shell=True, cwd=ROOT / "export" / "node", capture_output=True, text=True,
                              timeout=300)
        assert done.returncode == 0, f"{line!r}: {done.stderr}"
        assert done.stdout.strip(), line


@pytest.mark.browser
def test_the_page_snippet_runs_in_the_browser(browser, ort_web_dist, static_server):
    install, build = commands(SITE_BUILD_BLOCK)[:2]
    assert install == NPM_INSTALL and build.startswith("cgpa web model/default --out site --ort ")
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}"}
    done = subprocess.run(build, shell=True, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr  # site/ is ignored by git; the command replaces only its own folder
    site = ROOT / "site"
    page = browser.new_page()
    try:
        page.goto(static_server(site) + "index.html")
        snippet = fenced("js", "In the browser: the advisor's workflow as a free static page")[0]
        result = page.evaluate(f"async () => {{ {snippet}\n return {{ prediction, low, high }}; }}")
    finally:
        page.close()
    assert 0 < result["low"][0] <= result["prediction"][0] <= result["high"][0] <= 10
