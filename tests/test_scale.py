"""Training at flat memory: above a size a cohort trains in minibatches, stops early and calibrates on a
fixed sample, and predicts in chunks; below it, training is what it always was. Tiny data throughout:
the threshold is lowered through the config, as --minibatch-above lowers it."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from conftest import cgpa, tiny_config

from cgpa_rnn.data.sequences import next_examples
from cgpa_rnn.data.synthetic import synthetic_cohort
from cgpa_rnn.model.batches import Plan, held_out_sample
from cgpa_rnn.model.config import CELLS, CHUNK_STUDENTS, EPOCH_STUDENTS, HELD_OUT_STUDENTS, MINIBATCH, TrainConfig
from cgpa_rnn.model.fitting import fit, member_rows, predict_all_steps


def test_small_cohorts_take_whole_steps_and_big_ones_minibatches():
    small = Plan.of(TrainConfig(), 5000)
    assert (small.batch, small.epoch, small.steps, small.sampled) == (5000, 5000, 1, False)
    big = Plan.of(TrainConfig(), 850_000)
    assert (big.batch, big.epoch, big.sampled) == (MINIBATCH, EPOCH_STUDENTS, True)
    assert big.steps == math.ceil(EPOCH_STUDENTS / MINIBATCH)  # an epoch of a big cohort is a bounded round
    assert Plan.of(TrainConfig(minibatch_above=100), 5000).batch == MINIBATCH
    assert Plan.of(TrainConfig(batch_size=64), 300).batch == 64  # an explicit size, small cohort or not
    assert Plan.of(TrainConfig(batch_size=64, minibatch_above=100), 5000).batch == 64


@pytest.fixture(scope="module")
def cohort():
    return synthetic_cohort(students=300, seed=4, semesters=6)


@pytest.mark.parametrize("cell", CELLS)
def test_every_cell_trains_in_minibatches_to_a_model_that_beats_the_mean(cell, cohort):
    train, test = np.arange(240), np.arange(240, 300)
    config = tiny_config(cell, batch_size=64, minibatch_above=100, max_epochs=12, patience=12)
    model, history = fit(config, cohort.grades[train], cohort.college[train], scale=cohort.scale)
    epochs = len(history.train[0])
    assert history.steps == epochs * math.ceil(240 / 64)  # the explicit size, every student once per epoch
    quantiles = predict_all_steps(model, cohort.grades[test], cohort.college[test])
    student, target = next_examples(cohort.grades[test])
    actual = cohort.grades[test][student, target]
    picked = quantiles[student, target - 1]
    assert np.isfinite(quantiles).all() and (np.diff(picked, axis=1) >= 0).all()  # low <= median <= high
    mean_guess = np.abs(actual - np.nanmean(cohort.grades[train])).mean()
    assert np.abs(picked[:, 1] - actual).mean() < 0.8 * mean_guess  # far better than the cohort's mean grade
    assert 0.5 < ((picked[:, 0] <= actual) & (actual <= picked[:, 2])).mean() <= 1.0


def test_above_the_threshold_steps_take_minibatches_and_a_held_out_sample_decides(cohort):
    big = synthetic_cohort(students=1400, seed=5, semesters=4)
    config = tiny_config("elman", minibatch_above=500, max_epochs=3, patience=3)
    model, history = fit(config, big.grades, big.college, scale=big.scale)
    assert history.steps == 3 * math.ceil(1400 / MINIBATCH)  # automatic: MINIBATCH students a step
    assert np.isfinite(predict_all_steps(model, big.grades, big.college)).all()
    below = tiny_config("elman", max_epochs=3, patience=3)  # the default threshold: one step per epoch
    assert fit(below, big.grades, big.college, scale=big.scale)[1].steps == 3


def test_a_big_cohort_stops_early_and_calibrates_on_a_fixed_sample_of_held_out_students():
    config = TrainConfig(minibatch_above=1000)
    _, validation_rows = member_rows(config, 30_000)
    plan = Plan.of(config, 30_000)
    sample = held_out_sample(plan, validation_rows, seed=0)
    assert len(sample) == HELD_OUT_STUDENTS and (validation_rows[:, sample].sum(0) > 0).all()
    assert torch.equal(sample, sample.sort().values) and torch.equal(sample, held_out_sample(plan, validation_rows, 0))
    small = Plan.of(TrainConfig(), 3000)  # below the threshold: every student, as always
    assert torch.equal(held_out_sample(small, member_rows(config, 3000)[1], 0), torch.arange(3000))


def test_predictions_in_chunks_are_the_one_pass_predictions(cohort):
    model, _ = fit(tiny_config("elman", max_epochs=2), cohort.grades, cohort.college, scale=cohort.scale)
    rows = np.resize(np.arange(len(cohort)), CHUNK_STUDENTS + 300)  # more than one chunk
    grades, college = cohort.grades[rows], cohort.college[rows]
    chunked = predict_all_steps(model, grades, college)
    with torch.no_grad():
        whole = model.all_steps(torch.from_numpy(grades), torch.from_numpy(college)).numpy()
    np.testing.assert_allclose(chunked, whole, atol=1e-5)


def test_the_training_benchmark_runs_through_the_cli():
    result = cgpa("bench", "--train", "--train-sizes", "300,600")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith("cgpa train --synthetic N --synthetic-semesters 8, each in its own process")
    rows = [line.split() for line in lines[2:4]]
    assert [row[0] for row in rows] == ["300", "600"] and rows[0][2] == "1.00" and rows[0][4] == "1.00"
    assert all(float(row[3].replace(",", "")) > 50 and 0 < float(row[7]) < 3 for row in rows)  # MB, MAE
    assert "training 600 SYNTHETIC students" in result.stderr
    refused = cgpa("bench")
    assert refused.returncode == 2 and "needs a run directory" in refused.stderr and "Traceback" not in refused.stderr
