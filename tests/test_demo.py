"""The demo: its service functions without UI, then the real app on a free port through
gradio_client, including many clients at once."""
from __future__ import annotations

import json
import re
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import gradio as gr
import numpy as np
import pandas as pd
import pytest
from conftest import SHIPPED, cgpa, port_of, request_from
from gradio_client import Client, handle_file
from gradio_client.exceptions import AppError, ValidationError

from cgpa_rnn.demo import environment, service, training
from cgpa_rnn.errors import UserError

COHORT_CSV = ("1st,2nd,3rd,4th,5th,College Code,Gender,Roll,Roll no.,Subject Code\n"
              "7.1,6.8,,7.3,,115,M,,1,16\n"
              "7.1,abc,,,,115,M,,2,16\n"
              "5.2,5.0,4.9,,,116,F,3,,16\n"
              "8,8,8,8,8,116,F,4,,16\n")

AT_RISK_BELOW = 6.0  # the shipped 0-10 model's default line (Scale.at_risk_line)


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
    assert result.actual is None
    assert result.cumulative_average == pytest.approx((7.1 + 6.8 + 7.3 + result.onnx_prediction) / 4, abs=1e-5)
    # The rest of the degree: the 5th semester, and the missing 3rd estimated; without the gap, the final CGPA
    # is the cumulative average with the prediction.
    assert result.ahead.semesters == [5] and result.ahead.median[0] == pytest.approx(result.onnx_prediction, abs=1e-5)
    assert result.ahead.final_low < result.ahead.final < result.ahead.final_high
    whole = service.predict_student(backends, ["7.1", "6.8", "7.0", "7.3", ""], "115")
    assert whole.ahead.final == pytest.approx(whole.cumulative_average, abs=1e-5)
    answer = service.student_answer(backends, result)
    assert f"Final CGPA after the 5th semester: {result.ahead.final:.2f}" in answer and "ending below 6:" in answer
    record = service.result_record(backends, result)["trajectory"]
    assert record["below"] == 6 and 0 <= record["probability_below"] <= 1 and record["sentence"] in answer
    early = service.predict_student(backends, ["7.1", "", "", "", ""], "115").ahead  # four semesters ahead
    assert early.semesters == [2, 3, 4, 5]
    widths = [high - low for low, high in zip(early.low, early.high)]
    assert widths[-1] > widths[0]  # uncertainty accumulates with the horizon


def test_a_student_with_the_final_semester_is_a_hindcast(backends):
    result = service.predict_student(backends, ["8.11", "7.68", "7.11", "7.43", "8.18"], "115")
    hidden = service.predict_student(backends, ["8.11", "7.68", "7.11", "7.43", ""], "115")
    assert result.semester == 5 and result.actual == pytest.approx(8.18)
    assert result.onnx_prediction == hidden.onnx_prediction  # predicted from the earlier four only
    assert result.ahead.finished and result.ahead.final == pytest.approx(np.mean([8.11, 7.68, 7.11, 7.43, 8.18]))
    assert "the actual one (nothing left to forecast)" in service.student_answer(backends, result)


def test_field_errors_point_at_the_field(backends):
    assert service.field_errors(backends, ["7", "", "", "", ""], "115") == [None] * 6
    messages = service.field_errors(backends, ["7", "12", "", "", ""], "abc")
    assert messages[0] is None and "outside 0-10" in messages[1] and "college" in messages[5]
    assert "no grade given" in service.field_errors(backends, [""] * 5, "115")[0]
    assert service.field_errors(backends, ["7"] * 5, "115") == [None] * 6  # a hindcast
    assert "only 5th semester is given" in service.field_errors(backends, ["", "", "", "", "7"], "115")[0]


