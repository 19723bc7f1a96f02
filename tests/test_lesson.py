"""`cgpa lesson`: the gradient it measures is the gradient, the textbook cell is nn.RNN's maths, and
the page says only what its numbers say."""
from __future__ import annotations

import csv
import math

import pytest
import torch

from cgpa_rnn.cli import main
from cgpa_rnn.model import lesson
from cgpa_rnn.model.lesson import CELLS, CLIPPING, STAGES, Elman, LessonConfig, TorchCell
from cgpa_rnn.model.lesson_page import STAGE_NAMES, Numbers, number, page

LENGTH = 12


def _read(path) -> tuple[list[str], list[dict]]:
    with open(path, newline="") as handle:
        reader = csv.DictReader(handle)
        return reader.fieldnames, list(reader)


@pytest.fixture(scope="module")
def lesson_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("lesson")
    assert main(["lesson", "--out", str(out), "--quick", "--steps", str(LENGTH), "--seed", "3"]) == 0
    return out


@pytest.mark.slow
def test_the_csv_has_every_cell_setting_stage_and_distance_with_a_real_gradient(lesson_dir):
    columns, rows = _read(lesson_dir / "gradients.csv")
    assert columns == ["cell", "clipping", "stage", "seed", "distance", "grad_norm"]
    seen = sorted((r["cell"], r["clipping"], r["stage"], int(r["distance"])) for r in rows)
    assert seen == sorted((c, k, s, d) for c in CELLS for k in CLIPPING for s in STAGES for d in range(LENGTH))
    norms = [float(r["grad_norm"]) for r in rows]
    assert all(math.isfinite(n) and n > 0 for n in norms)
    assert {r["seed"] for r in rows} == {"3"}
    # Both trainings of a cell start from the same weights: equal initial curves, different trained ones
    # wherever clipping acted.
    curve = {(r["cell"], r["clipping"], r["stage"], r["distance"]): r["grad_norm"] for r in rows}
    assert all(curve[(c, "no", "initial", str(d))] == curve[(c, "yes", "initial", str(d))]
               for c in CELLS for d in range(LENGTH))
    columns, results = _read(lesson_dir / "results.csv")
    assert {"test_loss", "test_accuracy", "over_threshold", "largest_grad_norm"} <= set(columns)
    assert sorted((r["cell"], r["clipping"]) for r in results) == sorted((c, k) for c in CELLS for k in CLIPPING)
    for r in results:
        trained = [curve[(r["cell"], r["clipping"], "trained", str(d))] for d in range(LENGTH)]
        initial = [curve[(r["cell"], r["clipping"], "initial", str(d))] for d in range(LENGTH)]
        assert trained != initial  # the trained network was measured, not its start
        if float(r["over_threshold"]) > 0 and r["clipping"] == "yes":
            free = [curve[(r["cell"], "no", "trained", str(d))] for d in range(LENGTH)]
            assert trained != free  # clipping acted, so the two trainings differ


