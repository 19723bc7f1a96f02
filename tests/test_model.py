"""The model package: every cell learns, the elman cell is what it says, training is
deterministic and crash-safe, checkpoints fail clearly, evaluation reports honestly."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from conftest import SHIPPED, cgpa, tiny_config

from cgpa_rnn.data import load_csv
from cgpa_rnn.errors import UserError
from cgpa_rnn.export.inputs import random_students
from cgpa_rnn.model.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from cgpa_rnn.model.config import CELLS, ModelConfig
from cgpa_rnn.model.evaluate import evaluate
from cgpa_rnn.model.fitting import fit, predict_all_steps
from cgpa_rnn.model.network import ElmanCell, GradeForecaster, TorchCell, smoothed_level
from cgpa_rnn.model.train import held_out_metrics, held_out_split, train_run
from cgpa_rnn.rundir import RunDir


@pytest.mark.parametrize("cell", CELLS)
def test_every_cell_learns_and_every_parameter_gets_a_gradient(cell, tiny_cohort):
    config = tiny_config(cell, max_epochs=60, patience=60)
    model, history = fit(config, tiny_cohort.grades, tiny_cohort.college)
    curve = history.train[0]
    assert curve[-1] < 0.9 * curve[0], f"{cell}: loss {curve[0]:.3f} -> {curve[-1]:.3f}"

    model.train()
    grades, college = torch.from_numpy(tiny_cohort.grades), torch.from_numpy(tiny_cohort.college)
    model.loss(grades, college, torch.ones(model.members, len(grades))).sum().backward()
    for name, parameter in model.named_parameters():
        assert parameter.grad is not None and parameter.grad.abs().sum() > 0, f"{cell}: no gradient for {name}"


def test_elman_cell_matches_a_hand_computation():
    torch.manual_seed(0)
    cell = ElmanCell(members=2, inputs=2, hidden=3)
    x = torch.tensor([[[0.5, -1.0], [2.0, 0.25]]])
    states = cell(x)
    for e in range(2):
        w_xh, w_hh, b_h, w_hy, b_y = (p[e].detach().numpy() for p in (cell.W_xh, cell.W_hh, cell.b_h,
                                                                       cell.W_hy, cell.b_y))
        h1 = np.tanh(np.array([0.5, -1.0]) @ w_xh + b_h)
        h2 = np.tanh(np.array([2.0, 0.25]) @ w_xh + h1 @ w_hh + b_h)
        np.testing.assert_allclose(states.detach().numpy()[e, 0], [h1, h2], rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(cell.output(states).detach().numpy()[e, 0], [h1 @ w_hy + b_y, h2 @ w_hy + b_y],
                                   rtol=1e-5, atol=1e-6)
    assert (cell.W_hy[..., 0] == 0).all() and (cell.b_y == 0).all()  # the correction starts at zero


@pytest.mark.parametrize("cell", ["rnn", "gru", "lstm"])
def test_a_torch_cell_is_its_members_run_one_by_one(cell):
    """Each member computes what its own nn.RNN/GRU/LSTM with its weights would, dropout between layers
    included; the weights are stored under torch's own names with the member first."""
    torch.manual_seed(0)
    kind = {"rnn": torch.nn.RNN, "gru": torch.nn.GRU, "lstm": torch.nn.LSTM}[cell]
    batched = TorchCell(cell, members=3, inputs=4, hidden=5, layers=2, dropout=0.5)
    names = [name for name, _ in kind(4, 5, num_layers=2).named_parameters()]
    assert [name for name, _ in batched.named_parameters()] == names + ["W_hy", "b_y"]
    assert not list(batched.template.parameters())  # the template lends its code, not its weights
    x = torch.randn(7, 6, 4)
    batched.eval()
    states = batched(x)
    for e in range(3):
        single = kind(4, 5, num_layers=2, batch_first=True)
        with torch.no_grad():
            for name in names:
                getattr(single, name).copy_(getattr(batched, name)[e])
        torch.testing.assert_close(states[e], single(x)[0], rtol=1e-5, atol=1e-5)
    # Each member drawn as torch draws a module's weights: its own, within torch's bound 1/sqrt(hidden).
    assert not torch.equal(batched.weight_hh_l0[0], batched.weight_hh_l0[1])
    assert batched.weight_hh_l0.abs().max() <= 1 / 5 ** 0.5
    batched.train()  # dropout between the two layers, as torch's module applies it in training
    assert not torch.allclose(batched(x), states)


