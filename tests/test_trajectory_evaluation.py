"""The rest of the degree, cross-validated: rolled-forward baselines do what they say on grades whose
answer is known, the scores are what their names say, and `evaluate` reports them out-of-sample."""
from __future__ import annotations

import json
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from conftest import tiny_config

from cgpa_rnn.data.sequences import next_examples
from cgpa_rnn.data.synthetic import synthetic_cohort
from cgpa_rnn.encoding import DEFAULT_SCALE
from cgpa_rnn.model.baselines import Persistence
from cgpa_rnn.model.card import RunFiles, rest_of_degree
from cgpa_rnn.model.evaluate import evaluate
from cgpa_rnn.model.trajectory import cuts
from cgpa_rnn.model.trajectory_evaluation import baseline_forecast, brier, reliability, roll_forward

nan = np.nan
# Six students who each gain exactly one grade point a semester: persistence's error h semesters ahead is h.
RISING = np.array([[start + s for s in range(4)] for start in (2.0, 3.0, 4.0, 5.0, 6.0, 6.5)])


def test_persistence_rolled_forward_repeats_the_last_grade_at_every_horizon():
    histories = np.array([[7.0, 8.0, nan, nan], [6.0, nan, 5.0, nan], [4.5, nan, nan, nan]])
    filled = roll_forward(Persistence().fit(RISING, np.zeros(6, dtype=np.int64)), histories, np.zeros(3, np.int64))
    np.testing.assert_array_equal(filled, [[7, 8, 8, 8], [6, nan, 5, 5], [4.5, 4.5, 4.5, 4.5]])


def test_rolling_forward_feeds_each_forecast_back_as_the_next_grade():
    class Rising(Persistence):
        def predict(self, grades, college, student, target):
            return super().predict(grades, college, student, target) + 1.0

    filled = roll_forward(Rising(), np.array([[5.0, nan, nan, nan]]), np.zeros(1, dtype=np.int64))
    np.testing.assert_array_equal(filled, [[5, 6, 7, 8]])


def test_a_rolled_baselines_interval_and_risk_come_from_its_training_residuals():
    college = np.zeros(6, dtype=np.int64)
    fitted = Persistence().fit(RISING, college)
    histories = np.array([[5.0, nan, nan, nan], [4.0, nan, nan, nan], [3.0, 4.0, 5.0, nan]])
    forecast = baseline_forecast(fitted, RISING, college, histories, np.zeros(3, dtype=np.int64), DEFAULT_SCALE)
    # Every training residual h ahead is h: the interval closes on the median plus h.
    np.testing.assert_array_equal(forecast.median[0], [nan, 5, 5, 5])
    np.testing.assert_allclose(forecast.low[0, 1:], [6, 7, 8])
    np.testing.assert_allclose(forecast.high[0, 1:], [6, 7, 8])
    np.testing.assert_array_equal(forecast.median[2], [nan, nan, nan, 5])
    # Final CGPA from one known semester: persistence says the first grade, the actual mean is 1.5 above.
    np.testing.assert_allclose(forecast.final, [5.0, 4.0, 4.25])
    np.testing.assert_allclose(forecast.final_low, [6.5, 5.5, 4.5])  # one semester remaining: 0.25 above
    np.testing.assert_allclose(forecast.final_high, forecast.final_low)
    # Below the line of 6: 6.5 is not, 5.5 and 4.5 are.
    np.testing.assert_array_equal(forecast.probability_below, [0, 1, 1])


def test_brier_is_zero_for_a_perfect_forecaster_and_one_for_the_opposite():
    outcome = np.array([1.0, 0.0, 1.0, 0.0])
    assert brier(outcome, outcome) == 0
    assert brier(1 - outcome, outcome) == 1
    assert brier(np.full(4, 0.5), outcome) == pytest.approx(0.25)


def test_reliability_bins_every_probability_once():
    probability = np.array([0.0, 0.05, 0.1, 0.15, 0.5, 0.95, 1.0])
    outcome = np.array([0.0, 0.0, 1.0, 0.0, 1.0, 1.0, 1.0])
    rows = reliability(probability, outcome)
    assert [row["bin"] for row in rows][:2] == ["[0.0, 0.1)", "[0.1, 0.2)"] and rows[-1]["bin"] == "[0.9, 1.0]"
    assert [row["n"] for row in rows] == [2, 2, 0, 0, 0, 1, 0, 0, 0, 2]
    assert rows[1]["mean_predicted"] == pytest.approx(0.125) and rows[1]["observed"] == 0.5
    assert rows[2]["mean_predicted"] is None and rows[-1]["observed"] == 1.0


