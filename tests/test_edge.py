"""The ONNX file where embedders run it: without torch or pandas, and in a fresh `pip install .`
(the browser and Node: tests/test_site.py)."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest
from conftest import ROOT, SHIPPED, copy_repository

BLOCKED = ("torch", "pandas", "gradio", "matplotlib", "onnx", "onnxscript")


def test_runtime_and_cli_work_with_torch_and_pandas_absent(tmp_path):
    csv = tmp_path / "cohort.csv"
    csv.write_text("2nd,3rd,College Code\n7,6,115\n7,7,999\n")
    code = f"""
import sys
for name in {BLOCKED!r}:
    sys.modules[name] = None  # any import of these now fails
from cgpa_rnn import cli as cgpa
assert cgpa.main(["predict", {str(SHIPPED)!r}, "--grades", "7.1,6.8,,7.3", "--college", "115"]) == 0
assert cgpa.main(["predict", {str(SHIPPED)!r}, "--csv", {str(csv)!r}, "--out", {str(tmp_path / "out.csv")!r}]) == 0
try:
    cgpa.main(["--help"])
except SystemExit as done:
    assert done.code == 0
"""
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "onnx: semester 5: 7.323" in done.stdout and "scored 2 of 2 rows" in done.stdout
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
    assert one.returncode == 0 and "onnx: semester 5: 7.323" in one.stdout, one.stderr
    batch = subprocess.run([str(venv / "bin" / "cgpa"), "predict", str(SHIPPED), "--csv", str(csv), "--out",
                            str(tmp_path / "scored.csv")], cwd=tmp_path, capture_output=True, text=True)
    assert batch.returncode == 0 and "scored 2 of 2 rows" in batch.stdout, batch.stderr
    refused = subprocess.run([str(venv / "bin" / "cgpa"), "predict", str(SHIPPED), "--backend", "torch",
                              "--grades", "7", "--college", "115"], cwd=tmp_path, capture_output=True, text=True)
    assert refused.returncode == 2 and "pip install 'cgpa-rnn[train]'" in refused.stderr