def test_the_prior_smooths_like_the_damped_deviation_baseline():
    from cgpa_rnn.model.baselines import smoothed_deviation

    rng = np.random.default_rng(0)
    deviation = rng.normal(size=(50, 5))
    deviation[rng.random((50, 5)) < 0.3] = np.nan
    expected = smoothed_deviation(deviation, 0.3)
    observed = torch.from_numpy(~np.isnan(deviation))
    level = smoothed_level(torch.from_numpy(np.nan_to_num(deviation)), observed,
                           torch.tensor([0.3], dtype=torch.float64))
    np.testing.assert_allclose(level[0].numpy(), expected, atol=1e-12)


def test_the_predictable_rule_is_one_rule_for_numpy_and_torch(tiny_cohort):
    from cgpa_rnn.data.sequences import next_examples, predictable

    grades = tiny_cohort.grades.copy()
    grades[::3, 0] = np.nan
    grades[::5, 2] = np.nan
    grades[7] = np.nan
    student, target = next_examples(grades)
    mask = predictable(~torch.isnan(torch.from_numpy(grades)))
    assert sorted(zip(student.tolist(), (target - 1).tolist())) == sorted(map(tuple, mask.nonzero().tolist()))


def test_the_last_observed_semester_is_one_rule_for_numpy_and_torch():
    from cgpa_rnn.model.network import last_observed as last_observed_torch
    from cgpa_rnn.rules import last_observed

    rng = np.random.default_rng(5)
    grades = np.round(rng.uniform(0, 10, (500, 6)), 2)
    grades[rng.random(grades.shape) < 0.4] = np.nan
    grades[:20] = np.nan  # no grade at all: -1
    expected = [max((t for t in range(6) if not np.isnan(row[t])), default=-1) for row in grades]
    assert last_observed(~np.isnan(grades)).tolist() == expected
    assert last_observed_torch(~torch.isnan(torch.from_numpy(grades))).tolist() == expected


def test_unknown_cell_lists_the_valid_ones():
    with pytest.raises(UserError, match="valid cells: gru, lstm, rnn, elman"):
        ModelConfig(cell="transformer")
    result = cgpa("train", "--cell", "transformer", "--out", "/tmp/never")
    assert result.returncode == 2 and "invalid choice" in result.stderr


def test_raw_inputs_in_raw_grades_out(tiny_cohort):
    model = GradeForecaster(ModelConfig(), 5, [115, 116], mean=7.0, std=1.0).eval()
    grades = torch.tensor([[7.0, 6.0, np.nan, 7.5, np.nan], [np.nan] * 5, [7.0, 7.0, 7.0, 7.0, 7.0]])
    prediction, low, high = model(grades, torch.tensor([115, 999, 116]))
    assert torch.isfinite(prediction[0]) and low[0] <= prediction[0] <= high[0]
    assert torch.isnan(prediction[1:]).all()  # nothing observed / nothing left to predict
    # An unseen college code takes the shared unknown slot, which differs from a known college's.
    steps, x, _, index = model.inputs(grades, torch.tensor([115, 999, 116]))
    assert index.tolist() == [1, 0, 2] and not torch.isnan(steps).any()