@pytest.fixture(scope="module")
def evaluated(tmp_path_factory):
    out = tmp_path_factory.mktemp("evaluation")
    cohort = synthetic_cohort(students=80, seed=5)
    report = evaluate(cohort, tiny_config("elman"), out, folds=2, repeats=1, cells=("elman",), progress=False,
                      seeds=1, workers=1)
    return cohort, report, out


def test_evaluate_scores_the_rest_of_the_degree_on_every_cut(evaluated):
    cohort, report, out = evaluated
    section = json.loads((out / "evaluation.json").read_text(), parse_constant=pytest.fail)["trajectory"]
    assert section == report["trajectory"]
    assert section["model"] == "elman" and section["line"] == cohort.scale.at_risk_line()
    assert set(section["models"]) == {"elman"} and set(section["baselines"]) == {"persistence", "damped_deviation"}
    grades = cohort.grades
    assert section["cuts"] == len(cuts(torch.from_numpy(grades))[1])  # one repeat: every student held out once
    student, target = next_examples(grades)
    next_after_known = int((~np.isnan(grades[student, target - 1])).sum())
    complete = int((~np.isnan(grades).any(1)).sum())
    risk = section["risk"]
    assert risk["n"] == complete * (cohort.semesters - 1) > 0
    assert 0 < risk["observed_below"] < 1 and 0 < risk["base_rate"] < 1
    for group in ("models", "baselines"):
        for name, entry in section[group].items():
            horizons = entry["horizons"]
            assert set(horizons) == {str(h) for h in range(1, cohort.semesters)}, name
            assert horizons["1"]["n"] == next_after_known, name
            assert [horizons[str(h)]["n"] for h in range(1, cohort.semesters)] == sorted(
                (m["n"] for m in horizons.values()), reverse=True)  # fewer cuts reach further
            for m in [*horizons.values(), entry["final"], *entry["final"]["by_remaining"].values()]:
                assert 0 <= m["coverage80"] <= 1 and m["width80"] > 0 and m["mae"] >= 0, name
            assert entry["final"]["n"] == risk["n"]
            assert 0 <= entry["brier"] < risk["base_rate_brier"], name  # better than knowing nothing of the student
            assert sum(row["n"] for row in entry["reliability"]) == risk["n"], name
    # The model follows its calibrated path: not far from 80% at the first horizon even on 80 students.
    assert 0.6 < section["models"]["elman"]["horizons"]["1"]["coverage80"] < 0.95


def test_the_report_and_the_card_state_the_rest_of_the_degree(evaluated):
    _, report, out = evaluated
    text = (out / "evaluation.md").read_text()
    for heading in ("### Per horizon: MAE / coverage80 / width80", "### The final CGPA", "### The risk of a final "
                    "CGPA below 6 (the at-risk line)", "### Reliability of that probability"):
        assert heading in text
    section = report["trajectory"]
    first = section["models"]["elman"]["horizons"]["1"]
    assert f"| `elman` | {first['mae']:.3f} / {first['coverage80']:.3f} / {first['width80']:.2f} |" in text
    assert f"| always the training base rate ({section['risk']['base_rate']:.3f}) |" in text
    assert "| damped_deviation rolled forward (the baseline) |" in text

    card = "\n".join(rest_of_degree(RunFiles(SimpleNamespace(cell="elman"), report, None, None)))
    assert card.startswith("## The rest of the degree")
    assert f"1 ahead: {first['coverage80']:.3f}" in card
    assert f"covers {section['models']['elman']['final']['coverage80']:.3f}" in card
    for brier_score in (section["models"]["elman"]["brier"], section["baselines"]["damped_deviation"]["brier"],
                        section["risk"]["base_rate_brier"]):
        assert f"{brier_score:.4f}" in card
    older = {key: value for key, value in report.items() if key != "trajectory"}
    assert rest_of_degree(RunFiles(SimpleNamespace(cell="elman"), older, None, None)) == []
    assert rest_of_degree(RunFiles(SimpleNamespace(cell="elman"), None, None, None)) == []
