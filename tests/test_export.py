"""The export package: ONNX for every cell, parity with torch, staleness, the torch-free
runtime, `cgpa predict`, quantization and the benchmark."""
from __future__ import annotations

import json
import re
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import onnx
import pandas as pd
import pytest
from conftest import ROOT, cgpa, tiny_config

from cgpa_rnn.export.bench import bench
from cgpa_rnn.export.inputs import random_students
from cgpa_rnn.export.onnx_export import quantize
from cgpa_rnn.export.verify import verify
from cgpa_rnn.model.config import CELLS
from cgpa_rnn.model.torch_predictor import TorchPredictor
from cgpa_rnn.model.train import train_run
from cgpa_rnn.predictor import OnnxPredictor, PredictionError, StaleModelError, check_fresh
from cgpa_rnn.rundir import RunDir

NATIVE_NODES = {"gru": "GRU", "lstm": "LSTM"}


@pytest.mark.parametrize("cell", CELLS)
def test_export_and_verify_every_cell(cell, exported_runs):
    run = exported_runs[cell]
    proto = onnx.load(run / "model.onnx")
    onnx.checker.check_model(proto, full_check=True)
    shapes = {i.name: [d.dim_param or d.dim_value for d in i.type.tensor_type.shape.dim] for i in proto.graph.input}
    assert shapes == {"grades": ["batch", 5], "college": ["batch"]}  # one contract for every cell
    assert [o.name for o in proto.graph.output] == ["prediction", "low", "high"]
    ops = {n.op_type for n in proto.graph.node}
    if cell in NATIVE_NODES:
        assert NATIVE_NODES[cell] in ops
    else:
        assert not ops & {"Loop", "Scan", "RNN"}  # unrolled over the fixed horizon, the members side by side
        assert len(proto.graph.node) <= 45  # the fused form (export/fused.py)
    metadata = {p.key: p.value for p in proto.metadata_props}
    for key in ("inputs", "outputs", "units", "semester_axis", "semesters", "colleges", "checkpoint_sha256",
                "data_source", "data_fingerprint", "metrics", "exporter", "opset", "versions"):
        assert metadata.get(key), key
    assert metadata["synthetic_data"] == "true"
    assert (run / "model.onnx").stat().st_size < 100 * 1024

    report = verify(run, samples=2000)
    assert report["passed"], report
    saved = json.loads((run / "parity.json").read_text())
    assert saved["passed"] and saved["samples"] >= 2000 and saved["tolerance"] == 1e-5
    assert saved["max_abs_diff"] <= 1e-5 and saved["training_prefixes_included"]


def _tanh_models(tiny_cohort):
    from cgpa_rnn.model.checkpoint import load_checkpoint

    yield load_checkpoint(ROOT / "model" / "default")[0]  # the shipped elman ensemble
    from cgpa_rnn.model.fitting import fit

    config = tiny_config("rnn", max_epochs=5)
    config.model.ensemble = 3
    yield fit(config, tiny_cohort.grades, tiny_cohort.college)[0]
    # Two semesters: one step, no recurrence at all.
    yield fit(tiny_config("elman", max_epochs=3), tiny_cohort.grades[:, :2], tiny_cohort.college)[0]


def test_fused_export_form_computes_what_the_model_computes(tiny_cohort):
    import onnxruntime as ort
    import torch

    from cgpa_rnn.export.fused import fused_graph
    from cgpa_rnn.export.onnx_export import OPSET

    for model in _tanh_models(tiny_cohort):
        grades, college = random_students(5000, model.semesters, [115, 116, 165, 241], seed=9)
        college[:50] = 115  # known codes and unseen ones both
        grades[:20] = np.nan  # nothing observed
        grades[20:40, 1:] = np.nan  # the first semester only
        graph = fused_graph(model, OPSET).SerializeToString()
        after = ort.InferenceSession(graph, providers=["CPUExecutionProvider"]).run(
            ["prediction", "low", "high"], {"grades": grades, "college": college})
        with torch.no_grad():
            before = model(torch.from_numpy(grades), torch.from_numpy(college))
        for expected, actual in zip(before, after):
            torch.testing.assert_close(torch.from_numpy(actual), expected, rtol=0, atol=5e-6, equal_nan=True)


