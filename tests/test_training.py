"""A visitor's own model: trained, exported and verified from an upload, served to one session, deleted."""
from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from conftest import tiny_config
from gradio_client import Client, handle_file
from gradio_client.exceptions import AppError

from cgpa_rnn.demo import service, training, visitors
from cgpa_rnn.errors import UserError
from cgpa_rnn.model.train import train_run


@pytest.fixture(scope="module")
def own_csv(tmp_path_factory):
    from cgpa_rnn.data.synthetic import SyntheticSpec, generate_frame

    path = tmp_path_factory.mktemp("own") / "my cohort.csv"  # seven semesters: not the shipped model's five
    generate_frame(SyntheticSpec(students=80, seed=5, semesters=7)).to_csv(path, index=False)
    return path


def test_a_visitors_model_is_trained_verified_served_and_deleted(own_csv, monkeypatch, tmp_path):
    monkeypatch.setattr(visitors, "MAX_MODELS", 1)
    models = visitors.OwnModels(tmp_path)
    steps = []
    model = models.train("visitor-a", own_csv, lambda share, what: steps.append((share, what)))
    shares, texts = zip(*steps)
    assert list(shares) == sorted(shares) and shares[-1] < 1 and len(steps) > 20  # per epoch, then each step
    assert texts[0] == "training on my cohort.csv (sha256 " + texts[0].split("sha256 ")[1]
    assert texts[-3:] == ("exporting to ONNX", "verifying ONNX against torch", "loading both runtimes")
    assert model.parity["passed"] and model.parity["training_prefixes_included"]
    assert [p.name for p in model.downloads] == ["model.onnx", "parity.json", "MODEL_CARD.md"]
    assert all(p.is_file() for p in model.downloads)
    offered = model.downloads[1].read_text()  # verification ran the students' own prefixes: none is quoted
    assert "worst_input_shape" in offered and "worst_input\"" not in offered
    assert "cgpa train --data my cohort.csv" in model.downloads[2].read_text()
    table = training.error_table(model)
    assert table[0][0] == "next semester" and table[0][1] > 0 and 0 < table[0][2] < 3 and 0 < table[0][3] < 3
    result = service.predict_student(models.get("visitor-a").backends, "7,6.5,,7", "115")
    assert model.backends.semesters == 7 and result.semester == 5 and result.abs_diff <= 1e-5
    assert service.predict_student(model.backends, ["7"] * 7, "115").actual == 7  # the final semester: a hindcast
    with pytest.raises(UserError, match="no model of yours is loaded"):
        models.get("visitor-b")  # another session does not see it
    second = models.train("visitor-b", own_csv)  # over the limit of one: the least recently used goes
    assert not model.directory.exists() and len(models) == 1
    models.discard("visitor-b")
    assert not second.directory.exists() and len(models) == 0


@pytest.mark.parametrize("content, message", [
    ("1st,2nd,College Code,Roll\n" + "".join(f"7,7,115,{i}\n" for i in range(5)), "5 students are too few"),
    ("1st,2nd,College Code\n7,12,115\n", "grade 12 is outside 0-10"),
    (",".join(f"sem{i}" for i in range(1, 14)) + ",College Code,Roll\n" + "7," * 13 + "115,1\n",
     "13 semesters is over the 12-semester limit"),
    ("1st,College Code,Roll\n" + "7,115,1\n" * 3001, r"more than 3,000 rows \(blank lines count too\) is over"),
    ("1st,2nd,College Code,Roll\n" + "".join(f"7,,115,{i}\n" for i in range(30)), "no next semester to learn"),
])
def test_training_files_are_refused_with_their_reason(tmp_path, content, message):
    path = tmp_path / "mine.csv"
    path.write_text(content)
    with pytest.raises(UserError, match=message) as error:
        training.train_own_model(path, tmp_path)
    assert str(error.value).startswith("mine.csv") and str(tmp_path) not in str(error.value)
    assert [p.name for p in tmp_path.iterdir()] == ["mine.csv"]  # nothing left behind