def test_score_upload(backends, tmp_path):
    path = tmp_path / "cohort.csv"
    path.write_text(COHORT_CSV)
    scored, out, summary = service.score_upload(backends, path, threshold=AT_RISK_BELOW)
    assert scored.ok.tolist() == [True, False, True, True]
    assert "3 of 4 students scored**, 1 row with an error" in summary
    # Student 3 (5.2, 5.0, 4.9) is likely to end below 6; student 4 finished at 8: an outcome, not a forecast.
    assert "**1 of the 2 students whose final CGPA is forecast is more likely than not to end below 6**" in summary
    assert "0 of the 1 with nothing left to forecast ended below it" in summary
    at_risk = service.at_risk_table(scored)
    assert at_risk["student"].tolist() == ["116/3", "115/1", "116/4"]  # most likely first, the finished last
    assert at_risk["status"].tolist() == ["forecast", "forecast", "finished"] and at_risk["final CGPA"][2] == 8
    assert at_risk["P(below 6)"][0] > 0.5 > at_risk["P(below 6)"][1] and at_risk["P(below 6)"][2] == 0
    listed = pd.read_csv(service.write_at_risk(at_risk, out))
    assert listed["student"].tolist() == ["116/3", "115/1", "116/4"] and listed.columns[2] == "P(below 6)"
    written = pd.read_csv(out)  # the scored file carries every row's rest of the degree
    assert list(written.columns[-4:]) == ["final_cgpa", "final_low", "final_high", "p_below"]
    assert np.isnan(written["sem4_pred"][0]) and written["sem5_pred"][0] > 0 and written["final_cgpa"][3] == 8
    assert "Hindcast of 1 student" in summary and "in-sample" not in summary
    assert pd.read_csv(out).shape == (4, len(scored.columns()))
    assert "Largest torch/onnx difference: " in summary
    path.write_text("1st,2nd,College Code\n,,115\nabc,,116\n")  # nothing scorable: no difference to report
    _, _, summary = service.score_upload(backends, path, threshold=AT_RISK_BELOW)
    assert "0 of 2 students scored**" in summary and "difference" not in summary
    table = service.display_table(scored)  # the student and the prediction first; names that wrap on a phone
    assert list(table.columns) == ["student", "prediction (torch)", "low", "high", "semester predicted", "actual",
                                   "abs error", "1st", "2nd", "3rd", "4th", "5th", "College Code",
                                   "onnx runtime", "torch - onnx", "error"]
    assert table["student"].tolist() == ["115/1", "115/2", "116/3", "116/4"]  # the group and the ID, from either column
    assert table["actual"].tolist()[3] == 8 and np.isnan(table["actual"][0])  # only the complete student
    assert table["abs error"][3] == pytest.approx(abs(8 - table["onnx runtime"][3]), abs=2e-3)
    assert service.hindcast_frame(scored)["actual"].tolist() == [8.0]
    assert out.parent.parent == environment.folders().scored and out.name == "scored-cohort.csv"


@pytest.mark.parametrize("content, message", [
    (b"7,115\n" * 400_000, "2,344 KB is over the 2,048 KB limit"),
    (("1st,College Code\n" + "7,115\n" * 5001).encode(), r"more than 5,000 rows \(blank lines count too\) is over"),
    (("1st,College Code\n7,115\n" + "\n" * 2_000_000).encode(), r"more than 5,000 rows \(blank lines count"),
    ((",".join(f"c{i}" for i in range(100)) + "\n").encode(), "100 columns is over the 64-column limit"),
    (("1st," + "x" * 5000 + "\n7,1\n").encode(), "the header line is longer than 4,000 characters"),
    (b"1st,2nd,College Code\n", "the file has a header but no student rows"),
    ((b"<a href=x>1st</a>,College Code\n7,115\n"), "no semester columns found"),
])
def test_uploads_are_refused_cheaply_and_named_without_server_paths(backends, tmp_path, content, message):
    path = tmp_path / "upload.csv"
    path.write_bytes(content)
    with pytest.raises(UserError, match=message) as error:
        service.score_upload(backends, path, AT_RISK_BELOW)
    assert str(tmp_path) not in str(error.value) and len(str(error.value)) < 400
    assert str(error.value).startswith("upload.csv")


def test_the_data_sets_complete_students_are_scored_by_hindcast(backends, tmp_path):
    from cgpa_rnn.data import SHIPPED_DATA

    complete = tmp_path / "complete.csv"
    complete.write_text("".join(SHIPPED_DATA.read_text().splitlines(keepends=True)[:51]))  # 50 complete students
    scored, _, summary = service.score_upload(backends, complete, AT_RISK_BELOW)
    assert "50 of 50 students scored" in summary and scored.hindcast.all()
    assert (scored.semester == 5).all() and "Hindcast of 50 students" in summary
    mae = float(summary.split("mean absolute error ")[1].split()[0])
    assert 0.1 < mae < 0.8 and mae == pytest.approx(np.mean(np.abs(scored.actual - scored.served)), abs=0.005)
    frame = service.hindcast_frame(scored)
    assert len(frame) == 50 and set(frame["interval"]) <= {"inside 80% interval", "outside"}
    result = cgpa("predict", str(SHIPPED), "--backend", "torch", "--csv", str(complete),
                  "--out", str(tmp_path / "o.csv"))
    assert result.returncode == 0 and "scored 50 of 50 rows" in result.stdout, result.stderr
    assert f"mean absolute error {mae:.2f}" in result.stdout


def test_the_shipped_file_is_said_to_be_in_sample(backends):
    from cgpa_rnn.data import SHIPPED_DATA

    scored, _, summary = service.score_upload(backends, SHIPPED_DATA, AT_RISK_BELOW)
    assert int(scored.hindcast.sum()) == 172  # every complete student of the data set
    assert "model's own training data, so this is in-sample" in summary


def test_hindcast_of_every_students_last_known_semester(backends, tmp_path):
    path = tmp_path / "cohort.csv"
    path.write_text(COHORT_CSV)
    scored, _, summary = service.score_upload(backends, path, AT_RISK_BELOW, hindcast_last_given=True)
    assert scored.semester.tolist() == [4, 0, 3, 5] and np.allclose(scored.actual[[0, 2, 3]], [7.3, 4.9, 8.0])
    assert "Hindcast of 3 students" in summary
    one = tmp_path / "one.csv"
    one.write_text("1st,2nd,College Code\n7,,115\n")
    scored, _, _ = service.score_upload(backends, one, AT_RISK_BELOW, hindcast_last_given=True)
    assert "a hindcast needs earlier semesters" in scored.errors[0]


