"""The demo as a person uses it: headless Chromium (Debian's package) driven by playwright."""
from __future__ import annotations

from pathlib import Path

import pytest
from conftest import ROOT

SCREENSHOTS = ROOT / "tests" / "screenshots"  # ignored by git: look at them after a run
VIEWPORTS = {"laptop": {"width": 1280, "height": 800}, "phone": {"width": 390, "height": 844}}


@pytest.fixture()
def own_training_csv(tmp_path):
    from cgpa_rnn.data.synthetic import SyntheticSpec, generate_frame

    upload = tmp_path / "our-class.csv"
    generate_frame(SyntheticSpec(students=300, seed=8)).to_csv(upload, index=False)
    return upload


@pytest.mark.browser
def test_enter_grades_and_read_both_predictions(browser, app_url):
    page = browser.new_page(viewport={"width": 1280, "height": 1100})
    page.goto(app_url)
    for semester, grade in enumerate(["7.1", "6.8", "", "7.3"], start=1):
        page.locator(f"#grade-{semester} textarea, #grade-{semester} input").first.fill(grade)
    page.wait_for_function("document.querySelector('#college input').value === '115'", timeout=15_000)  # preset
    page.locator("#predict").click()
    page.get_by_text("80% interval").first.wait_for(timeout=30_000)  # the whole answer has arrived
    torch_value = float(page.locator("#pred-torch textarea, #pred-torch input").first.input_value())
    onnx_value = float(page.locator("#pred-onnx textarea, #pred-onnx input").first.input_value())
    assert 0 < onnx_value <= 10 and abs(torch_value - onnx_value) <= 1e-5
    SCREENSHOTS.mkdir(exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / "one-student.png"), full_page=True)
    assert (SCREENSHOTS / "one-student.png").stat().st_size > 10_000


@pytest.mark.browser
def test_bad_grade_shows_its_message_at_the_field(browser, app_url):
    page = browser.new_page()
    page.goto(app_url)
    page.locator("#grade-1 textarea, #grade-1 input").first.fill("7")
    page.locator("#grade-2 textarea, #grade-2 input").first.fill("eleven")
    page.locator("#predict").click()
    page.get_by_text("2nd semester (0-10): expected a grade point").first.wait_for(timeout=15_000)


def _predict_in_the_browser_column(page, app_url, hindcast: bool = False) -> str:
    page.goto(app_url)
    for semester, grade in enumerate(["7.1", "6.8", "", "7.3"], start=1):
        page.locator(f"#grade-{semester} textarea, #grade-{semester} input").first.fill(grade)
    if hindcast:
        page.locator("#hide-last-grade input").check()
    page.locator("#predict").click()
    field = "#pred-browser textarea, #pred-browser input"
    page.wait_for_function(f"(document.querySelector('{field}') || {{}}).value?.length > 0", timeout=60_000)
    return page.locator(field).first.input_value()


def _page_with_local_ort(browser, ort_web_dist):
    page = browser.new_page(viewport={"width": 1280, "height": 1100})

    def from_local_dist(route):  # the CDN is out of reach here: serve the same pinned files locally
        name = route.request.url.rsplit("/", 1)[1]
        kind = "application/wasm" if name.endswith(".wasm") else "text/javascript"
        route.fulfill(status=200, body=(ort_web_dist / name).read_bytes(),
                      headers={"Content-Type": kind, "Access-Control-Allow-Origin": "*"})

    page.route("https://cdn.jsdelivr.net/npm/onnxruntime-web@*/dist/*", from_local_dist)
    return page


@pytest.mark.browser
def test_the_visitors_browser_runs_the_same_model_as_a_third_column(browser, app_url, ort_web_dist):
    page = _page_with_local_ort(browser, ort_web_dist)
    text = _predict_in_the_browser_column(page, app_url)
    assert text.startswith("7.50 (|browser - onnxruntime| = ") and " ms here)" in text
    assert float(text.split("= ")[1].split(";")[0]) <= 1e-5
    SCREENSHOTS.mkdir(exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / "browser-column.png"), full_page=True)