def test_training_is_deterministic(tiny_cohort, tmp_path):
    first = train_run(tiny_cohort, tiny_config("gru"), tmp_path / "a", progress=False)
    second = train_run(tiny_cohort, tiny_config("gru"), tmp_path / "b", progress=False)
    a, _ = load_checkpoint(tmp_path / "a")
    b, _ = load_checkpoint(tmp_path / "b")
    for (name, x), (_, y) in zip(a.state_dict().items(), b.state_dict().items()):
        assert torch.equal(x, y), name
    assert first["test"] == second["test"]
    written = {p.name for p in (tmp_path / "a").iterdir()}
    assert {"model.pt", "config.json", "metrics.json", "training_curve.png"} <= written


def test_a_crash_while_saving_leaves_the_previous_model(run_copy, monkeypatch):
    before = (run_copy / "model.pt").read_bytes()
    model, payload = load_checkpoint(run_copy)

    def crash(*args, **kwargs):
        raise KeyboardInterrupt("power cut")

    monkeypatch.setattr(torch, "save", crash)
    with pytest.raises(KeyboardInterrupt):
        save_checkpoint(RunDir(run_copy), model, tiny_config("elman"), {})
    assert (run_copy / "model.pt").read_bytes() == before
    assert not [p for p in run_copy.iterdir() if p.name.endswith(".tmp")]


class PicklePayload:
    """Runs code when unpickled (if it ever is)."""

    ran = False

    def __reduce__(self):
        return (setattr, (PicklePayload, "ran", True))


def test_checkpoint_error_paths(run_copy, tmp_path):
    with pytest.raises(CheckpointError, match="no checkpoint here"):
        load_checkpoint(tmp_path / "nothing")
    data = (run_copy / "model.pt").read_bytes()
    (run_copy / "model.pt").write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="truncated or corrupted"):
        load_checkpoint(run_copy)
    (run_copy / "model.pt").write_bytes(b"garbage" * 100)
    with pytest.raises(CheckpointError, match="truncated or corrupted"):
        load_checkpoint(run_copy)
    torch.save({"weights": torch.zeros(3), "code": PicklePayload()}, run_copy / "model.pt")
    with pytest.raises(CheckpointError, match="refused, it holds Python objects beyond tensors and plain values"):
        load_checkpoint(run_copy)
    assert not PicklePayload.ran
    torch.save({"weights": torch.zeros(3)}, run_copy / "model.pt")
    with pytest.raises(CheckpointError, match="not a cgpa-rnn checkpoint"):
        load_checkpoint(run_copy)
    result = cgpa("export", str(run_copy))
    assert result.returncode == 2 and "not a cgpa-rnn checkpoint" in result.stderr
    assert "Traceback" not in result.stderr


def test_evaluate_writes_honest_reports(tmp_path):
    from cgpa_rnn.data.synthetic import synthetic_cohort

    cohort = synthetic_cohort(students=80, seed=5)
    report = evaluate(cohort, tiny_config("elman"), tmp_path, folds=2, repeats=1, cells=("elman", "gru"),
                      progress=False, seeds=2)
    saved = json.loads((tmp_path / "evaluation.json").read_text())
    assert saved["synthetic"] is True and "best_achievable" in saved
    for group, names in (("models", ("elman", "gru")),
                         ("baselines", ("persistence", "student_mean", "ridge", "damped_deviation", "gaussian"))):
        for name in names:
            for target in ("next", "last"):
                entry = saved[group][name][target]
                assert {"mae", "rmse", "r2", "coverage80", "width80", "by_semester"} <= entry.keys()
                assert 0.5 < entry["coverage80"] <= 1 and entry["width80"] > 0
    evidence = saved["evidence"]
    assert evidence["model"] == "elman" and set(evidence["versus"]) == set(saved["baselines"])
    for targets in evidence["versus"].values():
        for b in targets.values():
            assert b["ci95"][0] <= b["mae_difference"] <= b["ci95"][1] and 0 <= b["model_wins"] <= 1
    gap = saved["models"]["elman"]["next"]["mae"] - saved["baselines"]["ridge"]["next"]["mae"]
    assert evidence["versus"]["ridge"]["next"]["mae_difference"] == pytest.approx(gap, abs=1e-9)
    assert "bootstrap" in (tmp_path / "evaluation.md").read_text()
    # The default retrained with a second seed on the same folds: the first seed is the one reported.
    for target in ("next", "last"):
        maes = saved["seed_spread"]["targets"][target]["mae"]
        assert len(maes) == 2 and maes[0] == pytest.approx(saved["models"]["elman"][target]["mae"], abs=1e-12)
        assert maes[1] != maes[0] and saved["seed_spread"]["targets"][target]["range"] == pytest.approx(
            abs(maes[1] - maes[0]))
    assert "`elman` retrained with 2 seeds" in (tmp_path / "evaluation.md").read_text()
    assert saved["best_achievable"]["next"] < report["baselines"]["persistence"]["next"]["mae"]
    assert "SYNTHETIC" in (tmp_path / "evaluation.md").read_text()
    assert (tmp_path / "predicted_vs_actual.png").stat().st_size > 1000