def test_the_at_risk_line_and_the_warning_follow_the_models_scale(backends, tmp_path):
    from cgpa_rnn.encoding import Scale

    assert backends.scale.at_risk_line() == AT_RISK_BELOW and Scale(0, 20).at_risk_line() == 12
    four_point = tmp_path / "gpa4.csv"  # a 4-point class: on the 10-point model's scale, but unlike its students
    four_point.write_text("1st,2nd,3rd,4th,College Code\n" + "".join(
        f"2.{k},2.9,3.0,2.8,115\n" for k in range(8)))
    scored, _, summary = service.score_upload(backends, four_point, AT_RISK_BELOW)
    assert summary.startswith("**Warning: these grades average") and "train a model on your own cohort" in summary
    from cgpa_rnn.data import SHIPPED_DATA

    _, _, alike = service.score_upload(backends, SHIPPED_DATA, AT_RISK_BELOW)
    assert "Warning" not in alike
    result = cgpa("predict", str(SHIPPED), "--csv", str(four_point), "--out", str(tmp_path / "out.csv"))
    assert result.returncode == 0 and result.stderr.startswith("Warning: these grades average"), result.stderr
    one = service.predict_student(backends, ["2.9", "3.0", "2.8"], "115")
    assert one.warning and service.result_record(backends, one)["warning"] == one.warning


@pytest.mark.parametrize("value", ["abc", float("nan"), -1, 1e308, "11"])
def test_the_at_risk_threshold_is_a_grade_point(backends, tmp_path, value):
    path = tmp_path / "cohort.csv"
    path.write_text(COHORT_CSV)
    with pytest.raises(UserError, match="at risk below: expected a grade point between 0 and 10"):
        service.score_upload(backends, path, value)


def test_a_blank_at_risk_line_is_the_scales_own(backends, tmp_path):
    path = tmp_path / "cohort.csv"
    path.write_text(COHORT_CSV)
    for blank in ("", None):
        assert "end below 6**" in service.score_upload(backends, path, blank)[2]


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
    torch_value, onnx_value, diff, text, asked, why, hidden = client.predict("7.1", "6.8", "", "7.3", "", "115",
                                                                            api_name="/predict")
    assert torch_value == onnx_value == "7.50" and float(diff) <= 1e-5 and abs(asked["prediction"] - 7.5040) < 1e-4
    assert asked["grades"] == [pytest.approx(7.1), pytest.approx(6.8), None, pytest.approx(7.3), None]
    assert asked["semester"] == 5 and asked["low"] < asked["prediction"] < asked["high"]  # what the chart draws
    _, _, _, text_4th, asked_4th, *_ = client.predict("7.1", "6.8", "", "7.3", "", "115", True, api_name="/predict")
    assert asked_4th["grades"][3] is None and "4th semester" in text_4th
    assert "actual 4th semester (0-10) was **7.30**" in text_4th
    assert "80% interval 6.88 to 8.09" in text and "Both runtimes agree" in text and " ms in torch" in text
    assert "Why: The 5th semester average at college 115 is" in text and why.startswith("<svg")
    units = json.loads((SHIPPED / "config.json").read_text())["model"]["hidden"]
    assert hidden.count("<rect") == 4 * units  # the hidden state after each of the four semesters read
    record = client.predict(semester_1st="8.11", semester_2nd="7.68", semester_3rd="7.11", semester_4th="7.43",
                            semester_5th="8.18", college="999", api_name="/predict_json")
    assert record["semester"] == 5 and record["hindcast_actual"] == pytest.approx(8.18)
    assert record["known_college"] is False and record["abs_diff"] <= 1e-5
    assert set(record["backends"]) == {"torch", "onnxruntime"} and record["backends"]["torch"]["latency_us"] > 0
    assert record["trajectory"]["finished"] and record["trajectory"]["probability_below"] == 0


def test_the_api_page_names_every_parameter_and_output(app_url):
    import contextlib
    import io
    import re

    shown = io.StringIO()
    with contextlib.redirect_stdout(shown):
        Client(app_url, verbose=False).view_api()
    text = shown.getvalue()
    assert "predict(semester_1st, semester_2nd, semester_3rd, semester_4th, semester_5th, college" in text
    assert not re.search(r"\b(param|value)_\d+", text), text
    assert "/train_own" not in text and "/predict_own" not in text  # session-bound: not for stateless callers


@pytest.mark.parametrize("api", ["/predict", "/predict_json"])
def test_the_api_page_says_a_prediction_needs_the_college(app_url, api):
    client = Client(app_url, verbose=False)
    parameters = {p["parameter_name"]: p for p in client.view_api(print_info=False, return_format="dict")[
        "named_endpoints"][api]["parameters"]}
    assert parameters["college"]["parameter_has_default"] is False  # "(required)" on the API page and view_api()
    assert parameters["hindcast_last_given"]["parameter_has_default"] is True  # the flag keeps its default
    with pytest.raises(TypeError, match="required argument: college"):  # not answered for a college never given
        client.predict(semester_1st="7.1", semester_2nd="6.8", semester_3rd="", semester_4th="7.3", semester_5th="",
                       api_name=api)


