"""The ONNX file where embedders run it: without torch or pandas, in a fresh `pip install .`,
in the visitor's browser (onnxruntime-web) and in Node, each matching Python's onnxruntime."""
from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
from conftest import ROOT, SHIPPED, cgpa, copy_repository

from data.inputs import random_students
from runtime.predictor import OnnxPredictor

SCREENSHOTS = ROOT / "tests" / "screenshots"
BLOCKED = ("torch", "pandas", "gradio", "matplotlib", "onnx", "onnxscript")


def _students(count: int, seed: int):
    grades, college = random_students(count, 5, [115, 116, 165, 241], seed=seed)
    expected = OnnxPredictor(SHIPPED / "model.onnx").predict_batch(grades, college)
    as_lists = [[None if np.isnan(g) else float(g) for g in row] for row in grades]
    return as_lists, college.tolist(), expected


def _assert_same(actual: dict, expected) -> None:
    for name, values in zip(("prediction", "low", "high"), expected):
        got = np.array([np.nan if v is None else v for v in actual[name]], dtype=np.float64)
        np.testing.assert_array_equal(np.isnan(got), np.isnan(values), err_msg=name)
        assert np.nanmax(np.abs(got - values)) <= 1e-5, name


def test_runtime_and_cli_work_with_torch_and_pandas_absent(tmp_path):
    csv = tmp_path / "cohort.csv"
    csv.write_text("2nd,3rd,College Code\n7,6,115\n7,7,999\n")
    code = f"""
import sys
for name in {BLOCKED!r}:
    sys.modules[name] = None  # any import of these now fails
import cgpa
assert cgpa.main(["predict", {str(SHIPPED)!r}, "--grades", "7.1,6.8,,7.3", "--college", "115"]) == 0
assert cgpa.main(["predict", {str(SHIPPED)!r}, "--csv", {str(csv)!r}, "--out", {str(tmp_path / "out.csv")!r}]) == 0
try:
    cgpa.main(["--help"])
except SystemExit as done:
    assert done.code == 0
"""
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "onnx: semester 5: 7.524" in done.stdout and "scored 2 of 2 rows" in done.stdout
    assert "usage: cgpa" in done.stdout and "torch:" not in done.stdout


@pytest.mark.slow
def test_a_plain_pip_install_is_the_torch_free_runtime(tmp_path):
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    source = copy_repository(tmp_path / "source")  # builds leave nothing in the working tree
    install = subprocess.run([str(venv / "bin" / "python"), "-m", "pip", "install", "-q", str(source)],
                             capture_output=True, text=True, timeout=900)
    assert install.returncode == 0, install.stderr[-2000:]
    listed = subprocess.run([str(venv / "bin" / "python"), "-m", "pip", "list", "--format=json"],
                            capture_output=True, text=True, check=True).stdout
    installed = {p["name"].lower() for p in json.loads(listed)}
    assert {"numpy", "onnxruntime", "cgpa-rnn"} <= installed
    assert not installed & {"torch", "gradio", "pandas", "matplotlib"}, installed
    csv = tmp_path / "cohort.csv"
    csv.write_text("1st,2nd,3rd,4th,College Code\n7.1,6.8,,7.3,115\n8,8,8,8,116\n")
    one = subprocess.run([str(venv / "bin" / "cgpa"), "predict", str(SHIPPED), "--backend", "onnx", "--grades",
                          "7.1,6.8,,7.3", "--college", "115"], cwd=tmp_path, capture_output=True, text=True)
    assert one.returncode == 0 and "onnx: semester 5: 7.524" in one.stdout, one.stderr
    batch = subprocess.run([str(venv / "bin" / "cgpa"), "predict", str(SHIPPED), "--csv", str(csv), "--out",
                            str(tmp_path / "scored.csv")], cwd=tmp_path, capture_output=True, text=True)
    assert batch.returncode == 0 and "scored 2 of 2 rows" in batch.stdout, batch.stderr
    refused = subprocess.run([str(venv / "bin" / "cgpa"), "predict", str(SHIPPED), "--backend", "torch",
                              "--grades", "7", "--college", "115"], cwd=tmp_path, capture_output=True, text=True)
    assert refused.returncode == 2 and "pip install 'cgpa-rnn[train]'" in refused.stderr


@pytest.mark.browser
def test_the_static_site_runs_the_model_in_the_browser(browser, ort_web_dist, static_server, tmp_path):
    site = tmp_path / "site"
    built = cgpa("web", str(SHIPPED), "--out", str(site), "--ort", str(ort_web_dist))
    assert built.returncode == 0, built.stderr
    assert {p.name for p in site.iterdir()} == {"index.html", "cgpa.js", "model.onnx", "ort"}
    page = browser.new_page(viewport={"width": 1000, "height": 700})
    page.goto(static_server(site))
    page.wait_for_function("window.cgpa !== undefined")
    page.evaluate("window.cgpa.ready")
    grades, colleges, expected = _students(300, seed=11)
    _assert_same(page.evaluate("([g, c]) => window.cgpa.predict(g, c)", [grades, colleges]), expected)

    for t, grade in enumerate(["7.1", "6.8", "", "7.3"], start=1):
        page.fill(f"#grade-{t}", grade)
    page.click("#predict")
    page.wait_for_function("document.getElementById('result').textContent.includes('interval')")
    assert page.text_content("#result").startswith("5th semester: 7.52 (80% interval 6.89 to 8.11)")
    page.fill("#grade-2", "eleven")
    page.click("#predict")
    assert "semester 2: expected a grade point" in page.text_content("#result")
    SCREENSHOTS.mkdir(exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / "static-site.png"), full_page=True)


def test_cgpa_web_refuses_what_it_cannot_build(tmp_path, run_copy):
    not_dist = cgpa("web", str(SHIPPED), "--out", str(tmp_path / "site"), "--ort", str(tmp_path))
    assert not_dist.returncode == 2 and "not an onnxruntime-web dist/ folder" in not_dist.stderr
    (run_copy / "model.pt").write_bytes((run_copy / "model.pt").read_bytes() + b" ")
    stale = cgpa("web", str(run_copy), "--out", str(tmp_path / "site"))
    assert stale.returncode == 2 and "stale" in stale.stderr
    cdn = cgpa("web", str(SHIPPED), "--out", str(tmp_path / "cdn"))
    assert cdn.returncode == 0 and "cdn.jsdelivr.net/npm/onnxruntime-web@" in (tmp_path / "cdn" / "index.html").read_text()


def test_node_scores_students_from_raw_inputs(ort_web_dist):
    grades, colleges, expected = _students(300, seed=12)
    done = subprocess.run(["node", "score.mjs", str(SHIPPED / "model.onnx"), json.dumps(grades), json.dumps(colleges)],
                          cwd=ROOT / "export" / "node", capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    answer = json.loads(done.stdout)
    assert answer["semesters"] == 5
    _assert_same(answer, expected)