def test_gated_cells_are_exported_as_they_are(exported_runs):
    from cgpa_rnn.export.fused import fused_graph

    for cell in NATIVE_NODES:
        assert fused_graph(TorchPredictor(exported_runs[cell]).model, 18) is None


@pytest.mark.parametrize("batch", [1, 3, 64])
def test_parity_at_every_length_and_batch(exported_runs, batch):
    run = exported_runs["gru"]
    torch_backend, onnx_backend = TorchPredictor(run), OnnxPredictor(run / "model.onnx")
    for length in range(1, 6):
        grades, college = random_students(batch, 5, torch_backend.colleges, seed=length)
        grades[:, length:] = np.nan
        for expected, actual in zip(torch_backend.predict_batch(grades, college),
                                    onnx_backend.predict_batch(grades, college)):
            np.testing.assert_allclose(actual, expected, atol=1e-5)


def test_stale_export_is_detected(run_copy, exported_runs):
    import shutil

    assert check_fresh(run_copy).semesters == 5
    shutil.copyfile(exported_runs["rnn"] / "model.onnx", run_copy / "model.onnx")  # another checkpoint's export
    with pytest.raises(StaleModelError, match="stale"):
        check_fresh(run_copy)
    result = cgpa("verify", str(run_copy), "--samples", "200")
    assert result.returncode == 1 and "STALE" in result.stdout
    assert json.loads((run_copy / "parity.json").read_text())["passed"] is False
    result = cgpa("predict", str(run_copy), "--grades", "7,7", "--college", "115")
    assert result.returncode == 2 and "stale" in result.stderr and "Traceback" not in result.stderr
    result = cgpa("bench", str(run_copy), "--calls", "10", "--batch", "16")
    assert result.returncode == 2 and "stale" in result.stderr and "Traceback" not in result.stderr


def test_retraining_replaces_the_whole_run_directory(run_copy, tiny_cohort):
    assert (run_copy / "model.onnx").exists()
    train_run(tiny_cohort, tiny_config("gru", seed=1), run_copy, progress=False)
    # The export described the old checkpoint, so it went with it: nothing stale is left to serve.
    assert not (run_copy / "model.onnx").exists() and json.loads((run_copy / "config.json").read_text())[
        "model"]["cell"] == "gru"
    assert oct((run_copy / "model.pt").stat().st_mode & 0o777) != oct(0o600)  # readable like any file


def test_runtime_works_without_torch(exported_runs):
    code = f"""
import sys
sys.modules["torch"] = None  # any import of torch now fails
from cgpa_rnn.predictor import OnnxPredictor
predictor = OnnxPredictor({str(exported_runs['elman'] / 'model.onnx')!r})
result = predictor.predict([7.1, 6.8, None, 7.3], 115)
ahead = predictor.trajectory(["7.1", "6.8"], "115")
print(result.semester, round(result.prediction, 3), len(ahead.semesters))
"""
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    semester, prediction, steps = done.stdout.split()
    assert semester == "5" and 0 <= float(prediction) <= 10 and steps == "3"


@pytest.mark.parametrize("grades, college, message", [
    ([7, "abc"], 115, "2nd semester (0-10): expected a grade point"),
    ([7, 11], 115, "2nd semester (0-10): grade 11 is outside 0-10"),
    ([-0.5], 115, "1st semester (0-10): grade -0.5 is outside 0-10"),
    ([7] * 6, 115, "the model knows 5 semesters, got 6"),
    ([None, "", float("nan")], 115, "no grade given"),
    ([None, None, None, None, 7], 115, "only 5th semester is given; a hindcast needs earlier semesters"),
    ([7], "abc", "college: expected an integer college code"),
    ([7], 1.5, "college: expected a non-negative integer"),
])
def test_runtime_rejects_bad_input(exported_runs, grades, college, message):
    for backend in (OnnxPredictor(exported_runs["elman"] / "model.onnx"), TorchPredictor(exported_runs["elman"])):
        with pytest.raises(PredictionError, match=re.escape(message)):
            backend.predict(grades, college)