def test_the_page_endpoint_reads_values_as_sent_like_the_json_endpoint(app_url):
    # Gradio converts no field of /predict (demo.tabs.common.AS_SENT): numbers sent as numbers and
    # null for a blank reach the same readers as text does, as with /predict_json.
    client = Client(app_url, verbose=False)
    as_text = client.predict("7.1", "6.8", "", "7.3", "", "115", False, api_name="/predict")
    as_numbers = client.predict(7.1, 6.8, None, 7.3, None, 115, False, api_name="/predict")
    assert as_numbers[:3] == as_text[:3] and as_numbers[4] == as_text[4]
    with pytest.raises(ValidationError, match=r"1st semester \(0-10\): expected a grade point"):
        client.predict(True, "6.8", "", "", "", "115", api_name="/predict")  # a boolean is no grade


@pytest.mark.parametrize("values, message", [
    (("7.1", "abc", "", "", "", "115"), "2nd semester (0-10): expected a grade point"),
    (("7.1", "", "", "", "", "x"), "college: expected an integer"),
    (("", "", "", "", "", "115"), "no grade given"),
    (("", "", "", "", "7", "115"), "only 5th semester is given"),
])
def test_api_answers_bad_input_with_its_message(app_url, values, message):
    client = Client(app_url, verbose=False)
    with pytest.raises(Exception, match=re.escape(message)):
        client.predict(*values, api_name="/predict")


def test_api_predict_batch(app_url, tmp_path):
    path = tmp_path / "cohort.csv"
    path.write_text(COHORT_CSV)
    client = Client(app_url, verbose=False)
    summary, chart, at_risk, table, download, at_risk_download = client.predict(
        handle_file(str(path)), AT_RISK_BELOW, api_name="/predict_batch")
    frame = pd.DataFrame(table["data"], columns=table["headers"])
    assert len(frame) == 4 and "3 of 4 students scored" in summary and "Hindcast of 1 student " in summary
    assert frame["error"][1].startswith("line 3: 2nd semester (0-10)") and frame["actual"][3] == 8
    assert chart["data"] and pd.read_csv(download).shape[0] == 4  # plain values, not update dicts
    assert [row[0] for row in at_risk["data"]] == ["116/3", "115/1", "116/4"]  # named by the file's IDs
    assert pd.read_csv(at_risk_download)["student"].tolist() == ["116/3", "115/1", "116/4"]
    summary, chart, *_ = client.predict(handle_file(str(path)), AT_RISK_BELOW, True, api_name="/predict_batch")
    assert "Hindcast of 3 students" in summary


def test_dozens_of_clients_at_once_are_all_answered(app_url):
    """48 calls at once from four addresses (each within its share of the queue), by name as a program calls."""
    rng, port = np.random.default_rng(0), port_of(app_url)
    requests = [[f"{g:.2f}" for g in rng.uniform(5, 9, 3)] + ["", "", str(rng.choice([115, 116, 999])), False]
                for _ in range(48)]

    def predict(numbered: tuple[int, list[str]]) -> list:
        number, values = numbered
        address = f"127.0.1.{number % 4 + 1}"
        _, body = request_from(port, address, "POST", "/gradio_api/call/predict", json.dumps({"data": values}),
                               {"content-type": "application/json"})
        _, stream = request_from(port, address, "GET", f"/gradio_api/call/predict/{json.loads(body)['event_id']}")
        assert b"event: complete" in stream, stream[-300:]
        return json.loads(stream.rsplit(b"data: ", 1)[1])

    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=48) as pool:
        answers = list(pool.map(predict, enumerate(requests)))
    seconds = time.perf_counter() - started
    assert len(answers) == 48 and all(a[0] == a[1] and float(a[2]) <= 1e-5 for a in answers)
    print(f"48 simultaneous /predict calls answered in {seconds:.2f} s")


def test_rebuild_trains_exports_and_verifies_then_keeps_every_file_the_run_holds(tmp_path, capsys):
    from cgpa_rnn.data import load_csv
    from cgpa_rnn.data.synthetic import SyntheticSpec, generate_frame
    from cgpa_rnn.export import pipeline
    from cgpa_rnn.model.config import TrainConfig

    data = tmp_path / "cohort.csv"
    generate_frame(SyntheticSpec(students=120, seed=4)).to_csv(data, index=False)
    run = tmp_path / "rebuilt"
    training.rebuild(run, data)
    printed = capsys.readouterr().out
    assert "[1/3] training" in printed and "[3/3] verifying" in printed and "PASSED" in printed
    backends = service.load_backends(run)  # fresh and servable
    assert service.predict_student(backends, ["7", "7"], "115").abs_diff <= 1e-5
    assert (run / "MODEL_CARD.md").is_file()

    # A run that was also cross-validated and benchmarked comes back with those files, measured as before.
    pipeline.evaluate(load_csv(data), TrainConfig(), run, folds=2, repeats=1, cells=("elman",),
                      command="cgpa evaluate --folds 2 --repeats 1 --cells elman --out rebuilt", console=False)
    pipeline.bench(run, calls=20, batch=16)
    before = sorted(p.name for p in run.iterdir())
    training.rebuild(run, data)
    printed = capsys.readouterr().out
    assert "[2/5] cross-validating" in printed and "[5/5] benchmarking" in printed
    assert sorted(p.name for p in run.iterdir()) == before
    evaluation = json.loads((run / "evaluation.json").read_text())
    assert (evaluation["folds"], evaluation["repeats"], list(evaluation["models"])) == (2, 1, ["elman"])
    assert evaluation["command"] == "cgpa evaluate --folds 2 --repeats 1 --cells elman --out rebuilt"
    assert json.loads((run / "bench.json").read_text())["calls"] == 20
    card = (run / "MODEL_CARD.md").read_text()
    assert "## Cross-validated accuracy (2-fold x 1" in card and "## Speed and size" in card