def test_shipped_model_matches_a_fresh_evaluation(real_data):
    model, payload = load_checkpoint(SHIPPED)
    assert payload["data"]["fingerprint"] == payload["data"]["source"]["sha256"]
    cohort = load_csv(real_data)
    assert cohort.fingerprint() == payload["data"]["fingerprint"], "the shipped model was trained on other data"
    train, test = held_out_split(cohort, payload["config"]["seed"])
    fresh = held_out_metrics(model, cohort, train, test)
    recorded = payload["metrics"]["test"]
    for target in ("next", "last"):
        for name in ("model", "ridge", "persistence", "student_mean", "damped_deviation", "gaussian"):
            for metric, value in recorded[target][name].items():
                if metric == "by_semester":
                    for semester, entry in value.items():
                        assert fresh[target][name][metric][semester] == pytest.approx(entry, abs=1e-6), semester
                else:
                    assert fresh[target][name][metric] == pytest.approx(value, abs=1e-6), (target, name, metric)
    card = (SHIPPED / "MODEL_CARD.md").read_text()
    assert "cgpa train --out model/default" in card and payload["data"]["fingerprint"] in card
    assert payload["data"]["source"]["shipped"] is True


def test_unseen_college_falls_back_to_an_average_college():
    model, _ = load_checkpoint(SHIPPED)
    grades = torch.tensor([[7.0, 7.0, 7.0, 7.0, np.nan], [6.0, 5.5, np.nan, np.nan, np.nan]])
    known = torch.stack([model(grades, torch.tensor([code, code]))[0] for code in (115, 116, 165, 241)])
    unknown = model(grades, torch.tensor([424242, 7]))[0]
    assert ((unknown >= known.min(0).values - 0.05) & (unknown <= known.max(0).values + 0.05)).all()


def test_shipped_model_card_is_hub_ready_and_carries_no_path():
    card = (SHIPPED / "MODEL_CARD.md").read_text()
    assert card.startswith("---\n")
    meta = yaml.safe_load(card.split("---\n")[1])
    assert meta["license"] == "mit" and meta["pipeline_tag"] == "tabular-regression"
    assert {"pytorch", "onnx", "rnn", "tabular-regression"} <= set(meta["tags"])
    evaluation = json.loads((SHIPPED / "evaluation.json").read_text())
    result = meta["model-index"][0]["results"][0]
    assert result["dataset"]["name"] == "Semester Result of Technical Students (Kaggle)"
    maes = [m["value"] for m in result["metrics"]]
    assert maes == [round(evaluation["models"]["elman"][t]["mae"], 4) for t in ("next", "last")]
    for name in ("MODEL_CARD.md", "metrics.json", "evaluation.json", "evaluation.md", "parity.json"):
        text = (SHIPPED / name).read_text()
        assert "/" + "shared" not in text and "path" not in json.dumps(evaluation["data"]), name
    assert "```\ncgpa train --out model/default\ncgpa evaluate --out model/default" in card