@pytest.mark.browser
def test_a_hindcast_of_the_last_grade_given_in_all_three_runtimes(browser, app_url, ort_web_dist):
    page = _page_with_local_ort(browser, ort_web_dist)
    text = _predict_in_the_browser_column(page, app_url, hindcast=True)  # the 4th predicted from the 1st-2nd
    onnx_value = page.locator("#pred-onnx textarea, #pred-onnx input").first.input_value()
    assert text.startswith(f"{onnx_value} (|browser - onnxruntime| = ") and onnx_value != "7.50"
    assert float(text.split("= ")[1].split(";")[0]) <= 1e-5
    assert page.get_by_text("the actual 4th semester (0-10) was 7.30").count() == 1
    SCREENSHOTS.mkdir(exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / "one-student-hindcast.png"), full_page=True)


@pytest.mark.browser
def test_a_browser_that_cannot_load_the_runtime_is_told_nothing_is_wrong(browser, app_url):
    page = browser.new_page()
    text = _predict_in_the_browser_column(page, app_url)
    assert text.startswith("not available in this browser") and "nothing is wrong" in text
    assert page.locator("#pred-onnx textarea, #pred-onnx input").first.input_value() == "7.50"


@pytest.mark.browser
def test_a_bad_college_code_is_shown_at_the_visible_field_and_clears_the_old_answer(browser, app_url):
    page = browser.new_page()
    _predict_in_the_browser_column(page, app_url)  # an answer on screen
    college = page.locator("#college input").first
    college.fill("abc")
    college.press("Enter")
    page.locator("#predict").click()
    page.get_by_text("college: expected an integer college code").first.wait_for(timeout=15_000)
    assert page.locator("#pred-onnx textarea, #pred-onnx input").first.input_value() == ""  # the old answer is gone


@pytest.mark.browser
def test_html_in_an_upload_is_shown_as_text(browser, app_url, tmp_path):
    upload = tmp_path / "hostile.csv"
    upload.write_text('<a href="https://example.invalid" id="planted">click</a><input type=password id=pw>,x\n1,2\n')
    page = browser.new_page()
    page.goto(app_url)
    page.get_by_role("tab", name="Cohort").click()
    page.locator("#cohort-file input[type=file]").set_input_files(str(upload))
    page.locator("#threshold input").fill("12")  # off the scale (blank is the scale's own line): Gradio's own check
    page.locator("#score").click()
    page.get_by_text("greater than maximum value 10").first.wait_for(timeout=15_000)
    page.locator("#threshold input").fill("6")
    page.locator("#score").click()
    page.get_by_text("no semester columns found").first.wait_for(timeout=15_000)
    SCREENSHOTS.mkdir(exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / "hostile-upload.png"), full_page=True)
    assert page.locator("#planted").count() == 0 and page.locator("#pw").count() == 0
    assert page.get_by_text("'<a href=\"https://example'", exact=False).count() >= 1  # quoted, as text
    assert str(tmp_path) not in page.content()


@pytest.mark.browser
def test_the_cohort_tab_scores_the_data_set_by_hindcast_with_its_chart(browser, app_url):
    from cgpa_rnn.data import SHIPPED_DATA

    page = browser.new_page(viewport={"width": 1280, "height": 1400})
    page.goto(app_url)
    page.get_by_role("tab", name="Cohort").click()
    page.get_by_role("button", name="Take the data set the model was trained on").click()
    page.locator("#cohort-file").get_by_text(SHIPPED_DATA.stem).first.wait_for(timeout=15_000)  # drawn in parts
    page.locator("#score").click()
    page.get_by_text("Hindcast of 172 students").first.wait_for(timeout=30_000)
    assert page.get_by_text("177 of 178 students scored").count() >= 1
    assert page.get_by_text("in-sample").count() >= 1
    page.locator("#hindcast-chart canvas, #hindcast-chart svg").first.wait_for(timeout=15_000)
    page.get_by_role("tab", name="Cohort").scroll_into_view_if_needed()
    SCREENSHOTS.mkdir(exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / "cohort-hindcast.png"), full_page=True)


@pytest.mark.browser
def test_the_about_tab_shows_the_model_card(browser, app_url):
    page = browser.new_page(viewport={"width": 1280, "height": 1100})
    page.goto(app_url)
    page.get_by_role("tab", name="About").click()
    page.get_by_text("How it was made").first.wait_for(timeout=15_000)
    assert page.get_by_text("license: mit").count() == 0  # the Hub metadata block is for machines
    SCREENSHOTS.mkdir(exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / "about.png"), full_page=True)