def test_a_synthetic_model_is_labelled_in_the_app(exported_runs):
    from cgpa_rnn.demo.app import build_demo

    demo = build_demo(exported_runs["elman"])
    texts = [getattr(block, "value", "") for block in demo.blocks.values()]
    assert any(isinstance(t, str) and "SYNTHETIC cohort" in t for t in texts)
    assert any(isinstance(t, str) and "Trained on a SYNTHETIC cohort" in t for t in texts)  # the model card tab


def test_downloads_are_spreadsheet_safe_and_do_not_stay_on_the_server(app_url, tmp_path):
    path = tmp_path / "cohort.csv"
    path.write_text("1st,2nd,College Code,=HYPERLINK(\"x\")\n7.1,6.8,115,@SUM(1)\n")
    client = Client(app_url, verbose=False)
    download = client.predict(handle_file(str(path)), AT_RISK_BELOW, api_name="/predict_batch")[4]
    header, row = Path(download).read_text().splitlines()[:2]
    assert "'=HYPERLINK" in header and "'@SUM(1)" in row
    scored = list(environment.folders().scored.iterdir())
    assert scored  # kept until Gradio has its copy, then deleted by the timer (test_retention.py)


@pytest.mark.parametrize("api, values", [
    ("predict", ["7"]),
    ("predict", ["7.1", "6.8", "", "7.3", "", "115", False, "one too many"]),  # Gradio would drop it silently
    ("predict_json", ["7.1", "6.8", "", "7.3", "", "115"]),
])
def test_a_call_with_the_wrong_number_of_values_is_refused_naming_the_parameters(app_url, api, values):
    import json
    import urllib.error
    import urllib.request

    request = urllib.request.Request(f"{app_url}gradio_api/call/{api}", data=json.dumps({"data": values}).encode(),
                                     headers={"Content-Type": "application/json"})
    with pytest.raises(urllib.error.HTTPError) as answer:
        urllib.request.urlopen(request)
    body = json.loads(answer.value.read())["detail"]
    assert body == (f"/{api} expects 7 values (semester_1st, semester_2nd, semester_3rd, semester_4th, semester_5th, "
                    f"college, hindcast_last_given), got {len(values)}")


@pytest.mark.parametrize("flag, hindcast", [("false", False), ("no", False), ("0", False), (False, False),
                                            ("true", True), ("yes", True), (True, True)])
def test_the_hindcast_flag_is_read_strictly(app_url, flag, hindcast):
    record = Client(app_url, verbose=False).predict("7.1", "6.8", "", "7.3", "", "115", flag, api_name="/predict_json")
    assert record["semester"] == (4 if hindcast else 5)


def test_an_unreadable_hindcast_flag_is_refused_in_plain_text(app_url):
    with pytest.raises(AppError) as error:
        Client(app_url, verbose=False).predict("7.1", "6.8", "", "7.3", "", "115", "maybe", api_name="/predict_json")
    assert "hindcast_last_given: expected" in str(error.value) and "'maybe'" in str(error.value)  # no &#x27;


def test_a_broken_model_directory_shows_no_server_details(run_copy, capsys):
    from cgpa_rnn.demo.app import build_demo

    (run_copy / "model.onnx").write_bytes(b"not onnx")  # beside a sound checkpoint: only the ONNX file is damaged
    demo = build_demo(run_copy)
    shown = " ".join(str(getattr(block, "value", "")) for block in demo.blocks.values())
    assert "cannot be served" in shown and str(run_copy) not in shown and "onnx" not in shown.lower().replace(
        "cgpa-rnn", "")
    assert not any(isinstance(block, gr.Tab) for block in demo.blocks.values())  # the error page, not the app
    assert f"{run_copy / 'model.onnx'}" in capsys.readouterr().err  # the details, naming the file, are in the log


def test_a_huge_value_is_quoted_short(app_url):
    client = Client(app_url, verbose=False)
    with pytest.raises(ValidationError) as error:  # the field's validator refuses it before the prediction
        client.predict("7", "9" * 1_000_000, "", "", "", "115", api_name="/predict")
    assert "2nd semester" in str(error.value) and len(str(error.value)) < 1000


def test_demo_port_problems_are_one_line():
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = str(taken.getsockname()[1])
        for value, message in (("70000", "expected a port number between 1 and 65535"),
                               (port, f"--port {port}: another program is already listening on it")):
            result = cgpa("demo", "--port", value)
            assert result.returncode == 2 and message in result.stderr and "Traceback" not in result.stderr