def test_the_time_budget_stops_training_and_keeps_a_model(tiny_cohort, tmp_path):
    metrics = train_run(tiny_cohort, tiny_config("gru", max_epochs=100_000, patience=100_000, max_seconds=1.0),
                        tmp_path / "run", progress=False)
    assert metrics["time_limited_networks"] == 1
    assert metrics["test"]["next"]["model"]["mae"] < 3


def test_idle_models_and_models_over_the_limit_are_deleted(tmp_path, monkeypatch):
    models = visitors.OwnModels(tmp_path)
    kept = tmp_path / "kept"
    kept.mkdir()

    def fake(name: str, used: float) -> training.OwnModel:
        (kept / name).mkdir()
        return training.OwnModel(kept / name, None, f"{name}.csv", {}, {}, used)

    now = time.monotonic()
    models.keep("idle", fake("idle", now - visitors.IDLE_SECONDS - 1))
    models.keep("old", fake("old", now - 60))
    assert not (kept / "idle").exists() and (kept / "old").exists()
    monkeypatch.setattr(visitors, "MAX_MODELS", 2)
    models.keep("new", fake("new", now))
    models.keep("newest", fake("newest", now + 1))  # three over a limit of two: the least recently used goes
    assert sorted(p.name for p in kept.iterdir()) == ["new", "newest"] and len(models) == 2
    models.keep("newest", fake("again", now + 2))  # a second training replaces the session's first model
    assert sorted(p.name for p in kept.iterdir()) == ["again", "new"]


def test_the_app_trains_a_visitors_model_and_serves_it_to_that_session_only(app_url, own_csv):
    client = Client(app_url, verbose=False)
    summary, errors, downloads = client.predict(handle_file(str(own_csv)), api_name="/train_own")
    assert "Your model is ready" in summary and "Both runtimes agree" in summary
    assert errors["headers"][3:5] == ["MAE, best baseline", "best baseline"]
    assert len(errors["data"]) >= 1  # plain values, not update dicts
    assert sorted(p.rsplit("/", 1)[1] for p in downloads) == ["MODEL_CARD.md", "model.onnx", "parity.json"]
    torch_value, onnx_value, diff, details = client.predict("7,6.5,,7", "115", api_name="/predict_own")
    assert torch_value == onnx_value and float(diff) <= 1e-5 and "5th semester" in details
    with pytest.raises(AppError, match="no model of yours is loaded"):
        Client(app_url, verbose=False).predict("7,6.5", "115", api_name="/predict_own")
    shipped = client.predict("7", "", "", "", "", "115", api_name="/predict_json")
    assert shipped["prediction"] == pytest.approx(service.load_backends().onnx.predict(["7"], 115).prediction)


def test_your_model_reads_another_institutions_file_with_its_scale_group_and_semesters(app_url, tmp_path):
    """A semicolon export on 0-20 with text school codes, periods G1..G3 and unrelated columns."""
    from cgpa_rnn.data.synthetic import SyntheticSpec, generate_frame

    path = tmp_path / "escola.csv"
    generate_frame(SyntheticSpec(students=120, seed=3, semesters=3, kind="sticky")).to_csv(path, sep=";", index=False)
    client = Client(app_url, verbose=False)
    with pytest.raises(AppError, match="outside 0-10.*give the cohort's scale"):  # refused on the default scale
        client.predict(handle_file(str(path)), "0-10", "school", "G1,G2,G3", api_name="/train_own")
    summary, _, downloads = client.predict(handle_file(str(path)), "0-20", "school", "G1, G2, G3",
                                           api_name="/train_own")
    assert "Your model is ready" in summary and "(G1, G2, G3) on the 0-20 scale, school GP, MS" in summary
    assert "so the forecast is the last grade itself" in summary  # sticky grades: persistence, said so
    card = next(p for p in downloads if p.endswith("MODEL_CARD.md"))
    assert "--semesters G1,G2,G3 --scale 0-20 --group school" in Path(card).read_text()
    torch_value, onnx_value, _, details = client.predict("11,12", "MS", api_name="/predict_own")
    assert torch_value == onnx_value and "**G3 (0-20):" in details and "not seen" not in details
    _, _, _, unseen = client.predict("11,12", "XX", api_name="/predict_own")
    assert "This school was not seen in training" in unseen


