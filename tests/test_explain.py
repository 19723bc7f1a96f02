"""The why of a forecast (cgpa_rnn.explanation): the prior and the network's correction add up to
the prediction, with one hidden state per semester read, equal in torch and in explain.onnx, for
every cell; on the command line, in the API and on the page."""
from __future__ import annotations

import json
import shutil
from dataclasses import replace

import numpy as np
import pytest
from conftest import SHIPPED, cgpa, tiny_config

from cgpa_rnn.explanation import OUTPUTS
from cgpa_rnn.model.config import CELLS
from cgpa_rnn.model.torch_predictor import TorchPredictor
from cgpa_rnn.predictor import OnnxPredictor, StaleModelError, check_fresh
from cgpa_rnn.rundir import RunDir
from cgpa_rnn.trajectory import OUTPUTS as TRAJECTORY_OUTPUTS


def _both(run) -> tuple[TorchPredictor, OnnxPredictor]:
    return TorchPredictor(run), check_fresh(run)


@pytest.fixture(scope="module")
def ensemble_run(tmp_path_factory, tiny_cohort):
    """Three members: the parts are means over members, and must still add up."""
    from cgpa_rnn.export import pipeline

    run = tmp_path_factory.mktemp("run-ensemble")
    config = tiny_config("elman", max_epochs=15)
    config = replace(config, model=replace(config.model, ensemble=3))
    pipeline.train(tiny_cohort, config, run, console=False)
    pipeline.export(run)
    return run


@pytest.mark.parametrize("cell", CELLS)
def test_prior_and_correction_add_up_to_the_prediction_in_torch_and_onnxruntime(exported_runs, cell):
    torch_backend, onnx_backend = _both(exported_runs[cell])
    for grades, college in ((["7.1", "6.8", "", "7.3"], "115"), (["5.5"], "999"), (["8", "8", "8", "8", "8"], "116")):
        answers = [backend.explain(grades, college) for backend in (torch_backend, onnx_backend)]
        for why in answers:
            assert why.prior + why.correction == pytest.approx(why.prediction, abs=1e-5)
            assert why.prediction == pytest.approx(onnx_backend.predict(grades, college).prediction, abs=1e-5)
            assert len(why.hidden) == why.semester - 1 == len(why.semesters_read)  # one per semester read
            assert all(len(state) == torch_backend.model.config.ensemble for state in why.hidden)
        torch_why, onnx_why = answers
        for name in OUTPUTS[:-1]:
            assert getattr(torch_why, name) == pytest.approx(getattr(onnx_why, name), abs=1e-4), name
        assert np.allclose(torch_why.hidden, onnx_why.hidden, atol=1e-4)


def test_an_ensembles_parts_are_its_members_means_and_still_add_up(ensemble_run):
    torch_backend, onnx_backend = _both(ensemble_run)
    rng = np.random.default_rng(0)
    grades = rng.uniform(4, 9.5, (200, torch_backend.semesters)).astype(np.float32)
    grades[rng.random(grades.shape) < 0.3] = np.nan
    grades[:, -1] = np.nan
    college = rng.choice([115, 116, 999], 200).astype(np.int64)
    for backend in (torch_backend, onnx_backend):
        parts = backend.detail_batch(grades, college)
        prediction = backend.predict_batch(grades, college)[0]
        valid = ~np.isnan(prediction)
        assert valid.sum() > 150 and np.allclose(parts["prediction"][valid], prediction[valid], atol=1e-5)
        assert np.allclose(parts["prior"] + parts["correction"], parts["prediction"], atol=1e-5, equal_nan=True)
        assert parts["hidden"].shape == (200, torch_backend.semesters - 1, 3, torch_backend.model.config.hidden)


def test_cgpa_predict_explain_json_on_the_shipped_model():
    done = cgpa("predict", str(SHIPPED), "--grades", "7.1,6.8,,7.3", "--college", "115", "--explain", "--json")
    assert done.returncode == 0, done.stderr
    answer = json.loads(done.stdout)
    assert answer["runtime"] == "onnx" and {"prediction", "prior", "correction", "hidden"} <= set(answer)
    assert answer["prior"] + answer["correction"] == pytest.approx(answer["prediction"], abs=1e-5)
    assert answer["semesters_read"] == ["1st", "2nd", "3rd", "4th"] and len(answer["hidden"]) == 4
    torch_answer = answer["torch"]
    assert torch_answer["prediction"] == pytest.approx(answer["prediction"], abs=1e-5)
    assert np.allclose(torch_answer["hidden"], answer["hidden"], atol=1e-4)
    text = cgpa("predict", str(SHIPPED), "--grades", "7.1,6.8,,7.3", "--college", "115", "--explain")
    assert text.returncode == 0 and "why: The 5th semester average at college 115 is" in text.stdout, text.stdout
    refused = cgpa("predict", str(SHIPPED), "--csv", "data/student-semester-result.csv", "--out", "x.csv", "--explain")
    assert refused.returncode == 2 and "--explain and --json answer for one student" in refused.stderr


def test_a_missing_or_stale_explanation_graph_is_named_not_served(run_copy, exported_runs):
    (run_copy / RunDir.EXPLANATION).unlink()
    with pytest.raises(StaleModelError, match="no explanation graph beside model.onnx; `cgpa export"):
        check_fresh(run_copy).explain(["7"], "115")
    shutil.copyfile(exported_runs["gru"] / RunDir.EXPLANATION, run_copy / RunDir.EXPLANATION)
    with pytest.raises(StaleModelError, match="is stale: it was exported from checkpoint"):
        check_fresh(run_copy).explain(["7"], "115")
    assert check_fresh(run_copy).predict(["7"], "115").prediction > 0  # the forecast itself is still served


def test_verify_checks_the_explanation_graph_too(run_copy):
    from cgpa_rnn.export.verify import verify

    report = verify(run_copy, samples=300)
    assert set(report["explanation"]) == set(OUTPUTS) | set(TRAJECTORY_OUTPUTS)
    assert all(entry["max_abs_diff"] <= report["tolerance"] for entry in report["explanation"].values())
    assert report["explanation"]["hidden"]["nan_mismatches"] == 0


def test_the_api_answer_says_why():
    from cgpa_rnn.demo import service
    from cgpa_rnn.demo.tabs import student

    backends = service.load_backends(SHIPPED)
    record = student.predict_json(backends, ("7.1", "6.8", "", "7.3", "", "115", False))
    why = record["why"]
    assert why["prior"] + why["correction"] == pytest.approx(record["prediction"], abs=1e-5)
    assert why["sentence"].startswith("The 5th semester average at college 115 is")
    page = student.predict(backends, ("7.1", "6.8", "", "7.3", "", "115", False))
    why_chart, hidden = page[-2:]
    assert why_chart.startswith("<svg") and "network adds" in why_chart and f"{record['prediction']:.2f}" in why_chart
    assert hidden.count("<rect") == 4 * backends.torch.model.config.hidden  # four semesters read, one row each
