"""The demo: its service functions without UI, then the real app on a free port through
gradio_client, including many clients at once."""
from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pandas as pd
import pytest
from conftest import SHIPPED, cgpa
from gradio_client import Client, handle_file

from demo import service
from runtime.errors import UserError

COHORT_CSV = ("1st,2nd,3rd,4th,5th,College Code,Gender,Roll,Roll no.,Subject Code\n"
              "7.1,6.8,,7.3,,115,M,,1,16\n"
              "7.1,abc,,,,115,M,,2,16\n"
              "5.2,5.0,4.9,,,116,F,3,,16\n"
              "8,8,8,8,8,116,F,4,,16\n")


@pytest.fixture(scope="module")
def backends():
    return service.load_backends(SHIPPED)


def test_shipped_model_is_served_fresh(backends):
    assert backends.semesters == 5 and backends.colleges == [115, 116, 165, 241]


def test_predict_student_runs_both_backends(backends):
    result = service.predict_student(backends, ["7.1", "6.8", "", "7.3", ""], "115")
    assert result.semester == 5 and result.abs_diff < 1e-5
    assert result.low <= result.onnx_prediction <= result.high
    assert result.torch_latency_us > 0 and result.onnx_latency_us > 0
    assert [s.semester for s in result.forecast.steps] == [5]
    figure = service.plot_student(backends, ["7.1", "6.8", "", "7.3", ""], result)
    assert len(figure.axes[0].lines) >= 2


def test_field_errors_point_at_the_field(backends):
    assert service.field_errors(backends, ["7", "", "", "", ""], "115") == [None] * 6
    messages = service.field_errors(backends, ["7", "12", "", "", ""], "abc")
    assert messages[0] is None and "outside 0-10" in messages[1] and "college" in messages[5]
    assert "no grade given" in service.field_errors(backends, [""] * 5, "115")[0]
    assert "nothing left to predict" in service.field_errors(backends, ["7"] * 5, "115")[0]


def test_score_upload(backends, tmp_path):
    path = tmp_path / "cohort.csv"
    path.write_text(COHORT_CSV)
    scored, out, summary = service.score_upload(backends, path, threshold=6.0)
    assert scored.ok.tolist() == [True, False, True, False]
    assert "2 of 4 students scored" in summary and "1 at risk" in summary
    assert pd.read_csv(out).shape == (4, len(scored.columns()))
    table = service.display_table(scored)
    assert list(table.columns) == ["1st", "2nd", "3rd", "4th", "5th", "College Code", "semester_predicted",
                                   "pred_torch", "pred_onnx", "abs_diff", "low", "high", "error"]
    path.write_bytes(b"x" * (service.MAX_UPLOAD_BYTES + 1))
    with pytest.raises(UserError, match="upload limit"):
        service.score_upload(backends, path, 6.0)


def test_missing_or_stale_model_is_refused_with_a_rebuild_hint(run_copy, tmp_path):
    with pytest.raises(UserError, match="--rebuild"):
        service.load_backends(tmp_path / "empty")
    (run_copy / "model.pt").write_bytes((run_copy / "model.pt").read_bytes() + b" ")  # no longer the exported one
    with pytest.raises(UserError, match="stale"):
        service.load_backends(run_copy)
    result = cgpa("demo", str(run_copy), "--port", "1")
    assert result.returncode == 2 and "stale" in result.stderr and "--rebuild" in result.stderr


def test_api_predict_both_backends(app_url):
    client = Client(app_url, verbose=False)
    torch_value, onnx_value, diff, text, _ = client.predict("7.1", "6.8", "", "7.3", "", "115", api_name="/predict")
    assert abs(torch_value - onnx_value) <= 1e-5 and diff <= 1e-5
    assert "80% interval" in text and "µs" in text


@pytest.mark.parametrize("values, message", [
    (("7.1", "abc", "", "", "", "115"), "semester 2: expected a grade point"),
    (("7.1", "", "", "", "", "x"), "college: expected an integer"),
    (("", "", "", "", "", "115"), "no grade given"),
    (("7", "7", "7", "7", "7", "115"), "nothing left to predict"),
])
def test_api_answers_bad_input_with_its_message(app_url, values, message):
    client = Client(app_url, verbose=False)
    with pytest.raises(Exception, match=message):
        client.predict(*values, api_name="/predict")


def test_api_predict_batch(app_url, tmp_path):
    path = tmp_path / "cohort.csv"
    path.write_text(COHORT_CSV)
    client = Client(app_url, verbose=False)
    summary, table, download = client.predict(handle_file(str(path)), 6.0, api_name="/predict_batch")
    frame = pd.DataFrame(table["data"], columns=table["headers"])
    assert len(frame) == 4 and "2 of 4 students scored" in summary
    assert frame["error"][1].startswith("line 3: semester 2") and "nothing left" in frame["error"][3]
    assert pd.read_csv(download).shape[0] == 4


def test_dozens_of_clients_at_once_are_all_answered(app_url):
    client = Client(app_url, verbose=False)
    rng = np.random.default_rng(0)
    requests = [[f"{g:.2f}" for g in rng.uniform(5, 9, 3)] + ["", "", str(rng.choice([115, 116, 999]))]
                for _ in range(48)]
    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=48) as pool:
        answers = list(pool.map(lambda values: client.predict(*values, api_name="/predict"), requests))
    seconds = time.perf_counter() - started
    assert len(answers) == 48 and all(abs(a[0] - a[1]) <= 1e-5 for a in answers)
    print(f"48 simultaneous /predict calls answered in {seconds:.2f} s")


def test_rebuild_trains_exports_and_verifies(tmp_path, capsys):
    from data.synthetic import SyntheticSpec, generate_frame

    data = tmp_path / "cohort.csv"
    generate_frame(SyntheticSpec(students=120, seed=4)).to_csv(data, index=False)
    run = tmp_path / "rebuilt"
    service.rebuild(run, data)
    printed = capsys.readouterr().out
    assert "[1/3] training" in printed and "[3/3] verifying" in printed and "PASSED" in printed
    backends = service.load_backends(run)  # fresh and servable
    assert service.predict_student(backends, ["7", "7"], "115").abs_diff <= 1e-5
    assert (run / "MODEL_CARD.md").is_file()


def test_a_synthetic_model_is_labelled_in_the_app(exported_runs):
    from demo.app import build_demo

    demo = build_demo(exported_runs["elman"])
    texts = [getattr(block, "value", "") for block in demo.blocks.values()]
    assert any(isinstance(t, str) and "SYNTHETIC cohort" in t for t in texts)
    assert any(isinstance(t, str) and "Trained on a SYNTHETIC cohort" in t for t in texts)  # the model card tab