def test_a_failure_that_is_not_the_visitors_mistake_is_a_sentence_and_one_log_line(app_url, own_csv, monkeypatch,
                                                                                     capfd):
    def broken(*args, **kwargs):
        raise RuntimeError("tensor of roll 17020 went wrong")

    monkeypatch.setattr(training, "train_own_model", broken)  # the app runs in this process
    capfd.readouterr()
    with pytest.raises(AppError, match=r"^Training failed on the server \(an internal error, logged\); nothing was"):
        Client(app_url, verbose=False).predict(handle_file(str(own_csv)), api_name="/train_own")
    log = [line for line in capfd.readouterr().err.splitlines() if "cgpa demo:" in line or "Traceback" in line]
    assert log == [f"cgpa demo: failed training: RuntimeError at test_training.py:{broken.__code__.co_firstlineno + 1}"]


def test_one_training_runs_at_a_time_and_the_next_waits_in_the_queue(app_url, own_csv, monkeypatch):
    windows = []
    train = training.train_own_model

    def timed(*args, **kwargs):  # the app runs in this process: watch when each training runs
        started = time.monotonic()
        try:
            return train(*args, **kwargs)
        finally:
            windows.append((started, time.monotonic()))

    monkeypatch.setattr(training, "train_own_model", timed)
    jobs = [Client(app_url, verbose=False).submit(handle_file(str(own_csv)), api_name="/train_own") for _ in range(2)]
    assert all("Your model is ready" in job.result(timeout=300)[0] for job in jobs)
    (_, first_end), (second_start, _) = sorted(windows)
    assert second_start >= first_end  # the second waited in the queue until the first was done