@pytest.mark.parametrize("cell", ["elman", "gru"])
def test_the_trajectory_runs_to_graduation_in_both_runtimes(exported_runs, cell):
    onnx_model = OnnxPredictor(exported_runs[cell] / "model.onnx")
    torch_model = TorchPredictor(exported_runs[cell])
    ahead, reference = (model.trajectory([7.0, None, 6.5], 99999) for model in (onnx_model, torch_model))
    numbers = [(t.median, t.low, t.high, t.final, t.final_low, t.final_high, t.probability_below)
               for t in (ahead, reference)]
    assert np.allclose(np.hstack([np.ravel(v) for v in numbers[0]]), np.hstack([np.ravel(v) for v in numbers[1]]),
                       atol=1e-5)
    assert ahead.semesters == [4, 5] and not ahead.finished
    first = onnx_model.predict([7.0, None, 6.5], 99999)  # the path's first step is model.onnx's prediction
    assert (ahead.median[0], ahead.low[0], ahead.high[0]) == pytest.approx((first.prediction, first.low, first.high),
                                                                            abs=1e-5)
    assert all(low <= median <= high for low, median, high in zip(ahead.low, ahead.median, ahead.high))
    # The final CGPA: the semesters known, the gap's estimate (the 2nd predicted from the 1st) and the medians,
    # weighted by the credits.
    gap = onnx_model.predict([7.0], 99999).prediction
    assert ahead.final == pytest.approx(np.mean([7.0, gap, 6.5, *ahead.median]), abs=1e-5)
    weighted = onnx_model.trajectory([7.0, None, 6.5], 99999, credits=np.array([1, 1, 2, 1, 3], dtype=np.float32))
    assert weighted.final == pytest.approx((7.0 + gap + 2 * 6.5 + weighted.median[0] + 3 * weighted.median[1]) / 8,
                                           abs=1e-5)
    assert ahead.final_low <= ahead.final <= ahead.final_high and 0 <= ahead.probability_below <= 1
    # A higher line is likelier to be missed.
    assert onnx_model.trajectory([7.0, None, 6.5], 99999, below=8).probability_below > ahead.probability_below
    assert not onnx_model.is_known_college(99999) and onnx_model.is_known_college(115)


def test_a_finished_student_has_an_outcome_not_a_forecast(exported_runs):
    predictor = OnnxPredictor(exported_runs["elman"] / "model.onnx")
    done = predictor.trajectory([7, 7, 7, 7, 7.5], 115)
    assert done.finished and done.semesters == []
    assert done.final == done.final_low == done.final_high == pytest.approx(7.1)
    assert done.probability_below == 0
    assert predictor.trajectory([7, 7, 7, 7, 7.5], 115, below=7.2).probability_below == 1
    assert "the actual one" in done.sentence(predictor)
    with pytest.raises(PredictionError, match="at risk below: expected a grade point between 0 and 10, got '11'"):
        predictor.trajectory([7], 115, below="11")
    hindcast = predictor.predict([7, 7, 7, 7, 7.5], 115)
    assert hindcast.semester == 5 and hindcast.actual == 7.5
    assert hindcast.prediction == predictor.predict([7, 7, 7, 7], 115).prediction


def test_cli_hindcast_of_one_student(exported_runs):
    result = cgpa("predict", str(exported_runs["elman"]), "--grades", "7,6.5,7", "--college", "115", "--hindcast")
    assert result.returncode == 0, result.stderr
    assert result.stdout.count("3rd semester (0-10): ") == 2 and result.stdout.count("hindcast, actual 7.00") == 2