@pytest.mark.parametrize("cell", CELLS)
def test_forward_agrees_with_all_steps(cell, exported_runs, tiny_cohort):
    """forward() is what is exported and served; all_steps() produces the reported metrics."""
    model, _ = load_checkpoint(exported_runs[cell])
    grades = torch.from_numpy(random_students(400, 5, [115, 116, 165], seed=2)[0])
    college = torch.from_numpy(np.resize(tiny_cohort.college, 400))
    with torch.no_grad():
        prediction, low, high = model(grades, college)
        every_step = model.all_steps(grades, college)
    observed = ~torch.isnan(grades)
    last = (observed.long() * torch.arange(1, 6)).amax(1) - 1
    valid = (last >= 0) & (last < 4)
    assert every_step.shape == (400, 4, 3)  # step t predicts semester t + 2
    picked = every_step[torch.arange(400), last.clamp(min=0, max=3)]
    assert valid.any() and (~valid).any()
    torch.testing.assert_close(prediction[valid], picked[valid, 1], rtol=0, atol=1e-6)
    torch.testing.assert_close(low[valid], picked[valid, 0], rtol=0, atol=1e-6)
    torch.testing.assert_close(high[valid], picked[valid, 2], rtol=0, atol=1e-6)
    assert torch.isnan(prediction[~valid]).all()


@pytest.mark.parametrize("cell", CELLS)
def test_explain_splits_the_prediction_into_the_prior_and_the_networks_correction(cell, exported_runs, tiny_cohort):
    trained, _ = load_checkpoint(exported_runs[cell])  # one member, trained
    torch.manual_seed(3)  # and three untrained members (two layers for torch's cells), weights shaken
    fresh = GradeForecaster(ModelConfig(cell=cell, hidden=5, ensemble=3, layers=1 if cell == "elman" else 2),
                            5, [115, 116, 165], mean=7.0, std=1.2, college_mean=0.3 * torch.randn(4, 5)).eval()
    with torch.no_grad():
        for parameter in fresh.parameters():
            parameter.add_(0.3 * torch.randn_like(parameter))
    grades, college = (torch.from_numpy(a) for a in random_students(300, 5, [115, 116, 165], seed=4))
    for model in (trained, fresh):
        E, H = model.members, model.config.hidden
        with torch.no_grad():
            parts = model.explain(grades, college)
            prediction = model(grades, college)[0]
        assert set(parts) == {"prediction", "group_mean", "deviation", "damping", "prior", "correction", "hidden"}
        assert all(parts[name].shape == (300,) for name in parts if name != "hidden")
        assert parts["hidden"].shape == (300, 4, E, H)
        torch.testing.assert_close(parts["prediction"], prediction, rtol=0, atol=0, equal_nan=True)  # exactly
        valid = ~torch.isnan(prediction)
        assert valid.any() and (~valid).any()
        for name, value in parts.items():  # NaN where forward is NaN, everywhere (hidden too); finite elsewhere
            rows = value.reshape(300, -1)
            assert torch.isnan(rows[~valid]).all() and torch.isfinite(rows[valid]).all(), name
        torch.testing.assert_close(parts["prior"] + parts["correction"], prediction, rtol=0, atol=1e-5,
                                   equal_nan=True)
        if E == 1:  # one member: the prior is the group's mean plus the damped deviation, term by term
            torch.testing.assert_close(parts["prior"], parts["group_mean"] + parts["damping"] * parts["deviation"],
                                       rtol=0, atol=1e-5, equal_nan=True)
        # The correction is the members' median output (where the scale's clamp did not cut the prediction).
        step, _ = model.next_step(grades)
        with torch.no_grad():
            outputs = model.parts(grades, college).outputs[..., 0].mean(0)[torch.arange(300), step] * model.grade_std
        inside = valid & (prediction > model.scale.low) & (prediction < model.scale.high)
        torch.testing.assert_close(parts["correction"][inside], outputs[inside], rtol=0, atol=1e-5)

    # The hidden state after semester t has read semesters 1..t+1 only: later grades change nothing before them.
    complete = grades.clone()
    complete[:, :4] = torch.nan_to_num(complete[:, :4], nan=6.5)  # four semesters read, the fifth predicted
    complete[:, 4] = float("nan")
    with torch.no_grad():
        before = fresh.explain(complete, college)["hidden"]
        for t in range(3):
            changed = complete.clone()
            changed[:, t + 1:4] += 1.0
            after = fresh.explain(changed, college)["hidden"]
            assert torch.equal(after[:, :t + 1], before[:, :t + 1]) and not torch.equal(after, before), t


