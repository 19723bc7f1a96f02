"""The demo as a person uses it: headless Chromium (Debian's package) driven by playwright."""
from __future__ import annotations

import pytest
from conftest import ROOT

SCREENSHOTS = ROOT / "tests" / "screenshots"  # ignored by git: look at them after a run


@pytest.mark.browser
def test_enter_grades_and_read_both_predictions(browser, app_url):
    page = browser.new_page(viewport={"width": 1280, "height": 1100})
    page.goto(app_url)
    for semester, grade in enumerate(["7.1", "6.8", "", "7.3"], start=1):
        page.locator(f"#grade-{semester} textarea, #grade-{semester} input").first.fill(grade)
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
    page.get_by_text("semester 2: expected a grade point").first.wait_for(timeout=15_000)


def _predict_in_the_browser_column(page, app_url) -> str:
    page.goto(app_url)
    for semester, grade in enumerate(["7.1", "6.8", "", "7.3"], start=1):
        page.locator(f"#grade-{semester} textarea, #grade-{semester} input").first.fill(grade)
    page.locator("#predict").click()
    field = "#pred-browser textarea, #pred-browser input"
    page.wait_for_function(f"(document.querySelector('{field}') || {{}}).value?.length > 0", timeout=60_000)
    return page.locator(field).first.input_value()


@pytest.mark.browser
def test_the_visitors_browser_runs_the_same_model_as_a_third_column(browser, app_url, ort_web_dist):
    page = browser.new_page(viewport={"width": 1280, "height": 1100})

    def from_local_dist(route):  # the CDN is out of reach here: serve the same pinned files locally
        name = route.request.url.rsplit("/", 1)[1]
        kind = "application/wasm" if name.endswith(".wasm") else "text/javascript"
        route.fulfill(status=200, body=(ort_web_dist / name).read_bytes(),
                      headers={"Content-Type": kind, "Access-Control-Allow-Origin": "*"})

    page.route("https://cdn.jsdelivr.net/npm/onnxruntime-web@*/dist/*", from_local_dist)
    text = _predict_in_the_browser_column(page, app_url)
    assert text.startswith("7.32 (|browser - onnxruntime| = ") and " ms here)" in text
    assert float(text.split("= ")[1].split(";")[0]) <= 1e-5
    SCREENSHOTS.mkdir(exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / "browser-column.png"), full_page=True)


@pytest.mark.browser
def test_a_browser_that_cannot_load_the_runtime_is_told_nothing_is_wrong(browser, app_url):
    page = browser.new_page()
    text = _predict_in_the_browser_column(page, app_url)
    assert text.startswith("not available in this browser") and "nothing is wrong" in text
    assert page.locator("#pred-onnx textarea, #pred-onnx input").first.input_value() == "7.32"


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
    page.get_by_role("tab", name="A cohort").click()
    page.locator("#cohort-file input[type=file]").set_input_files(str(upload))
    page.locator("#threshold input").fill("")
    page.locator("#score").click()
    page.get_by_text("at risk below: expected a grade point").first.wait_for(timeout=15_000)
    page.locator("#threshold input").fill("6")
    page.locator("#score").click()
    page.get_by_text("no semester columns found").first.wait_for(timeout=15_000)
    SCREENSHOTS.mkdir(exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / "hostile-upload.png"), full_page=True)
    assert page.locator("#planted").count() == 0 and page.locator("#pw").count() == 0
    assert page.get_by_text("'<a href=\"https://example'", exact=False).count() >= 1  # quoted, as text
    assert str(tmp_path) not in page.content()