def test_runtime_is_thread_safe(exported_runs):
    predictor = OnnxPredictor(exported_runs["lstm"] / "model.onnx")
    grades, college = random_students(400, 5, predictor.colleges, seed=9)
    grades[:, 4] = np.nan
    grades[:, 0] = 7.0
    serial = [predictor.predict(g, c).prediction for g, c in zip(grades, college)]
    with ThreadPoolExecutor(max_workers=8) as pool:
        parallel = list(pool.map(lambda i: predictor.predict(grades[i], college[i]).prediction, range(400)))
    assert parallel == serial


def test_cli_predict_one_student(exported_runs):
    result = cgpa("predict", str(exported_runs["gru"]), "--grades", "7.1,6.8,,7.3", "--college", "115")
    assert result.returncode == 0, result.stderr
    lines = dict(line.split(": ", 1) for line in result.stdout.strip().splitlines())
    torch_value, onnx_value = (float(lines[k].split(": ")[1].split()[0]) for k in ("torch", "onnx"))
    assert abs(torch_value - onnx_value) < 1e-3 and "5th semester (0-10)" in lines["onnx"]
    bad = cgpa("predict", str(exported_runs["gru"]), "--grades", "7.1,abc", "--college", "115")
    assert bad.returncode == 2 and "2nd semester (0-10): expected a grade point" in bad.stderr
    assert "Traceback" not in bad.stderr


def test_cli_predict_csv_scores_row_by_row(exported_runs, tmp_path):
    source = tmp_path / "cohort.csv"
    source.write_text("1st,2nd,3rd,4th,5th,College Code,Gender,Roll,Roll no.,Subject Code\n"
                      "7.1,6.8,,7.3,,115,M,,1,16\n"
                      "7.1,abc,,,,115,M,,2,16\n"
                      "7,7,7,7,7,116,F,3,,16\n"
                      "6.5,,,,,999,F,=HYPERLINK(1),,16\n")
    out = tmp_path / "scored.csv"
    result = cgpa("predict", str(exported_runs["elman"]), "--csv", str(source), "--out", str(out))
    assert result.returncode == 0, result.stderr
    assert "scored 3 of 4 rows" in result.stdout and "Hindcast of 1 student " in result.stdout
    scored = pd.read_csv(out, dtype={"error": str}, keep_default_na=False)
    assert list(scored.columns[-9:]) == ["semester_predicted", "pred_torch", "pred_onnx", "abs_diff", "low", "high",
                                         "actual", "abs_error", "error"]
    assert scored["semester_predicted"].tolist() == ["5", "", "5", "2"]
    assert scored["error"][0] == "" and "2nd semester (0-10): expected a grade point" in scored["error"][1]
    assert scored["actual"].tolist() == ["", "", "7", ""] and scored["error"][2] == ""
    hindcast = cgpa("predict", str(exported_runs["elman"]), "--csv", str(source), "--out", str(out), "--hindcast")
    assert "Hindcast of 2 students" in hindcast.stdout  # the last known semester of every student with two
    assert pd.read_csv(out)["semester_predicted"].tolist()[0] == 4
    assert scored["pred_torch"].tolist() == [""] * 4  # with --csv the default is onnxruntime alone
    assert float(scored["low"][3]) <= float(scored["pred_onnx"][3])
    both = cgpa("predict", str(exported_runs["elman"]), "--csv", str(source), "--out", str(out), "--backend", "both")
    assert both.returncode == 0 and float(pd.read_csv(out)["abs_diff"][0]) < 1e-5
    assert scored["Roll"][3] == "'=HYPERLINK(1)"  # never read as a spreadsheet formula
    missing = cgpa("predict", str(exported_runs["elman"]), "--csv", str(tmp_path / "none.csv"), "--out", str(out))
    assert missing.returncode == 2 and "no such file" in missing.stderr
    folder = cgpa("predict", str(exported_runs["elman"]), "--csv", str(tmp_path), "--out", str(out))
    assert folder.returncode == 2 and "a folder; expected a CSV file" in folder.stderr, folder.stderr
    nothing = tmp_path / "nothing-scorable.csv"
    nothing.write_text("1st,2nd,College Code\n,,115\nabc,,116\n")
    refused = cgpa("predict", str(exported_runs["elman"]), "--csv", str(nothing), "--out", str(out))
    assert refused.returncode == 1 and "no row of" in refused.stderr and "scored 0 of 2 rows" in refused.stdout
    assert pd.read_csv(out)["error"].str.startswith(("line 2: ", "line 3: ")).all()  # the reasons are kept