def test_an_older_checkpoint_format_is_refused(run_copy):
    payload = torch.load(run_copy / "model.pt", weights_only=True)
    payload["version"] = 3  # before the cells' parameters took their textbook names
    torch.save(payload, run_copy / "model.pt")
    with pytest.raises(CheckpointError, match="checkpoint version 3 is not supported"):
        load_checkpoint(run_copy)


def _describes_one_model(run) -> str:
    """The cell the run directory's files describe; fails if they describe different models."""
    from cgpa_rnn.predictor import check_fresh

    config = json.loads((run / "config.json").read_text())
    metrics = json.loads((run / "metrics.json").read_text())
    _, payload = load_checkpoint(run)
    assert config == json.loads(json.dumps(payload["config"])) and metrics == json.loads(json.dumps(payload["metrics"]))
    assert f"Cell: `{config['model']['cell']}`" in (run / "MODEL_CARD.md").read_text()
    if (run / "model.onnx").exists():
        check_fresh(run)  # an ONNX file beside it was exported from this checkpoint
    return config["model"]["cell"]


def _kill_mid_write(command: list[str], parent: Path, cwd: Path) -> list[str]:
    """Start a training and SIGKILL it the moment its staging directory holds its first file but not
    yet its checkpoint (the middle of writing a run); returns the staged files at that moment."""
    import signal
    import subprocess
    import time

    training = subprocess.Popen(command, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    staged = parent / f".run.new-{training.pid}"
    try:
        for _ in range(600_000):  # bounded: at most ten minutes of 1 ms polls
            names = sorted(p.name for p in staged.iterdir()) if staged.is_dir() else []
            if names and "model.pt" not in names:
                training.send_signal(signal.SIGKILL)
                return names
            if training.poll() is not None:
                return []  # finished (or failed) before the test saw a partial run
            time.sleep(0.001)
        return []
    finally:
        training.kill()
        training.wait()


@pytest.mark.slow
def test_a_run_directory_describes_one_model_after_a_kill_mid_write(exported_runs, tmp_path):
    import subprocess
    import sys

    from conftest import ROOT

    run = tmp_path / "run"
    shutil.copytree(exported_runs["elman"], run)
    command = [sys.executable, "-m", "cgpa_rnn", "train", "--synthetic", "150", "--cell", "gru", "--hidden", "12",
               "--epochs", "80", "--tune-weight-decay", "--quiet", "--out", str(run)]
    partial = _kill_mid_write(command, tmp_path, ROOT)
    assert partial and "model.pt" not in partial, "the kill did not land while the run was being written"
    assert _describes_one_model(run) == "elman" and (run / "model.onnx").exists()  # the previous model, whole
    finished = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert finished.returncode == 0, finished.stderr
    assert _describes_one_model(run) == "gru" and not (run / "model.onnx").exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".run.new-")]  # the killed staging cleaned up
    print(f"killed with {partial} staged")