class SlowTraining:
    """Stands in for training in the app of this test session: each training reports progress
    until released (or until its page is gone, when the report raises), then fails cheaply."""

    def __init__(self):
        self.release, self.started, self.cancelled = threading.Event(), threading.Event(), threading.Event()
        self.calls, self.active = 0, 0

    def __call__(self, path, root, report, *form):
        self.calls, self.active = self.calls + 1, self.active + 1
        self.started.set()
        try:
            while not self.release.wait(0.05):
                report(0.1, "training")
        except visitors.TrainingCancelled:
            self.cancelled.set()
            raise
        finally:
            self.active -= 1
        raise UserError("released")

    def drained(self, calls: int, seconds: float = 60) -> bool:
        """Released, wait until `calls` trainings have come through it and none is left running."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline and (self.calls < calls or self.active):
            time.sleep(0.05)
        return self.calls >= calls and not self.active


def test_training_waits_in_its_own_short_line_and_predictions_stay_answered(app_url, own_csv, monkeypatch, tmp_path):
    from cgpa_rnn.demo.bench import training_outcome, upload

    slow = SlowTraining()
    monkeypatch.setattr(training, "train_own_model", slow)
    port = int(app_url.rstrip("/").rsplit(":", 1)[1])
    uploaded = upload(port, own_csv)
    client = Client(app_url, verbose=False)
    try:
        with ThreadPoolExecutor(70) as pool:  # 70 training requests at once, each its own session
            outcomes = list(pool.map(lambda k: training_outcome(port, uploaded, 5, k), range(70)))
            assert outcomes.count("accepted") == 1 + visitors.WAITING_TRAININGS
            assert outcomes.count(f"refused: {visitors.QUEUE_FULL}") == 70 - 1 - visitors.WAITING_TRAININGS
            # the trainings hold their places; everything else is answered as usual
            record = client.predict("7.1", "6.8", "", "7.3", "", "115", api_name="/predict_json")
            expected = service.load_backends().onnx.predict(["7.1", "6.8", "", "7.3", ""], 115).prediction
            assert record["prediction"] == pytest.approx(expected, abs=1e-5)
            cohort = tmp_path / "cohort.csv"
            cohort.write_text("1st,2nd,College Code\n7.1,6.8,115\n5.2,5.0,116\n")
            summary = client.predict(handle_file(str(cohort)), 6.0, False, api_name="/predict_batch")[0]
            assert "2 of 2 students scored" in summary
    finally:
        slow.release.set()
    # The waiting trainings come through the released stand-in one by one; only then is the line
    # empty, so that the next training to start is certainly this session's.
    assert slow.drained(1 + visitors.WAITING_TRAININGS)
    slow = SlowTraining()  # one session asks twice
    monkeypatch.setattr(training, "train_own_model", slow)
    try:
        mine = client.submit(handle_file(str(own_csv)), api_name="/train_own")
        assert slow.started.wait(30)
        second = client.submit(handle_file(str(own_csv)), api_name="/train_own")
        with pytest.raises(AppError, match=visitors.ALREADY_QUEUED.split(";")[0]):
            second.result(timeout=60)  # refused at once; a timeout here would mean it was let in to wait
    finally:
        slow.release.set()
    with pytest.raises(Exception, match="released"):
        mine.result(timeout=60)


def test_a_closed_page_stops_its_training_and_its_waiting_training(tmp_path, monkeypatch):
    slow = SlowTraining()
    monkeypatch.setattr(training, "train_own_model", slow)
    models = visitors.OwnModels(tmp_path)
    with ThreadPoolExecutor(2) as pool:
        running = pool.submit(models.train, "running", "cohort.csv")
        assert slow.started.wait(10)
        waiting = pool.submit(models.train, "waiting", "cohort.csv")
        while models.waiting() < 2:
            time.sleep(0.05)
        models.discard("waiting")  # its page closed while it waited: it never starts
        with pytest.raises(visitors.TrainingCancelled, match="the page was closed"):
            waiting.result(timeout=10)
        models.discard("running")  # its page closed while it trained: it stops at its next step
        with pytest.raises(visitors.TrainingCancelled):
            running.result(timeout=10)
    assert slow.cancelled.is_set() and models.waiting() == 0 and len(models) == 0


def test_a_model_that_arrives_after_its_page_closed_is_deleted(tmp_path, monkeypatch, own_csv):
    models = visitors.OwnModels(tmp_path)
    built = []

    def quick(path, root, report, *form):  # the page closes during the last step: the result arrives to nobody
        directory = root / "own-x"
        directory.mkdir()
        built.append(directory)
        models.discard("gone")
        return training.OwnModel(directory, None, "cohort.csv", {}, {})

    monkeypatch.setattr(training, "train_own_model", quick)
    with pytest.raises(visitors.TrainingCancelled):
        models.train("gone", own_csv)
    assert not built[0].exists() and len(models) == 0


def test_idle_models_and_old_scored_files_are_deleted_by_a_timer(tmp_path, monkeypatch):
    from cgpa_rnn.demo import environment, retention

    models = visitors.OwnModels(tmp_path)
    (tmp_path / "idle").mkdir()
    models.keep("idle", training.OwnModel(tmp_path / "idle", None, "idle.csv", {}, {}))
    scored = environment.folders().scored / "old-scoring"
    scored.mkdir()
    monkeypatch.setattr(visitors, "IDLE_SECONDS", 0)
    monkeypatch.setattr(service, "SCORED_KEEP_SECONDS", 0)
    janitor = retention.Janitor(models, every=0.05).start()
    try:
        deadline = time.monotonic() + 10  # nobody else acts: only the timer can delete them
        while ((tmp_path / "idle").exists() or scored.exists()) and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        janitor.stop()
    assert not (tmp_path / "idle").exists() and not scored.exists() and len(models) == 0