def test_the_app_refuses_an_oversized_upload_without_scoring_it(app_url, tmp_path):
    client = Client(app_url, verbose=False)
    rows = tmp_path / "many-rows.csv"
    rows.write_text("1st,College Code\n" + "7,115\n" * 6000)
    with pytest.raises(Exception, match=r"many-rows.csv: more than 5,000 rows \(blank lines count too\) is over the"):
        client.predict(handle_file(str(rows)), AT_RISK_BELOW, api_name="/predict_batch")
    big = tmp_path / "big.csv"
    big.write_bytes(b"1st,College Code\n" + b"7,115\n" * 400_000)  # 2.3 MB: Gradio refuses it before it lands
    with pytest.raises(Exception, match="exceeds the maximum file size"):  # the page's limit, told to clients
        client.predict(handle_file(str(big)), AT_RISK_BELOW, api_name="/predict_batch")


def test_the_demo_benchmark_measures_over_http():
    from cgpa_rnn.demo.bench import demo_bench, format_demo_bench

    report = demo_bench(SHIPPED, calls=10, clients=5)
    assert 0 < report["p50_ms"] <= report["p95_ms"]
    for part in (report["new_visitors"], report["returning_visitors"]):
        assert part["answered"] == 5 and 0 < part["median_ms"] <= part["max_ms"]
    text = format_demo_bench(report)
    assert "5 visitors at once (first call of each): 5 answered" in text
    assert "5 visitors at once (sessions already open): 5 answered" in text
    floods = {flood["door"]: flood for flood in report["floods"]}
    assert {"api", "api-unread", "upload"} <= set(floods) and all(f["visitor"]["answered"] == f["visitor"]["asked"] > 0
                                                    for f in floods.values())  # the visitor is served throughout
    assert floods["upload"]["statuses"].get(200, 0) <= 10 and floods["upload"]["folder_mb"] < 64  # 20 MB a minute
    assert floods["api-unread"]["statuses"].get(429, 0) > 0  # calls left waiting stop at the client's share


def _raw_status(app_url: str, head: str, body: bytes = b"") -> tuple[int, str]:
    """Send a request as written and read the answer's status line and body, without waiting
    for the server to take a body it refused."""
    import socket

    port = int(app_url.rstrip("/").rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port), timeout=30) as connection:
        connection.sendall(head.encode() + body)
        answer = b""
        while b"\r\n\r\n" not in answer or not answer.rstrip().endswith(b"}"):
            chunk = connection.recv(65536)
            if not chunk:
                break
            answer += chunk
    status_line, _, rest = answer.decode(errors="replace").partition("\r\n")
    return int(status_line.split()[1]), rest.split("\r\n\r\n", 1)[-1]


def test_oversized_bodies_are_refused_before_gradio_reads_them(app_url):
    limit = "the request is larger than 2,304 KB; uploads are limited to 2,048 KB"
    declared = ("POST /gradio_api/upload HTTP/1.1\r\nHost: x\r\nContent-Type: multipart/form-data; boundary=b\r\n"
                "Content-Length: 52428800\r\n\r\n")
    status, body = _raw_status(app_url, declared)  # 50 MB declared, none sent: answered on sight
    assert status == 413 and limit in body
    chunk = b"x" * (1024 * 1024)
    chunked = b"".join(b"%x\r\n%s\r\n" % (len(chunk), chunk) for _ in range(3)) + b"0\r\n\r\n"
    status, body = _raw_status(app_url, "POST /gradio_api/upload HTTP/1.1\r\nHost: x\r\nContent-Type: "
                               "multipart/form-data; boundary=b\r\nTransfer-Encoding: chunked\r\n\r\n", chunked)
    assert status == 413 and limit in body  # no length given: counted while it streams


def test_deep_links_and_the_run_history_page_are_off(app_url):
    import urllib.error
    import urllib.request

    for path in ("gradio_api/deep_link?session_hash=abc", "gradio_api/runs"):
        with pytest.raises(urllib.error.HTTPError) as answer:
            urllib.request.urlopen(app_url + path)
        assert answer.value.code == 404
    config = json.loads(urllib.request.urlopen(app_url + "config").read())
    assert config["run_history"] is False  # the page records no run in the browser either


def test_the_servers_files_live_in_a_private_folder_of_its_own(app_url, tmp_path):
    import os
    import stat

    folders = environment.folders()
    assert folders.root.name.startswith(f"cgpa-demo-{os.getpid()}-") and len(folders.root.name) > len("cgpa-demo-1-")
    assert stat.S_IMODE(folders.root.stat().st_mode) == 0o700 and os.environ["GRADIO_TEMP_DIR"] == str(folders.gradio)
    path = tmp_path / "private.csv"
    path.write_text(COHORT_CSV)
    Client(app_url, verbose=False).predict(handle_file(str(path)), AT_RISK_BELOW, api_name="/predict_batch")
    assert list(environment.folders().gradio.rglob("private.csv"))  # Gradio's copy of the upload is in there too
    import importlib

    from cgpa_rnn.demo.gradio_compat import CACHE_HOLDERS  # MCP's copies of data: URLs too, not /tmp/gradio
    assert all(importlib.import_module(name).DEFAULT_TEMP_DIR == str(folders.gradio) for name in CACHE_HOLDERS)