@pytest.mark.slow
def test_the_figure_is_a_png_and_the_page_links_it_and_states_its_command(lesson_dir):
    assert (lesson_dir / "gradients.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    text = (lesson_dir / "lesson.md").read_text()
    assert "](gradients.png)" in text
    assert f"`cgpa lesson --out {lesson_dir} --seed 3 --steps {LENGTH} --quick`" in text.split("\n\n")[1]


@pytest.mark.slow
def test_the_pages_table_is_the_csvs_numbers(lesson_dir):
    _, rows = _read(lesson_dir / "gradients.csv")
    _, results = _read(lesson_dir / "results.csv")
    text = (lesson_dir / "lesson.md").read_text()
    curve = {}
    for r in rows:
        curve.setdefault((r["cell"], r["clipping"], r["stage"]), {})[int(r["distance"])] = float(r["grad_norm"])
    accuracy = {(r["cell"], r["clipping"]): float(r["test_accuracy"]) for r in results}
    header = next(line for line in text.splitlines() if line.startswith("| cell |"))
    distances = [int(cell.strip()[2:]) for cell in header.split("|") if cell.strip().startswith("k=")]
    assert distances == [1, 10, LENGTH - 1]  # 30 is past the end of 12 steps
    for cell in CELLS:
        for (stage, clipping), shown in STAGE_NAMES.items():
            line = next(line for line in text.splitlines() if line.startswith(f"| {cell} | {shown} |"))
            values = [v.strip() for v in line.strip("|").split("|")][2:]
            norms = curve[(cell, clipping, stage)]
            assert values[:len(distances)] == [number(norms[k] / norms[0]) for k in distances]
            if stage == "trained":
                assert values[len(distances)] == f"{accuracy[(cell, clipping)]:.3f}"
    far = [number(curve[(c, "no", "initial")][LENGTH - 1] / curve[(c, "no", "initial")][0]) for c in CELLS]
    assert all(f"{value} ({cell}," in text for value, cell in zip(far, CELLS))  # the first sentence's numbers


def _same_weights() -> tuple[TorchCell, Elman]:
    torch.manual_seed(1)
    library, written = TorchCell("rnn", 5, 8, 4), Elman(5, 8, 4)
    with torch.no_grad():
        written.W_xh.copy_(library.recurrent.weight_ih_l0)
        written.W_hh.copy_(library.recurrent.weight_hh_l0 * 3)  # large enough that the gradient does not vanish
        library.recurrent.weight_hh_l0.mul_(3)
        written.b.copy_(library.recurrent.bias_ih_l0 + library.recurrent.bias_hh_l0)  # nn.RNN has two biases
        written.W_hy.copy_(library.head.weight)
        written.b_y.copy_(library.head.bias)
    return library, written


def test_the_textbook_cell_given_nn_rnns_weights_has_its_gradient():
    library, written = _same_weights()
    x, answer = lesson.sequences(LessonConfig(length=30, symbols=4), 16, torch.Generator().manual_seed(0))
    ours, theirs = lesson.gradient_by_distance(written, x, answer), lesson.gradient_by_distance(library, x, answer)
    assert len(ours) == 30
    assert ours == pytest.approx(theirs, rel=1e-6)  # float32 weights: b_ih + b_hh is rounded once
    assert max(ours) / min(ours) > 2  # a curve, not a constant that any two cells would share
    other = TorchCell("rnn", 5, 8, 4)  # other weights: another gradient
    assert lesson.gradient_by_distance(other, x, answer) != pytest.approx(theirs, rel=1e-3)


@pytest.mark.parametrize("kind", ["rnn", "lstm", "gru"])
def test_the_stepped_cell_that_is_measured_is_the_network_that_is_trained(kind):
    torch.manual_seed(0)
    model = TorchCell(kind, 5, 8, 4)
    x, _ = lesson.sequences(LessonConfig(length=15, symbols=4), 6, torch.Generator().manual_seed(1))
    stepped = model.readout(lesson.hidden_states(model, x)[-1])
    torch.testing.assert_close(stepped, model(x))


def test_the_gradient_at_distance_k_is_the_product_of_k_jacobians():
    # With no input and no bias h stays 0, where tanh' = 1: dh_t/dh_(t-1) is W_hh = 0.5 I exactly.
    model = Elman(5, 6, 4)
    with torch.no_grad():
        model.W_xh.zero_()
        model.b.zero_()
        model.W_hh.copy_(0.5 * torch.eye(6))
    x, answer = lesson.sequences(LessonConfig(length=LENGTH, symbols=4), 8, torch.Generator().manual_seed(2))
    norms = lesson.gradient_by_distance(model, x, answer)
    assert [n / norms[0] for n in norms] == pytest.approx([0.5 ** k for k in range(LENGTH)], rel=1e-12)


def _lesson(accuracy: dict, per_step: dict, over: dict, length: int = 20) -> lesson.Lesson:
    """A made-up lesson: each curve falls by per_step[(cell, stage)] per step."""
    config = LessonConfig(length=length)
    gradients = [{"cell": c, "clipping": k, "stage": s, "seed": 0, "distance": d,
                  "grad_norm": per_step.get((c, s), 0.5) ** d} for c in CELLS for k in CLIPPING for s in STAGES
                 for d in range(length)]
    results = [{"cell": c, "clipping": k, "seed": 0, "test_loss": 1.0, "test_accuracy": accuracy.get((c, k), 0.25),
                "over_threshold": over.get((c, k), 0.0), "largest_grad_norm": 0.5 if not over.get((c, k)) else 50.0,
                "train_seconds": 1.0} for c in CELLS for k in CLIPPING]
    return lesson.Lesson(config, gradients, results)


@pytest.mark.parametrize("gru_accuracy, expected", [(1.0, "The gru learnt the task"),
                                                    (0.25, "The gru stayed at chance")])
def test_the_page_says_what_the_accuracy_says(gru_accuracy, expected):
    text = page(Numbers(_lesson({("gru", "no"): gru_accuracy}, {("gru", "trained"): 0.99}, {})), "f.png", "cgpa")
    assert expected in text


@pytest.mark.parametrize("gated, expected", [(0.7, "As the textbook says"), (0.3, "Unlike the textbook")])
def test_the_page_compares_gated_and_vanilla_cells_by_their_numbers(gated, expected):
    per_step = {(c, "initial"): gated if c in ("lstm", "gru") else 0.5 for c in CELLS}
    assert expected in page(Numbers(_lesson({}, per_step, {})), "f.png", "cgpa")


def test_the_page_says_whether_clipping_acted():
    text = page(Numbers(_lesson({("rnn", "no"): 0.9, ("rnn", "yes"): 0.25}, {}, {("rnn", "no"): 0.2,
                                                                                 ("rnn", "yes"): 0.2})), "f.png", "c")
    assert "Clipping never acted on the lstm" in text and "Clipping never acted on the rnn" not in text
    assert "Clipping acted on 20% of the rnn's steps" in text and "clipping hurt" in text
    assert "(it exploded)" in text  # 50 against a threshold of 1


@pytest.mark.parametrize("arguments, message", [(["--steps", "1"], "--steps 1"),
                                                (["--figure-name", "../up.png"], "--figure-name"),
                                                (["--seed", "-2"], "--seed -2")])
def test_bad_options_are_one_line_and_status_2(tmp_path, capsys, arguments, message):
    assert main(["lesson", "--out", str(tmp_path / "out"), *arguments]) == 2
    error = capsys.readouterr().err
    assert error.startswith("error: ") and message in error and error.count("\n") == 1
    assert not (tmp_path / "out").exists()  # refused before anything was written
