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
    torch_value = float(page.locator("#pred-torch input").input_value())
    onnx_value = float(page.locator("#pred-onnx input").input_value())
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
    assert page.locator("#pred-onnx input").input_value().startswith("7.32")