def test_folders_of_stopped_servers_are_removed_and_symlinks_are_not_followed(tmp_path):
    import tempfile

    root = Path(tempfile.gettempdir())
    stopped = root / "cgpa-demo-999999999-abc"  # no such process
    (stopped / "gradio").mkdir(parents=True)
    (stopped / "gradio" / "upload.csv").write_text("7,115\n")
    victim = tmp_path / "precious"
    victim.mkdir()
    (victim / "keep.txt").write_text("mine")
    planted = root / "cgpa-demo-999999998-planted"
    planted.symlink_to(victim)
    try:
        removed = environment.sweep_stopped_servers()
        assert stopped.name in removed and not stopped.exists()
        assert (victim / "keep.txt").read_text() == "mine" and planted.name not in removed
        assert environment.folders().root.exists()  # this server's own folder stays
    finally:
        planted.unlink()


def test_refused_input_is_logged_by_file_and_reason_without_its_values(app_url, tmp_path, capfd):
    path = tmp_path / "class-of-2024.csv"
    path.write_text("Roll 4711,College Code\n9.87,115\n")
    client = Client(app_url, verbose=False)
    with pytest.raises(Exception, match="no semester columns found"):
        client.predict(handle_file(str(path)), AT_RISK_BELOW, api_name="/predict_batch")
    with pytest.raises(Exception, match="outside 0-10"):
        client.predict("7.25", "13.75", "", "", "", "115", api_name="/predict_json")
    log = capfd.readouterr().err
    assert "refused class-of-2024.csv: no semester columns found" in log  # the name once, unmasked
    assert "Traceback" not in log and "4711" not in log and "13.75" not in log and "9.87" not in log


class HeldTraining:
    """Stands in for training in the app of this test session: each training holds its place in
    the line (reporting progress) until released, then fails cheaply."""

    def __init__(self):
        self.release, self.started = threading.Event(), threading.Event()

    def __call__(self, path, root, report, *form):
        self.started.set()
        while not self.release.wait(0.05):
            report(0.1, "training")
        raise UserError("released")


def _waiting_in_line(job) -> bool:
    """Whether a /train_own job reports that it waits for the trainings ahead of it."""
    return any("waiting for the trainings ahead" in (unit.desc or "") for unit in job.status().progress_data or [])


def test_asking_your_model_while_it_trains_says_it_is_training(app_url, monkeypatch, tmp_path):
    held = HeldTraining()
    monkeypatch.setattr(training, "train_own_model", held)
    upload = tmp_path / "our-class.csv"
    upload.write_text(COHORT_CSV)  # never read: the stand-in trains on nothing
    running, waiting = Client(app_url, verbose=False), Client(app_url, verbose=False)  # two pages (sessions)
    try:
        first = running.submit(handle_file(str(upload)), api_name="/train_own")
        assert held.started.wait(60)  # the first page's training runs
        second = waiting.submit(handle_file(str(upload)), api_name="/train_own")
        deadline = time.monotonic() + 60
        while not _waiting_in_line(second) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert _waiting_in_line(second)
        with pytest.raises(AppError, match="your model is still training: try again when it is done"):
            running.predict("7,6.5,,7", "115", api_name="/predict_own")
        with pytest.raises(AppError, match=r"your training is waiting in line \(1 ahead of it\): try again when "
                                           "your model is done"):
            waiting.predict("7,6.5,,7", "115", api_name="/predict_own")
    finally:
        held.release.set()
    for job in (first, second):
        with pytest.raises(AppError, match="released"):
            job.result(timeout=60)
    with pytest.raises(AppError, match="no model of yours is loaded"):  # once the line is left, as before
        running.predict("7,6.5,,7", "115", api_name="/predict_own")


