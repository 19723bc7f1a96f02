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
    assert "onnx: 5th semester (0-10): 7.504" in done.stdout and "scored 2 of 2 rows" in done.stdout
    assert "usage: cgpa" in done.stdout and "torch:" not in done.stdout


EMBEDDER_SCRIPT = """
import sys
from cgpa_rnn.predictor import OnnxPredictor
from cgpa_rnn.scoring import score_csv
predictor = OnnxPredictor(sys.argv[1])
print(f"{predictor.predict('7.1,6.8,,7.3', 115).prediction:.3f}")
print(int(score_csv(sys.argv[2], {"onnx": predictor}).ok.sum()), "scored")
"""


def _installed_files(pip_show: str) -> tuple[set[str], set[str]]:
    """From `pip show -f`: the top-level names in site-packages (dist-info aside), and the files
    installed outside it (the console script)."""
    files = pip_show.split("Files:", 1)[1].split()
    outside = {name for name in files if name.startswith("../")}
    return {name.split("/")[0] for name in set(files) - outside if not name.split("/")[0].endswith(".dist-info")}, \
        outside


@pytest.mark.slow
def test_a_plain_pip_install_is_the_torch_free_runtime_under_one_name(tmp_path):
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    python, command = str(venv / "bin" / "python"), str(venv / "bin" / "cgpa")
    source = copy_repository(tmp_path / "source")  # builds leave nothing in the working tree
    install = subprocess.run([python, "-m", "pip", "install", "-q", str(source)], capture_output=True, text=True,
                             timeout=900)
    assert install.returncode == 0, install.stderr[-2000:]
    listed = subprocess.run([python, "-m", "pip", "list", "--format=json"], capture_output=True, text=True,
                            check=True).stdout
    installed = {p["name"].lower() for p in json.loads(listed)}
    assert {"numpy", "onnxruntime", "cgpa-rnn"} <= installed
    assert not installed & {"torch", "gradio", "pandas", "matplotlib"}, installed
    shown = subprocess.run([python, "-m", "pip", "show", "-f", "cgpa-rnn"], capture_output=True, text=True,
                           check=True).stdout
    assert _installed_files(shown) == ({"cgpa_rnn"}, {"../../../bin/cgpa"}), shown

    # An embedder's folder with modules named like the repository's folders: ours never meet them.
    work = tmp_path / "embedder"
    work.mkdir()
    for name in ("model", "data", "runtime", "export", "demo"):
        (work / f"{name}.py").write_text(f"raise SystemExit('the embedder\\'s own {name}.py was imported')\n")
    (work / "score.py").write_text(EMBEDDER_SCRIPT)
    csv = work / "cohort.csv"
    csv.write_text("1st,2nd,3rd,4th,College Code\n7.1,6.8,,7.3,115\n8,8,8,8,116\n")
    script = subprocess.run([python, "score.py", str(SHIPPED / "model.onnx"), str(csv)], cwd=work,
                            capture_output=True, text=True, timeout=120)
    assert script.returncode == 0 and script.stdout.split() == ["7.504", "2", "scored"], script.stdout + script.stderr

    def run(*args):
        return subprocess.run([command, *args], cwd=work, capture_output=True, text=True, timeout=300)

    one = run("predict", str(SHIPPED), "--grades", "7.1,6.8,,7.3", "--college", "115")
    assert one.returncode == 0 and "onnx: 5th semester (0-10): 7.504" in one.stdout, one.stderr
    assert "torch" not in one.stdout
    batch = run("predict", str(SHIPPED), "--csv", str(csv), "--out", str(tmp_path / "scored.csv"))
    assert batch.returncode == 0 and "scored 2 of 2 rows" in batch.stdout, batch.stderr

    # Each command that needs an extra says which, in one line, and how to install it from a clone.
    needs = {("train", "--synthetic", "30", "--out", str(tmp_path / "run")): "train",
             ("evaluate", "--synthetic", "30", "--out", str(tmp_path / "run")): "train",
             ("export", str(SHIPPED)): "train", ("verify", str(SHIPPED)): "train", ("bench", str(SHIPPED)): "train",
             ("predict", str(SHIPPED), "--backend", "torch", "--grades", "7", "--college", "115"): "train",
             ("demo", "--port", "1"): "demo"}
    for args, extra in needs.items():
        refused = run(*args)
        assert refused.returncode == 2 and "Traceback" not in refused.stderr, refused.stderr
        assert refused.stderr.count("\n") == 1 and f"needs the [{extra}] extra" in refused.stderr, refused.stderr
        assert f'pip install ".[{extra}]"' in refused.stderr and "cgpa-rnn[" not in refused.stderr
