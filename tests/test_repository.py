"""What a newcomer and a Hugging Face Space rely on: the README's commands, pins and examples."""
from __future__ import annotations

import re
import subprocess
import sys

import gradio
import tomllib
from conftest import ROOT, SHIPPED

README = (ROOT / "README.md").read_text()


def _setup_commands() -> list[str]:
    quick_start = README.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    return [line.strip() for line in quick_start.splitlines() if line.startswith("    ")]


def test_readme_has_two_setup_commands_and_ci_runs_the_test_one():
    demo_command, test_command = _setup_commands()
    assert demo_command.endswith("python -m demo") and "pytest" in test_command
    assert test_command in (ROOT / ".ci" / "run").read_text()


def test_pins_agree_for_pip_and_the_space():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    requirements = [line for line in (ROOT / "requirements.txt").read_text().splitlines()
                    if line and not line.startswith("#")]
    assert "torch==2.13.0" in project["dependencies"] and "torch==2.13.0" in requirements
    assert f"gradio=={gradio.__version__}" in project["dependencies"] and f"gradio=={gradio.__version__}" in requirements
    assert not any(line.startswith("-e") for line in requirements)
    front_matter = README.split("---")[1]
    assert re.search(rf"^sdk_version: {re.escape(gradio.__version__)}$", front_matter, re.M)
    assert re.search(r"^app_file: app.py$", front_matter, re.M)


def test_embedding_example_runs_with_only_onnxruntime():
    code = README.split("```python\n", 1)[1].split("```", 1)[0]
    assert "model/default/model.onnx" in code and (SHIPPED / "model.onnx").is_file()
    guarded = "import sys\nsys.modules['torch'] = None\n" + code
    done = subprocess.run([sys.executable, "-c", guarded], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert re.match(r"next semester: \d+\.\d\d \(80% interval \d+\.\d\d-\d+\.\d\d\)", done.stdout)


def test_space_app_file_builds_the_demo():
    done = subprocess.run([sys.executable, "-c", "import app; print(type(app.demo).__name__)"], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and done.stdout.strip() == "Blocks", done.stderr