def _files_in_sight(page, box: str) -> list[str]:
    """The names of the files a file box shows without scrolling inside it: each file's row lies
    within the box and is what the browser draws at its centre (neither clipped nor covered)."""
    return page.evaluate("""(selector) => {
        const box = document.querySelector(selector);
        box.scrollIntoView({block: "start"});  // the page scrolls; the box's own content does not
        const frame = box.getBoundingClientRect();
        return [...box.querySelectorAll("tr")].filter((row) => {
            const r = row.getBoundingClientRect();
            const drawn = document.elementFromPoint(r.left + r.width / 2, r.top + r.height / 2);
            return r.height > 0 && r.top >= frame.top && r.bottom <= frame.bottom && row.contains(drawn);
        }).map((row) => row.querySelector("td").textContent.replace(/\\s/g, ""));
    }""", box)


@pytest.mark.browser
def test_a_visitor_trains_a_model_on_their_cohort_and_it_is_deleted_when_they_leave(browser, app_url, tmp_path):
    import time

    from cgpa_rnn.data.synthetic import SyntheticSpec, generate_frame
    from cgpa_rnn.demo.environment import folders

    upload = tmp_path / "our-class.csv"
    generate_frame(SyntheticSpec(students=100, seed=8)).to_csv(upload, index=False)
    before = set(folders().sessions.glob("*/*"))  # the app of this test session keeps visitors' models here
    page = browser.new_page(viewport={"width": 1280, "height": 1500})
    page.goto(app_url)
    page.get_by_role("tab", name="Your model").click()
    page.locator("#train-file input[type=file]").set_input_files(str(upload))
    page.locator("#train").click()
    page.get_by_text("training on our-class.csv").first.wait_for(timeout=30_000)  # the progress display
    page.get_by_text("of the epochs at most").first.wait_for(timeout=30_000)
    SCREENSHOTS.mkdir(exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / "train-progress.png"), full_page=True)
    page.get_by_text("Your model is ready").first.wait_for(timeout=120_000)
    # The table of errors is shown by the event after the training's (.success): waited for, not raced.
    page.locator("#train-errors").get_by_text("next semester").first.wait_for(timeout=30_000)
    assert page.locator("#train-errors").get_by_text("next semester").count() == 1
    offered = ["model.onnx", "parity.json", "MODEL_CARD.md"]
    for size, viewport in VIEWPORTS.items():  # every file in sight in its box, at both sizes
        page.set_viewport_size(viewport)
        assert _files_in_sight(page, "#train-downloads") == offered, size
        page.screenshot(path=str(SCREENSHOTS / f"{size}-your-model-ready.png"), full_page=True)
    for name in offered:  # and each one downloads
        row = page.locator("#train-downloads tr").filter(has_text=name.split(".")[0])
        with page.expect_download() as download:
            row.locator("a").first.click()
        assert download.value.suggested_filename == name and Path(download.value.path()).stat().st_size > 0
    page.set_viewport_size({"width": 1280, "height": 1500})
    (created,) = set(folders().sessions.glob("*/*")) - before
    page.locator("#own-grades input, #own-grades textarea").first.fill("7.2, 6.9, , 7.4")
    page.locator("#own-college input, #own-college textarea").first.fill("115")
    page.locator("#own-predict").click()
    onnx = "#own-onnx textarea, #own-onnx input"
    page.wait_for_function(f"(document.querySelector('{onnx}') || {{}}).value?.length > 0", timeout=30_000)
    torch_value = page.locator("#own-torch textarea, #own-torch input").first.input_value()
    assert torch_value == page.locator(onnx).first.input_value() and 0 < float(torch_value) <= 10
    page.screenshot(path=str(SCREENSHOTS / "train-own.png"), full_page=True)
    # A training that fails clears the last model's answer: nothing on the page is from a model not served.
    unscorable = tmp_path / "not-a-cohort.csv"
    unscorable.write_text("name,city\nAda,Oslo\n")
    page.locator("#train-file").get_by_role("button", name="Clear").click()  # the file input comes back
    page.locator("#train-file input[type=file]").set_input_files(str(unscorable))
    page.get_by_text("not-a-cohort").first.wait_for(timeout=15_000)
    page.locator("#train").click()
    page.get_by_text("no semester columns").first.wait_for(timeout=30_000)
    assert page.locator(onnx).first.input_value() == "" and "Your model is ready" not in page.inner_text("body")
    page.locator("#own-predict").click()  # nor does the replaced model answer again
    page.get_by_text("no model of yours is loaded").first.wait_for(timeout=15_000)
    page.close()  # the visitor leaves: their upload and model go with the session
    deadline = time.monotonic() + 30
    while created.exists() and time.monotonic() < deadline:
        time.sleep(0.5)
    assert not created.exists()