def test_csv_semester_columns_are_placed_by_number_not_position(exported_runs, tmp_path):
    from cgpa_rnn.scoring import score_csv

    backend = {"onnx": OnnxPredictor(exported_runs["elman"] / "model.onnx")}
    typed = backend["onnx"].predict(["", "7", "6"], 115)
    for header, cells in (("2nd,3rd,College Code", "7,6,115"), ("College Code,3rd,2nd", "115,6,7"),
                          ("sem3,Semester 2,College Code,Notes", "6,7,115,x")):
        path = tmp_path / "cohort.csv"
        path.write_text(f"{header}\n{cells}\n")
        scored = score_csv(path, backend)
        assert scored.served[0] == pytest.approx(typed.prediction, abs=1e-6), header
        assert scored.semester[0] == typed.semester == 4
    path.write_text("1st,sem1,College Code\n7,7,115\n")
    result = cgpa("predict", str(exported_runs["elman"]), "--backend", "onnx", "--csv", str(path), "--out",
                  str(tmp_path / "out.csv"))
    assert result.returncode == 2 and "columns '1st' and 'sem1' are both semester 1" in result.stderr


def test_quantize_refuses_an_int8_model_that_does_not_pay(exported_runs, tmp_path):
    import shutil

    run = tmp_path / "lstm"
    shutil.copytree(exported_runs["lstm"], run)
    report = quantize(run, random_students(300, 5, [115, 116], seed=4))
    assert report["written"] is False and not (run / RunDir.INT8).exists()
    assert "DynamicQuantizeLSTM" in report["quantized_ops"] and "is not smaller than fp32" in report["reason"]


def test_quantize_refuses_an_int8_model_that_moves_the_predictions(exported_runs, tmp_path):
    import shutil

    run = tmp_path / "elman"
    shutil.copytree(exported_runs["elman"], run)  # the folded input product does not survive int8 weights
    report = quantize(run, random_students(300, 5, [115, 116], seed=4))
    assert report["written"] is False and not (run / RunDir.INT8).exists()
    assert "moves predictions by" in report["reason"] and report["mean_abs_change"] > 0.1


def test_quantize_writes_an_int8_model_where_it_pays(tiny_cohort, tmp_path):
    from cgpa_rnn.export.onnx_export import export_onnx

    config = tiny_config("lstm", max_epochs=3, patience=3)
    config.model.hidden = 32  # enough LSTM weights for int8 to pay
    train_run(tiny_cohort, config, tmp_path, progress=False)
    export_onnx(tmp_path)
    grades, college = random_students(300, 5, [115, 116], seed=4)
    report = quantize(tmp_path, (grades, college))
    assert report["written"] is True and report["int8_bytes"] < 0.8 * report["fp32_bytes"]
    assert "DynamicQuantizeLSTM" in report["quantized_ops"]
    assert (tmp_path / RunDir.INT8).stat().st_size == report["int8_bytes"]
    int8 = OnnxPredictor(tmp_path / RunDir.INT8).predict_batch(grades, college)[0]
    fp32 = OnnxPredictor(tmp_path / RunDir.ONNX).predict_batch(grades, college)[0]
    assert np.nanmax(np.abs(int8 - fp32)) == pytest.approx(report["max_abs_change"], abs=1e-4)
    assert "onnx_int8" in bench(tmp_path, calls=20, batch=64, seconds=0.05)