def test_agents_list_and_call_the_stateless_endpoints_as_mcp_tools(app_url):
    import ast
    import asyncio
    import base64
    import urllib.request

    from conftest import free_port
    from mcp import ClientSession
    from mcp.client.streamable_http import streamable_http_client

    from cgpa_rnn.demo.app import build_demo, launch

    demo = build_demo(SHIPPED)
    port = free_port()
    launch(demo, server_name="127.0.0.1", port=port, mcp=True, prevent_thread_lock=True, quiet=True)

    async def ask():
        async with (streamable_http_client(f"http://127.0.0.1:{port}/gradio_api/mcp/") as (read, write, _),
                    ClientSession(read, write) as session):
            await session.initialize()
            tools = {tool.name: tool for tool in (await session.list_tools()).tools}
            values = {"semester_1st": "7.1", "semester_2nd": "6.8", "semester_3rd": "", "semester_4th": "7.3",
                      "semester_5th": "", "college": "115", "hindcast_last_given": False}
            answer = await session.call_tool("predict_student", values)
            page_endpoint = await session.call_tool("page_predict", values)
            cohort = ("Roll,1st,2nd,3rd,4th,5th,College Code\n"
                      "A1,5.2,5.0,4.9,,,116\nA2,7.1,6.8,,,,115\nA3,8,8,8,8,8,116\n")
            scored = await session.call_tool("score_cohort", {
                "cohort_csv": "data:text/csv;base64," + base64.b64encode(cohort.encode()).decode(),
                "at_risk_below": 6, "hindcast_last_given": False})
            return tools, answer, page_endpoint, scored

    try:  # in a thread of its own: the browser tests' playwright keeps an event loop in this one
        with ThreadPoolExecutor(1) as pool:
            tools, answer, page_endpoint, scored = pool.submit(asyncio.run, ask()).result(timeout=120)
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/gradio_api/mcp/schema", timeout=30) as listed:
            schema = {tool["name"]: tool for tool in json.load(listed)}  # what the API page's MCP view shows
    finally:
        demo.close()
    assert sorted(tools) == ["predict_student", "score_cohort"]  # the session-bound endpoints are not tools
    assert sorted(schema) == sorted(tools)  # nor is the page's own endpoint (/predict) in either
    assert page_endpoint.isError and "Unknown tool" in page_endpoint.content[0].text  # nor callable as one
    for tool_schema in (schema["predict_student"]["inputSchema"], tools["predict_student"].inputSchema):
        assert "college" in tool_schema.get("required", [])  # a prediction needs it
    described = tools["predict_student"]
    assert "0-10 scale" in described.inputSchema["properties"]["semester_1st"]["description"]
    assert "blank" in described.inputSchema["properties"]["semester_3rd"]["description"]
    assert "115, 116, 165, 241" in described.inputSchema["properties"]["college"]["description"]
    assert "College Code" in tools["score_cohort"].inputSchema["properties"]["cohort_csv"]["description"]
    record = ast.literal_eval(answer.content[0].text)  # Gradio writes the record as Python literals
    expected = Client(app_url, verbose=False).predict("7.1", "6.8", "", "7.3", "", "115",
                                                      api_name="/predict_json")
    assert not answer.isError and record["prediction"] == expected["prediction"]
    assert (record["low"], record["high"], record["semester"]) == (expected["low"], expected["high"], 5)
    assert record["trajectory"] == expected["trajectory"]
    assert record["trajectory"]["semesters"] == [5] and "Final CGPA after the 5th semester" in record["trajectory"][
        "sentence"]
    # An agent gets the at-risk list, named by the file's IDs: the likeliest below the line first, the finished last.
    listed = scored.content[0].text
    assert not scored.isError and "'P(below 6)', 'final CGPA'" in listed
    assert listed.index("['116/A1', 'forecast'") < listed.index("['115/A2', 'forecast'") < listed.index(
        "['116/A3', 'finished'")


def test_the_grades_asked_leave_the_servers_memory_after_the_newest_sessions():
    """Gradio keeps each session's last values (the grades asked) in memory: for the newest
    SESSIONS_KEPT sessions only, not its default 10,000."""
    from conftest import free_port

    from cgpa_rnn.demo.app import SESSIONS_KEPT, build_demo, launch
    from cgpa_rnn.demo.bench import Visitor
    from cgpa_rnn.demo.gradio_compat import sessions_held

    demo = build_demo(SHIPPED)
    port = free_port()
    launch(demo, server_name="127.0.0.1", port=port, prevent_thread_lock=True, quiet=True)
    try:
        first = Visitor(port, ["7.13", "6.81", "", "7.3", "", "115", False])
        first.predict()
        session = json.loads(first.body)["session_hash"]
        kept = [c["props"].get("value") for c in sessions_held(demo)[session].components if "props" in c]
        assert "7.13" in kept  # what is kept, until...
        for _ in range(SESSIONS_KEPT):
            Visitor(port, ["7", "", "", "", "", "115", False]).predict()
        assert session not in sessions_held(demo) and len(sessions_held(demo)) == SESSIONS_KEPT
        assert first.predict() > 0  # the session goes on: its page state is built again
    finally:
        demo.close()


@pytest.mark.slow
def test_a_server_stopped_by_sigterm_deletes_its_folder():
    """kill, systemd, Docker and a Space stop a server with SIGTERM: its files must go with it."""
    import signal
    import subprocess
    import sys
    import tempfile
    import urllib.request

    from cgpa_rnn.port import free_port

    port = free_port()
    server = subprocess.Popen([sys.executable, "-m", "cgpa_rnn", "demo", "--port", str(port)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/config", timeout=5).close()
                break
            except OSError:
                time.sleep(0.5)
        folders = list(Path(tempfile.gettempdir()).glob(f"{environment.SERVER_PREFIX}{server.pid}-*"))
        assert len(folders) == 1, "the server made no folder of its own"
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=30)
    finally:
        server.kill()
    assert not folders[0].exists()


def test_the_at_risk_list_names_students_by_an_id_column_of_any_common_name(backends, tmp_path):
    path = tmp_path / "other-school.csv"
    path.write_text("Student_ID,1st,2nd,College Code\nS-17,5,5.1,115\nS-18,8,8.2,116\n")
    scored, _, _ = service.score_upload(backends, path, AT_RISK_BELOW)
    assert service.at_risk_table(scored)["student"].tolist() == ["115/S-17", "116/S-18"]
