"""What a newcomer and a Hugging Face Space rely on: the README's commands, pins and examples."""
from __future__ import annotations

import re
import subprocess
import sys
import tomllib

import gradio
import yaml
from conftest import ROOT

README = (ROOT / "README.md").read_text()


def _setup_commands() -> list[str]:
    quick_start = README.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    return [line.strip() for line in quick_start.splitlines() if line.startswith("    ")]


def test_readme_has_two_setup_commands_and_ci_runs_the_test_one():
    demo_command, test_command = _setup_commands()
    assert demo_command.endswith("cgpa demo") and "pytest" in test_command
    assert test_command in (ROOT / ".ci" / "run").read_text()
    # Two environments, and torch's CPU build for a machine without a GPU (not PyPI's CUDA one).
    assert ". .venv-demo/bin/activate" in demo_command and ". .venv/bin/activate" in test_command
    for command in (demo_command, test_command):
        assert "--extra-index-url https://download.pytorch.org/whl/cpu" in command


def _pins() -> tuple[set[str], list[str], list[str]]:
    """What pyproject installs for the demo (runtime + train + demo extras), requirements.txt's
    requirements, and requirements.txt's pip options."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    extras = project["optional-dependencies"]
    demo = set(project["dependencies"]) | set(extras["train"]) | set(extras["web"]) | set(extras["demo"])
    lines = [line.strip() for line in (ROOT / "requirements.txt").read_text().splitlines()
             if line.strip() and not line.startswith("#")]
    return ({pin for pin in demo if not pin.startswith("cgpa-rnn")},
            [line for line in lines if not line.startswith("-")],
            [line for line in lines if line.startswith("-")])


def test_space_requirements_equal_the_project_pins_and_take_torch_cpu():
    project, requirements, options = _pins()
    assert set(requirements) == project and len(requirements) == len(project)
    assert "torch==2.13.0" in requirements
    # PyPI stays the main index; the CPU index only adds torch's +cpu build.
    assert options == ["--extra-index-url https://download.pytorch.org/whl/cpu"]


def test_space_front_matter_agrees_with_the_pins():
    front_matter = yaml.safe_load(README.split("---\n")[1])
    project, _, _ = _pins()
    assert f"gradio=={front_matter['sdk_version']}" in project
    assert front_matter["sdk_version"] == gradio.__version__  # what the tests ran against
    assert front_matter["python_version"] == "3.11" and front_matter["app_file"] == "app.py"
    assert front_matter["sdk"] == "gradio" and front_matter["license"] == "mit"
    assert len(front_matter["short_description"]) <= 60  # the Hub refuses longer ones
    assert {"pytorch", "onnx", "rnn"} <= set(front_matter["tags"])


def test_nothing_points_outside_the_repository():
    # Spelled in pieces so that this test does not find itself.
    patterns = [".." + "/shared", "shared" + "/data"]
    listed = subprocess.run(["git", "grep", "-l", "-F", *sum((["-e", p] for p in patterns), [])], cwd=ROOT,
                            capture_output=True, text=True)
    assert listed.returncode == 1 and listed.stdout == "", f"tracked files point outside: {listed.stdout}"


def test_space_app_file_builds_the_demo():
    done = subprocess.run([sys.executable, "-c", "import app; print(type(app.demo).__name__)"], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and done.stdout.strip() == "Blocks", done.stderr


def test_one_python_floor_everywhere():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    front_matter = yaml.safe_load(README.split("---\n")[1])
    assert project["requires-python"] == ">=3.11" and front_matter["python_version"] == "3.11"
    assert "Python 3.11 or newer" in README and sys.version_info >= (3, 11)


def test_the_readme_reads_in_one_sitting_and_every_link_in_it_and_docs_resolves():
    assert len(README.splitlines()) < 200
    for page in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]:
        for target in re.findall(r"\]\(([^)#:]+)(?:#[^)]*)?\)", page.read_text()):
            assert (page.parent / target).exists(), f"{page.name} links to {target}, which does not exist"