def test_bench_reports_both_runtimes_side_by_side(run_copy):
    report = bench(run_copy, calls=60, batch=256, seconds=0.1)
    saved = json.loads((run_copy / "bench.json").read_text())
    for backend in ("torch", "onnx", "torch_detail", "onnx_detail"):
        assert {"p50_us", "p99_us", "throughput_per_s"} <= saved[backend].keys()
        assert saved[backend]["p50_us"] > 0 and saved[backend]["p99_us"] >= saved[backend]["p50_us"]
    assert saved["ratio"]["p50_speedup"] == pytest.approx(report["torch"]["p50_us"] / report["onnx"]["p50_us"])
    graph = saved["graph"]  # the file's own cost per call, against a one-node graph with the same inputs
    assert 0 < graph["floor_p50_us"] < graph["model_p50_us"]
    assert graph["over_floor"] == pytest.approx(graph["model_p50_us"] / graph["floor_p50_us"])


def test_a_user_csv_is_recorded_by_name_and_found_only_when_given_again(tmp_path):
    from cgpa_rnn.data import load_csv
    from cgpa_rnn.data.synthetic import SyntheticSpec, generate_frame
    from cgpa_rnn.export.onnx_export import export_onnx

    csv = tmp_path / "my-cohort.csv"
    generate_frame(SyntheticSpec(students=50, seed=7)).to_csv(csv, index=False)
    run = tmp_path / "run"
    train_run(load_csv(csv), tiny_config("elman"), run, progress=False)
    export_onnx(run)
    recorded = {p.key: p.value for p in onnx.load(run / "model.onnx").metadata_props}
    source = json.loads(recorded["data_source"])
    assert source == {"kind": "csv", "name": "my-cohort.csv", "sha256": source["sha256"], "shipped": False}
    assert str(tmp_path) not in (run / "metrics.json").read_text() + json.dumps(recorded)

    given = cgpa("verify", str(run), "--samples", "200", "--data", str(csv))
    assert given.returncode == 0 and "training prefixes" in given.stdout and "note:" not in given.stdout
    csv.unlink()  # the user's file is gone: said once, verified on what is at hand
    gone = cgpa("verify", str(run), "--samples", "200")
    assert gone.returncode == 0, gone.stderr
    assert gone.stdout.count("my-cohort.csv") == 1 and "not at hand" in gone.stdout and "PASSED" in gone.stdout


@pytest.mark.parametrize("cell", CELLS)
def test_predictions_and_intervals_stay_on_the_grade_scale(cell, exported_runs):
    grades = np.full((200, 5), np.nan, dtype=np.float32)
    grades[:100, :4] = 10.0  # top students: an unclipped interval reaches past 10
    grades[100:, :4] = 0.0
    college = np.full(200, 115, dtype=np.int64)
    for backend in (TorchPredictor(exported_runs[cell]), OnnxPredictor(exported_runs[cell] / "model.onnx")):
        for output in backend.predict_batch(grades, college):
            assert np.nanmin(output) >= 0.0 and np.nanmax(output) <= 10.0


def test_cli_scoring_matches_columns_by_number_and_reports_empty_files(exported_runs, tmp_path):
    run = str(exported_runs["elman"])
    typed = cgpa("predict", run, "--backend", "onnx", "--grades", ",7,6", "--college", "115")
    source = tmp_path / "later-semesters.csv"
    source.write_text("College Code,3rd,2nd\n115,6,7\n")
    out = tmp_path / "scored.csv"
    result = cgpa("predict", run, "--backend", "onnx", "--csv", str(source), "--out", str(out))
    assert result.returncode == 0, result.stderr
    scored = pd.read_csv(out)
    assert f"{scored['pred_onnx'][0]:.3f}" in typed.stdout and scored["semester_predicted"][0] == 4
    (tmp_path / "header-only.csv").write_text("1st,2nd,College Code\n")
    empty = cgpa("predict", run, "--csv", str(tmp_path / "header-only.csv"), "--out", str(out))
    assert empty.returncode == 2 and "a header but no student rows" in empty.stderr and "Traceback" not in empty.stderr
    folder = cgpa("predict", run, "--csv", str(source), "--out", str(tmp_path))
    assert folder.returncode == 2 and "a folder is in the way" in folder.stderr