def test_training_refuses_bad_locations_and_cohorts_before_it_starts(tmp_path):
    (tmp_path / "a-file").write_text("x")
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "thesis.docx").write_text("x")
    for out, message in ((tmp_path / "a-file", "a file is in the way"), ("", "give a folder for the run"),
                         (tmp_path / "notes", "holds files that are not a run's (thesis.docx)"),
                         ("/proc/cgpa-run", "cannot write a run directory here")):
        result = cgpa("train", "--synthetic", "40", "--epochs", "1", "--out", str(out))
        assert result.returncode == 2 and message in result.stderr and "Traceback" not in result.stderr, result.stderr
    assert (tmp_path / "notes" / "thesis.docx").exists()
    for options, message in ((["--synthetic", "5"], "5 students are too few"),
                             (["--epochs", "0"], "max-epochs: 0 is out"),
                             (["--ensemble", "0"], "ensemble: 0 is out of range"), (["--lr", "-1"], "learning-rate")):
        result = cgpa("train", *options, "--out", str(tmp_path / "run"))
        assert result.returncode == 2 and message in result.stderr and "Traceback" not in result.stderr, result.stderr
    single = tmp_path / "first-semester-only.csv"
    single.write_text("1st,2nd,College Code,Roll\n" + "".join(f"7,,115,{i}\n" for i in range(30)))
    result = cgpa("evaluate", "--data", str(single), "--out", str(tmp_path / "eval"))
    assert result.returncode == 2 and "no next semester to learn from" in result.stderr
    for option in ("--seeds", "--repeats"):
        result = cgpa("evaluate", "--synthetic", "40", option, "0", "--out", str(tmp_path / "eval"))
        assert result.returncode == 2 and f"{option}: 0 is out of range" in result.stderr, result.stderr
    assert not (tmp_path / "run").exists() and not (tmp_path / "eval").exists()


def test_a_semester_nobody_has_is_trained_around_from_the_cli(tmp_path):
    # Found feeding the demo a careless file: a blank 3rd column made the ridge baseline's
    # fill value NaN and training failed with an SVD error.
    data = tmp_path / "no-third.csv"
    data.write_text("1st,2nd,3rd,4th,5th,College Code,Roll\n"
                    + "".join(f"{6 + i % 3},{6.5 + i % 4 / 2},,{7 + i % 2},{7.5},115,{i}\n" for i in range(30)))
    result = cgpa("train", "--data", str(data), "--out", str(tmp_path / "run"), "--epochs", "30", "--ensemble", "1",
                  "--tune-weight-decay", "0.01")
    assert result.returncode == 0, result.stderr
    metrics = RunDir(tmp_path / "run").read_json(RunDir.METRICS)
    assert all(np.isfinite(entry["ridge"]["mae"]) for entry in metrics["test"].values())


def test_paired_bootstrap_says_who_wins_and_how_sure():
    from cgpa_rnn.model.metrics import paired_bootstrap

    rng = np.random.default_rng(0)
    student = np.repeat(np.arange(60), 3)  # three examples per student, drawn together
    theirs = rng.uniform(0.2, 0.8, size=len(student))
    same = paired_bootstrap(theirs, theirs, student)
    assert same["mae_difference"] == 0 and same["model_wins"] == 0 and same["ci95"] == [0.0, 0.0]
    better = paired_bootstrap(theirs - 0.05, theirs, student)
    assert better["mae_difference"] == pytest.approx(-0.05) and better["model_wins"] == 1.0
    noisy = paired_bootstrap(theirs + rng.normal(0, 0.3, len(student)), theirs, student)
    assert noisy["ci95"][0] < noisy["mae_difference"] < noisy["ci95"][1] and 0 < noisy["model_wins"] < 1
    assert noisy["students"] == 60


