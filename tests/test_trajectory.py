"""The rest of the degree in torch (model/trajectory.py): calibrated on held-out students so every
horizon and the final CGPA cover about 80% of new students, gaps estimated rather than dropped,
credits as relative weights, and the probability read off the final CGPA's quantiles."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from conftest import tiny_config

from cgpa_rnn.data.synthetic import synthetic_cohort
from cgpa_rnn.model.fitting import fit
from cgpa_rnn.model.trajectory import INTERVAL_Z, cuts, trajectory

SEMESTERS = 6


@pytest.fixture(scope="module")
def fitted():
    torch.set_num_threads(1)
    cohort = synthetic_cohort(1200, seed=1, semesters=SEMESTERS)
    model, _ = fit(tiny_config("elman", max_epochs=40), cohort.grades, cohort.college, scale=cohort.scale)
    return model


def _forecast(model, grades: np.ndarray, college: np.ndarray, **options) -> dict:
    with torch.no_grad():
        outputs = trajectory(model, torch.from_numpy(grades), torch.from_numpy(college), **options)
    return {name: value.numpy() for name, value in outputs.items()}


def test_every_horizon_and_the_final_cgpa_cover_about_80_percent_of_new_students(fitted):
    assert fitted.horizon_scale[0] == 1 and (fitted.horizon_scale[1:] != 1).all()  # calibrated, horizon 1 kept
    assert (fitted.final_scale != 1).all() and fitted.final_scale.shape == (2, SEMESTERS - 1)
    new = synthetic_cohort(1500, seed=2, semesters=SEMESTERS)  # students the model never saw
    histories, student = cuts(torch.from_numpy(new.grades))
    out = _forecast(fitted, histories.numpy(), new.college[student.numpy()])
    actual = new.grades[student.numpy()]
    last = (~np.isnan(histories.numpy()) * np.arange(1, SEMESTERS + 1)).max(1) - 1
    for horizon in (1, 2, 3, 4):
        inside = []
        for t in range(1, SEMESTERS):
            rows = (t - last == horizon) & ~np.isnan(actual[:, t])
            inside += list((out["trajectory_low"][rows, t] <= actual[rows, t])
                           & (actual[rows, t] <= out["trajectory_high"][rows, t]))
        assert 0.75 <= np.mean(inside) <= 0.85, (horizon, np.mean(inside), len(inside))
    complete = ~np.isnan(actual).any(1)
    final = actual[complete].mean(1)
    below, above = final < out["final_low"][complete], final > out["final_high"][complete]
    assert 0.75 <= 1 - below.mean() - above.mean() <= 0.85
    assert 0.05 <= below.mean() <= 0.15 and 0.05 <= above.mean() <= 0.15  # each end a 10% quantile


def test_the_probability_reads_the_final_cgpas_quantiles_as_a_two_piece_normal(fitted):
    grades = np.array([[6.0, 5.8, np.nan, np.nan, np.nan, np.nan], [8.5, 8.8, 8.6, np.nan, np.nan, np.nan]],
                      dtype=np.float32)
    college = np.zeros(2, dtype=np.int64)
    for line in (5.0, 6.0, 7.5):
        out = _forecast(fitted, grades, college, below=torch.tensor(line))
        for row in range(2):
            final, low, high = out["final"][row], out["final_low"][row], out["final_high"][row]
            spread = ((final - low) if line < final else (high - final)) / INTERVAL_Z
            expected = 0.5 * (1 + math.erf((line - final) / (spread * math.sqrt(2))))
            assert out["probability_below"][row] == pytest.approx(expected, abs=1e-4), (line, row)
    raised = _forecast(fitted, grades, college, below=torch.tensor(9.0))["probability_below"]
    assert (raised > _forecast(fitted, grades, college)["probability_below"]).all()


def test_a_gap_is_estimated_not_dropped_and_only_a_complete_record_is_an_outcome(fitted):
    grades = np.array([[7.0, np.nan, 7.0, 7.0, 7.0, 7.0], [7.0, 7.0, 7.0, 7.0, 7.0, 7.0],
                       [np.nan, 7.0, 7.0, 7.0, 7.0, 7.0], [np.nan] * SEMESTERS], dtype=np.float32)
    out = _forecast(fitted, grades, np.zeros(4, dtype=np.int64), below=torch.tensor(7.0))
    assert np.isnan(out["trajectory"][0]).all()  # nothing after the last known semester
    assert out["final_low"][0] < out["final"][0] < out["final_high"][0]  # the gap's grade is not known
    assert out["final"][0] != pytest.approx(7.0, abs=1e-6) and 0 < out["probability_below"][0] < 1
    assert out["final_low"][1] == out["final"][1] == out["final_high"][1] == pytest.approx(7.0)
    assert out["probability_below"][1] == 0  # an outcome: exactly at the line is not below it
    assert out["final"][2] == pytest.approx(7.0) and out["final_low"][2] == out["final_high"][2]  # 1st: never predicted
    assert np.isnan(out["final"][3]) and np.isnan(out["trajectory"][3]).all()  # no grade: nothing to say


def test_credits_weigh_relatively_at_any_size(fitted):
    grades = np.array([[7.0, 6.0, np.nan, np.nan, np.nan, np.nan]], dtype=np.float32)
    college = np.zeros(1, dtype=np.int64)
    plain = _forecast(fitted, grades, college)
    for credits in ([20.0] * SEMESTERS, [1e38] * SEMESTERS):  # the same weights, whatever their size
        same = _forecast(fitted, grades, college, credits=torch.tensor(credits))
        assert same["final"][0] == pytest.approx(plain["final"][0], abs=1e-5)
        assert np.isfinite(same["probability_below"][0])
    heavy_first = _forecast(fitted, grades, college, credits=torch.tensor([5.0] + [1.0] * (SEMESTERS - 1)))
    medians = plain["trajectory"][0][2:]
    assert heavy_first["final"][0] == pytest.approx((5 * 7.0 + 6.0 + medians.sum()) / (5 + SEMESTERS - 1), abs=1e-4)