def _tab(page, name: str, width: int):
    """A tab's button, asserted to be in view at this width (not behind an overflow menu)."""
    button = page.get_by_role("tab", name=name, exact=True)
    button.wait_for(timeout=15_000)
    box = button.bounding_box()
    assert button.is_visible() and box and box["x"] >= 0 and box["x"] + box["width"] <= width, name
    return button


@pytest.mark.browser
@pytest.mark.parametrize("size", VIEWPORTS)
def test_every_tab_at_laptop_and_phone_size(browser, app_url, size):
    """Screenshots of every tab, with answers on screen, under tests/screenshots/ (look at them)."""
    from cgpa_rnn.data import SHIPPED_DATA

    viewport = VIEWPORTS[size]
    page = browser.new_page(viewport=viewport)
    page.goto(app_url)
    SCREENSHOTS.mkdir(exist_ok=True)
    for semester, grade in enumerate(["7.1", "", "6.8"], start=1):
        page.locator(f"#grade-{semester} textarea, #grade-{semester} input").first.fill(grade)
    page.locator("#predict").click()
    page.locator("#plot svg[role=img]").wait_for(timeout=30_000)  # the chart, drawn by the browser
    axis = page.evaluate("() => [...document.querySelectorAll('#plot svg text')].map((t) => t.textContent)")
    assert axis[-6:] == ["1st", "2nd", "missing", "3rd", "4th", "5th"]  # the 2nd semester's gap, on the axis
    assert page.locator("#plot rect").count() >= 1  # the interval's band
    assert page.locator("#plot polygon").count() == 1  # the fan to graduation: the 4th and 5th semesters
    assert "Final CGPA after the 5th semester" in page.inner_text("#details")
    why = page.locator("#why svg")
    why.wait_for(timeout=15_000)
    assert "network adds" in why.inner_html()  # the prior, the network's correction, the prediction
    assert "Why: The 4th semester average at college 115 is" in page.inner_text("#details")
    page.screenshot(path=str(SCREENSHOTS / f"{size}-student.png"), full_page=True)
    _tab(page, "Cohort", viewport["width"]).click()
    page.get_by_role("button", name="Take the data set the model was trained on").click()
    page.locator("#cohort-file").get_by_text(SHIPPED_DATA.stem).first.wait_for(timeout=15_000)
    page.locator("#score").click()
    page.get_by_text("Hindcast of 172 students").first.wait_for(timeout=30_000)
    page.locator("#hindcast-chart canvas, #hindcast-chart svg").first.wait_for(timeout=15_000)
    page.screenshot(path=str(SCREENSHOTS / f"{size}-cohort.png"), full_page=True)
    for table, names in (("#cohort-table", ["student", "prediction (torch)"]),
                         ("#at-risk-table", ["student", "status", "P(below 6)"])):
        headers = page.locator(f"{table} th")
        for index, name in enumerate(names):  # in sight before any scrolling
            box = headers.nth(index).bounding_box()
            assert name in headers.nth(index).inner_text() and box["x"] + box["width"] <= viewport["width"], size
    assert "more likely than not to end below 6" in page.inner_text("#cohort-summary")
    _tab(page, "Your model", viewport["width"]).click()
    page.locator("#train").wait_for(timeout=15_000)
    page.screenshot(path=str(SCREENSHOTS / f"{size}-your-model.png"), full_page=True)
    _tab(page, "How it works", viewport["width"]).click()
    page.locator("#matrices svg").first.wait_for(timeout=15_000)
    page.locator("#hidden-states svg rect").first.wait_for(timeout=15_000)  # the student asked above
    assert page.locator("#matrices figure").count() == 3  # W_xh, W_hh, W_hy
    for svg in page.locator("#matrices svg, #hidden-states svg").all():  # scaled to fit: no sideways scrolling
        box = svg.bounding_box()
        assert box["x"] >= 0 and box["x"] + box["width"] <= viewport["width"], size
    page.screenshot(path=str(SCREENSHOTS / f"{size}-how-it-works.png"), full_page=True)
    _tab(page, "About", viewport["width"]).click()
    page.get_by_text("How it was made").first.wait_for(timeout=15_000)
    page.screenshot(path=str(SCREENSHOTS / f"{size}-about.png"), full_page=True)