def test_a_run_directory_that_cannot_be_written_is_one_line(run_copy, monkeypatch, capsys):
    import tempfile

    from cgpa_rnn import cli

    def refuse(*args, **kwargs):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(tempfile, "mkstemp", refuse)  # what a read-only run directory answers
    for command in (["export", str(run_copy)], ["verify", str(run_copy), "--samples", "50"]):
        assert cli.main(command) == 2
        assert "cannot write here (Permission denied)" in capsys.readouterr().err


def test_the_csv_benchmark_prints_the_cli_beside_onnxruntime_alone():
    result = cgpa("bench", str(ROOT / "model" / "default"), "--csv", "3000")
    assert result.returncode == 0, result.stderr
    cli_line, alone_line = result.stdout.strip().splitlines()
    assert cli_line.startswith("cgpa predict --csv, 3,000 rows") and "rows/s, peak memory" in cli_line
    assert alone_line.startswith("onnxruntime alone on the same rows") and "rows/s" in alone_line
    refused = cgpa("bench", str(ROOT / "model" / "default"), "--csv", "0")
    assert refused.returncode == 2 and "expected a number of rows" in refused.stderr


def test_cli_trajectory_of_one_student_and_of_a_cohort(exported_runs, tmp_path):
    run = str(exported_runs["elman"])
    one = cgpa("predict", run, "--grades", "7,6.5", "--college", "115", "--trajectory", "--json", "--backend", "onnx")
    assert one.returncode == 0, one.stderr
    ahead = json.loads(one.stdout)["trajectory"]
    assert ahead["semesters"] == [3, 4, 5] and ahead["below"] == 6 and not ahead["finished"]
    cohort = tmp_path / "cohort.csv"
    cohort.write_text("ID,1st,2nd,3rd,4th,5th,College Code\na,7,6.5,,,,115\nb,8,8,8,8,9,116\nc,x,,,,,115\n")
    out = tmp_path / "scored.csv"
    result = cgpa("predict", run, "--csv", str(cohort), "--trajectory", "--at-risk-below", "7", "--credits",
                  "1,1,1,1,2", "--out", str(out))
    assert result.returncode == 0, result.stderr
    assert "of the 1 student whose final CGPA is forecast" in result.stdout
    assert "0 of the 1 with nothing left to forecast ended below it" in result.stdout
    scored = pd.read_csv(out)
    columns = [f"sem{k}_{part}" for k in range(2, 6) for part in ("pred", "low", "high")]
    assert list(scored.columns[-16:]) == columns + ["final_cgpa", "final_low", "final_high", "p_below"]
    assert np.isnan(scored["sem2_pred"][0]) and scored["sem3_low"][0] < scored["sem3_pred"][0] < scored["sem3_high"][0]
    assert scored["final_cgpa"][1] == pytest.approx((8 * 4 + 2 * 9) / 6, abs=1e-4) and scored["p_below"][1] == 0
    assert np.isnan(scored["final_cgpa"][2]) and scored["error"][2].startswith("line 4")
    for options, message in ((["--credits", "1,1"], "add --trajectory"),
                             (["--trajectory", "--credits", "1,2"], "credits: expected 5 positive numbers"),
                             (["--trajectory", "--at-risk-below", "11"], "at risk below: expected a grade point")):
        refused = cgpa("predict", run, "--grades", "7", "--college", "115", *options)
        assert refused.returncode != 0 and message in refused.stderr and "Traceback" not in refused.stderr
