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