@pytest.mark.browser
def test_the_demo_keeps_nothing_in_the_visitors_browser(browser, app_url):
    """A cohort scored and a student predicted leave no grade in the page's storage, and the
    run history page is off."""
    from cgpa_rnn.data import SHIPPED_DATA

    page = browser.new_page(viewport={"width": 1280, "height": 1100})
    page.goto(app_url)
    for semester, grade in enumerate(["7.13", "6.87", "", "7.31"], start=1):
        page.locator(f"#grade-{semester} textarea, #grade-{semester} input").first.fill(grade)
    page.locator("#predict").click()
    page.locator("#plot svg[role=img]").wait_for(timeout=30_000)
    page.get_by_role("tab", name="Cohort").click()
    page.get_by_role("button", name="Take the data set the model was trained on").click()
    page.locator("#cohort-file").get_by_text(SHIPPED_DATA.stem).first.wait_for(timeout=15_000)
    page.locator("#score").click()
    page.get_by_text("Hindcast of 172 students").first.wait_for(timeout=30_000)
    # The events' last steps have run (the download offered, then the chart shown by .success), so
    # whatever the page would save after an answer has been saved by now.
    page.locator("#cohort-download a").first.wait_for(timeout=15_000)
    page.locator("#hindcast-chart canvas, #hindcast-chart svg").first.wait_for(timeout=15_000)
    stored = page.evaluate("""async () => {
        const local = JSON.stringify(Object.entries(localStorage));
        const session = JSON.stringify(Object.entries(sessionStorage));
        const databases = indexedDB.databases ? await indexedDB.databases() : [];
        return {local, session, databases: databases.map((d) => d.name)};
    }""")
    first_student = SHIPPED_DATA.read_text().splitlines()[1].split(",")[:5]  # grades as the file writes them
    for text in (stored["local"], stored["session"]):
        assert "7.13" not in text and "6.87" not in text and not any(g and g in text for g in first_student), text
    assert stored["databases"] == [], stored
    assert page.request.get(app_url + "gradio_api/runs").status == 404


@pytest.mark.browser
def test_closing_the_page_during_training_stops_it_and_deletes_its_files(browser, app_url, own_training_csv,
                                                                          monkeypatch):
    import threading
    import time

    from cgpa_rnn.demo import training, visitors
    from cgpa_rnn.demo.environment import folders

    started, stopped = threading.Event(), threading.Event()
    train = training.train_own_model

    def watched(path, root, report, *form):  # the real training, watched: it must stop once the page is gone
        started.set()
        try:
            return train(path, root, report, *form)
        except visitors.TrainingCancelled:
            stopped.set()
            raise

    monkeypatch.setattr(training, "train_own_model", watched)
    before = set(folders().sessions.glob("*/*"))
    page = browser.new_page()
    page.goto(app_url)
    page.get_by_role("tab", name="Your model").click()
    page.locator("#train-file input[type=file]").set_input_files(str(own_training_csv))
    page.locator("#train").click()
    page.get_by_text("of the epochs at most").first.wait_for(timeout=60_000)  # training runs
    assert started.is_set()
    page.close()
    deadline = time.monotonic() + 90
    while not stopped.is_set() and time.monotonic() < deadline:
        time.sleep(0.5)
    assert stopped.is_set()  # stopped at its next epoch, not run to the end for nobody
    assert set(folders().sessions.glob("*/*")) == before  # its copy of the upload and its model are gone