@pytest.mark.parametrize("name", ["damped_deviation", "gaussian"])
def test_the_new_baselines_recover_a_student_level_offset(name):
    """Grades = college x semester mean + a constant per-student offset: both baselines must find it."""
    from cgpa_rnn.model.baselines import DampedDeviation, Gaussian

    rng = np.random.default_rng(1)
    college = rng.choice([115, 116], size=120)
    means = {115: np.array([7.0, 6.5, 7.2, 6.8, 7.5]), 116: np.array([6.0, 6.4, 6.1, 6.9, 6.6])}
    grades = np.stack([means[c] for c in college]) + rng.normal(0, 0.8, size=(120, 1))
    grades[rng.random(grades.shape) < 0.1] = np.nan
    baseline = (DampedDeviation if name == "damped_deviation" else Gaussian)().fit(grades, college)
    student, target = np.nonzero(~np.isnan(grades[:, 1:]))
    prediction, low, high = baseline.predict_interval(grades, college, student, target + 1)
    error = np.abs(prediction - grades[student, target + 1])
    # Ignoring the offset (sd 0.8) would cost about 0.64; only the estimated means' noise remains.
    actual = grades[student, target + 1]
    assert error.mean() < 0.1 and 0.7 < ((low <= actual) & (actual <= high)).mean() < 0.9  # the 80% interval


def test_without_evidence_against_persistence_the_forecast_is_the_last_grade():
    """Sticky integer grades (the sticky synthetic cohort): the damped deviation keeps persistence and the
    network's median is the last grade itself; on the calibrated cohort both learn (tests: the rule
    in baselines.DampedDeviation and fitting.fit, and its record in the run)."""
    from cgpa_rnn.data.sequences import next_examples
    from cgpa_rnn.data.synthetic import synthetic_cohort
    from cgpa_rnn.model.baselines import DampedDeviation, Persistence

    for kind, persistence in (("sticky", True), ("calibrated", False)):
        cohort = synthetic_cohort(300, 1, kind=kind)
        grades, college = cohort.grades, cohort.college
        student, target = next_examples(grades)
        last = Persistence().predict(grades, college, student, target)
        prior = DampedDeviation().fit(grades, college)
        assert prior.persistence is persistence and (prior.evidence > 2) is not persistence
        assert np.array_equal(prior.predict(grades, college, student, target), last) is persistence
        model, history = fit(tiny_config("elman"), grades, college, scale=cohort.scale)
        assert history.prior_only is persistence and history.persistence_evidence == prior.evidence
        median = predict_all_steps(model, grades, college)[student, target - 1, 1]
        assert bool(np.abs(median - last).max() < 1e-3) is persistence


def test_the_smallest_horizon_the_check_allows_trains_and_exports(tmp_path):
    """Two semesters: one step, so the recurrent weights get no gradient (it used to crash in training)."""
    rng = np.random.default_rng(4)
    first = rng.uniform(5, 9, 60).round(2)
    second = np.minimum(10.0, first + rng.uniform(-1, 1, 60)).round(2)
    for cell in CELLS:  # in-process: every cell trains
        model, _ = fit(tiny_config(cell), np.stack([first, second], 1).astype(np.float32), 115 + np.arange(60) % 2)
        assert np.isfinite(predict_all_steps(model, np.array([[7.5, np.nan]], np.float32), np.array([115]))).all()
    data = tmp_path / "two.csv"  # and the CLI trains, exports (the fused graph of one step) and predicts
    data.write_text("Roll no.,College Code,1st,2nd\n" + "".join(
        f"{i},{115 + i % 2},{a},{b}\n" for i, (a, b) in enumerate(zip(first, second))))
    run = tmp_path / "run"
    for step in (("train", "--data", str(data), "--epochs", "5", "--out", str(run)), ("export", str(run))):
        done = cgpa(*step)
        assert done.returncode == 0, done.stderr
    predicted = cgpa("predict", str(run), "--grades", "7.5", "--college", "115")
    assert predicted.returncode == 0 and "2nd semester (0-10)" in predicted.stdout, predicted.stdout + predicted.stderr
