"""The static site (`cgpa web`) as a visitor uses it, in headless Chromium from a loopback
server: one student and the rest of their degree, a cohort file scored by the same rules as
`cgpa predict --csv --trajectory` with its at-risk list, nothing sent anywhere, the runtime's
size, hostile metadata; and the Node example."""
from __future__ import annotations

import csv
import io
import json
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from conftest import ROOT, SHIPPED, cgpa

from cgpa_rnn.export.inputs import random_students
from cgpa_rnn.predictor import OnnxPredictor

SCREENSHOTS = ROOT / "tests" / "screenshots"  # ignored by git: look at them after a run
FIXTURES = ROOT / "tests" / "fixtures" / "cohorts"
VIEWPORTS = {"laptop": {"width": 1280, "height": 800}, "phone": {"width": 390, "height": 844}}
PAGE_SCRIPTS = 7  # the config, onnxruntime-web, rules.js, onnx_bytes.js, trajectory.js, chart.js, cgpa.js
TRAJECTORY_OUTPUTS = ("trajectory", "trajectory_low", "trajectory_high", "final", "final_low", "final_high",
                      "probability_below")
SCREENSHOTS.mkdir(exist_ok=True)


def _students(count: int, seed: int):
    grades, college = random_students(count, 5, [115, 116, 165, 241], seed=seed)
    expected = OnnxPredictor(SHIPPED / "model.onnx").predict_batch(grades, college)
    as_lists = [[None if np.isnan(g) else float(g) for g in row] for row in grades]
    return as_lists, college.tolist(), expected


def _assert_same(actual: dict, expected) -> None:
    for name, values in zip(("prediction", "low", "high"), expected):
        got = np.array([np.nan if v is None else v for v in actual[name]], dtype=np.float64)
        np.testing.assert_array_equal(np.isnan(got), np.isnan(values), err_msg=name)
        assert np.nanmax(np.abs(got - values)) <= 1e-5, name


@pytest.fixture(scope="module")
def vectors_run(tmp_path_factory) -> Path:
    """The shipped model with its conformance vectors (written here if the export has not yet)."""
    if (SHIPPED / "vectors.json").is_file():
        return SHIPPED
    try:
        from cgpa_rnn.export.vectors import write_vectors
    except ImportError:
        pytest.skip("cgpa_rnn.export.vectors does not exist yet: no conformance vectors to check")
    run = tmp_path_factory.mktemp("vectors-run")
    for name in ("model.pt", "model.onnx", "config.json", "metrics.json"):
        shutil.copy2(SHIPPED / name, run / name)
    write_vectors(run)
    return run


@pytest.fixture(scope="module")
def site(tmp_path_factory, ort_web_dist, vectors_run):
    """The site of the shipped model with a self-hosted runtime, as `cgpa web` writes it."""
    folder = tmp_path_factory.mktemp("site") / "site"
    built = cgpa("web", str(vectors_run), "--out", str(folder), "--ort", str(ort_web_dist))
    assert built.returncode == 0, built.stderr
    return folder


def _open(browser, url: str, viewport: str = "laptop"):
    """A page that keeps every request it makes (`page.requests`) and every dialog (`page.dialogs`)."""
    page = browser.new_page(viewport=VIEWPORTS[viewport])
    page.requests, page.dialogs = [], []
    page.on("request", lambda request: page.requests.append(request.url))
    page.on("dialog", lambda dialog: (page.dialogs.append(dialog.message), dialog.dismiss()))
    page.goto(url)
    page.wait_for_function("window.cgpa !== undefined")
    return page


def _score_in_page(page, path, hindcast_all: bool = False) -> tuple[str, str | None]:
    """Open a cohort file in the page: (the status line, the downloaded scored CSV or None)."""
    page.click("#tab-cohort")
    if page.is_checked("#hindcast-all") != hindcast_all:
        page.set_checked("#hindcast-all", hindcast_all)
    page.evaluate("document.getElementById('cohort-status').dataset.state = ''")
    page.set_input_files("#cohort-file", str(path))
    page.wait_for_function("['done', 'error'].includes(document.getElementById('cohort-status').dataset.state)")
    return _scored_in_page(page)


def _scored_in_page(page) -> tuple[str, str | None]:
    """The cohort view once it has scored: (the status line, the downloaded scored CSV or None)."""
    status = page.text_content("#cohort-status")
    if page.get_attribute("#cohort-status", "data-state") == "error":
        return status, None
    with page.expect_download() as download:
        page.click("#download")
    return status, download.value.path().read_text(encoding="utf-8")


def _rows(text: str) -> list[list[str]]:
    return list(csv.reader(io.StringIO(text, newline="")))


def _assert_same_scored(page_csv: str, cli_csv: str, name: str) -> None:
    """The same cells, the same reasons; numbers within 1e-5 (both round to 6 significant digits)."""
    page_rows, cli_rows = _rows(page_csv), _rows(cli_csv)
    assert page_rows[0] == cli_rows[0] and len(page_rows) == len(cli_rows), name
    numeric = {k for k, c in enumerate(cli_rows[0]) if c in ("pred_onnx", "low", "high", "actual", "abs_error")
               or re.fullmatch(r"sem[0-9]+_(pred|low|high)|final_cgpa|final_low|final_high|p_below", c)}
    for line, (mine, theirs) in enumerate(zip(page_rows[1:], cli_rows[1:]), start=2):
        for k, (a, b) in enumerate(zip(mine, theirs)):
            if k in numeric and a and b:
                assert abs(float(a) - float(b)) <= 1e-5 + 1e-9, f"{name} line {line} {cli_rows[0][k]}: {a} vs {b}"
            else:
                assert a == b, f"{name} line {line} {cli_rows[0][k]}: page {a!r}, cli {b!r}"


@pytest.mark.browser
def test_the_site_runs_the_model_in_the_browser(browser, site, static_server):
    expected_files = {".cgpa-site", "README.md", "index.html", "rules.js", "onnx_bytes.js", "trajectory.js",
                      "chart.js", "cgpa.js", "model.onnx", "explain.onnx", "vectors.json", "ort"}
    assert {p.name for p in site.iterdir() if not p.name.endswith((".br", ".gz"))} == expected_files
    front = (site / "README.md").read_text().split("---")[1]
    assert "sdk: static" in front and "license: mit" in front
    assert len(front.split("short_description: ")[1].splitlines()[0].strip('"')) <= 60
    url = static_server(site)
    for viewport in VIEWPORTS:
        page = _open(browser, url, viewport)
        page.evaluate("window.cgpa.ready")
        if viewport == "laptop":
            grades, colleges, expected = _students(300, seed=11)
            _assert_same(page.evaluate("([g, c]) => window.cgpa.predict(g, c)", [grades, colleges]), expected)
        for t, grade in enumerate(["7.1", "6.8", "", "7.3"], start=1):
            page.fill(f"#grade-{t}", grade)
        page.click("#predict")
        page.wait_for_function("document.getElementById('result').textContent.includes('interval')")
        assert page.text_content("#result").startswith("5th semester (0-10): 7.50 (80% interval 6.88 to 8.09)")
        page.wait_for_function("document.getElementById('why').textContent.includes('giving')")
        why = OnnxPredictor(SHIPPED / "model.onnx").explain(["7.1", "6.8", "", "7.3"], "115")
        assert page.text_content("#why") == "Why: " + why.sentence("5th semester", "at college 115").replace(
            "The", "the", 1)  # the same words and numbers as the Python runtime's
        page.screenshot(path=str(SCREENSHOTS / f"site-one-student-{viewport}.png"), full_page=True)
        page.fill("#grade-5", "7.0")  # the final semester known: a hindcast of it from the earlier ones
        page.click("#predict")
        page.wait_for_function("document.getElementById('result').textContent.includes('hindcast')")
        assert "the actual 5th semester (0-10) was 7.00" in page.text_content("#result")
        page.fill("#grade-2", "1e1")  # ASCII decimal notation only, as the Python runtime
        page.click("#predict")
        assert page.text_content("#result").startswith("2nd semester (0-10): expected a grade point on the 0-10 scale")
        assert page.get_attribute("#grade-2", "aria-invalid") == "true"
        page.click("#tab-about")
        assert "student-semester-result.csv" in page.text_content("#about")
        page.screenshot(path=str(SCREENSHOTS / f"site-about-{viewport}.png"), full_page=True)
        page.close()


@pytest.mark.browser
def test_every_conformance_vector_in_the_browser(browser, site, static_server):
    vectors = json.loads((site / "vectors.json").read_text())
    page = _open(browser, static_server(site))
    page.evaluate("window.cgpa.ready")
    checked = page.evaluate("""async (vectors) => {
        const failures = [], checked = { outputs: 0, trajectories: 0, options: 0 };
        const compare = (name, expected, got) => [expected].flat(Infinity).forEach((e, i) => {
            const ok = e === null ? Number.isNaN(got[i]) : Math.abs(got[i] - e) <= vectors.tolerance.absolute;
            if (!ok) failures.push(`${name}[${i}]: expected ${e}, got ${got[i]}`);
        });
        for (const c of vectors.cases) {
            const colleges = c.inputs.college.map(BigInt);
            const out = await window.cgpa.predict(c.inputs.grades, colleges);
            for (const name of ["prediction", "low", "high"]) compare(`${c.name} ${name}`, c.outputs[name], out[name]);
            checked.outputs++;
            // The rest of the degree through explain.onnx, with the case's credits and line when it has them.
            const ahead = await window.cgpa.trajectory(c.inputs.grades, colleges, c.options);
            for (const [name, expected] of Object.entries(c.trajectory)) {
                compare(`${c.name} ${name}`, expected, ahead[name].flat());
            }
            checked.trajectories++;
            if (c.options) checked.options++;
        }
        return { failures, checked };
    }""", vectors)
    cases = len(vectors["cases"])
    assert cases >= 10 and checked["failures"] == []
    assert checked["checked"] == {"outputs": cases, "trajectories": cases, "options": 1}
    assert all(set(case["trajectory"]) == set(TRAJECTORY_OUTPUTS) for case in vectors["cases"])


@pytest.mark.browser
def test_a_cohort_file_scores_the_same_in_the_page_and_the_cli(browser, site, static_server, tmp_path):
    """Every fixture, ordinary and careless, through the page and `cgpa predict --csv --backend onnx`."""
    page = _open(browser, static_server(site))
    page.evaluate("window.cgpa.ready")
    cases = [(path, False) for path in sorted(FIXTURES.glob("*.csv"))] + [(FIXTURES / "hindcast_mix.csv", True)]
    assert len(cases) >= 30
    differences = []
    for path, hindcast_all in cases:
        out = tmp_path / f"{path.stem}-{hindcast_all}.csv"
        flags = ["--hindcast"] if hindcast_all else []
        cli = cgpa("predict", str(SHIPPED), "--csv", path.name, "--out", str(out), "--backend", "onnx", "--trajectory",
                   *flags, cwd=FIXTURES)
        status, scored = _score_in_page(page, path, hindcast_all)
        try:
            if cli.returncode == 2:  # the file is refused as a whole: by both, with the same sentence
                assert scored is None, f"the CLI refused it ({cli.stderr.strip()}), the page scored it"
                assert cli.stderr.strip() == f"error: {status}"
                continue
            assert scored is not None, f"the page refused it ({status}), the CLI scored it"
            _assert_same_scored(scored, out.read_text(encoding="utf-8"), path.name)
            summary = [line for line in cli.stdout.splitlines() if line.startswith("Hindcast of")]
            assert page.text_content("#cohort-summary") == (summary[0] if summary else "")
            at_risk = [line for line in cli.stdout.splitlines() if "whose final CGPA is forecast" in line]
            assert [page.text_content("#at-risk-summary")] == at_risk
            # The warning about grades unlike the training cohort's: the same rule and numbers on both sides.
            warning = [line.split(" Its forecasts")[0] for line in cli.stderr.splitlines()
                       if line.startswith("Warning")]
            assert (status.split(" Its forecasts")[0] if status.startswith("Warning") else None) == \
                (warning[0] if warning else None)
        except AssertionError as difference:
            differences.append(f"{path.name}{' --hindcast' if hindcast_all else ''}: {difference} "
                               f"[{_reference_verdict(status, scored, path, hindcast_all, tmp_path)}]")
    assert not differences, "\n".join(differences)


def _reference_verdict(status: str, scored: str | None, path, hindcast_all: bool, tmp_path) -> str:
    """Whether the page agrees with the row-by-row reference, cgpa_rnn.scoring.score_csv (for the message)."""
    from cgpa_rnn.errors import DataError
    from cgpa_rnn.predictor import check_fresh
    from cgpa_rnn.scoring import score_csv, write_scored_csv

    try:
        reference = score_csv(path, {"onnx": check_fresh(SHIPPED)}, name=path.name, hindcast_last_given=hindcast_all,
                              trajectory=True)
    except DataError as error:
        same = scored is None and status == str(error)
        return "the page agrees with scoring.score_csv" if same else f"score_csv says: {error}"
    write_scored_csv(reference, tmp_path / "reference.csv")
    try:
        _assert_same_scored(scored or "", (tmp_path / "reference.csv").read_text(encoding="utf-8"), path.name)
    except AssertionError as difference:
        return f"score_csv differs from the page too: {difference}"
    return "the page agrees with scoring.score_csv"


@pytest.mark.browser
def test_a_cohort_in_the_page_with_its_chart_and_nothing_leaves_the_machine(browser, site, static_server):
    from cgpa_rnn.data import SHIPPED_DATA

    url = static_server(site)
    for viewport in VIEWPORTS:
        page = _open(browser, url, viewport)
        page.evaluate("window.cgpa.ready")
        loading = list(page.requests)
        assert loading and all(request.startswith(url) for request in loading), loading  # no CDN, no other host
        page.requests.clear()
        for t, grade in enumerate(["7.1", "6.8", "", "7.3"], start=1):
            page.fill(f"#grade-{t}", grade)
        page.click("#predict")
        page.wait_for_function("document.getElementById('result').textContent.includes('interval')")
        status, scored = _score_in_page(page, SHIPPED_DATA)
        assert status.startswith("177 of 178 students scored") and scored.count("\n") == 179
        assert page.text_content("#cohort-summary").startswith("Hindcast of 172 students")
        assert "in-sample" in page.text_content("#cohort-summary")
        assert page.locator("#chart svg circle").count() >= 172
        listed = page.locator("#at-risk-table tbody tr").count() + page.locator("#finished-table tbody tr").count()
        assert listed == 177  # every student scored, once: a forecast or finished
        page.screenshot(path=str(SCREENSHOTS / f"site-cohort-{viewport}.png"), full_page=True)
        page.click("#tab-about")
        assert [r for r in page.requests if not r.startswith("blob:")] == []  # the download is a local blob
        page.close()


def _cells(page, table: str) -> list[list[str]]:
    """The text of a table's body, row by row."""
    return page.locator(f"{table} tbody tr").evaluate_all("rows => rows.map(r => [...r.cells].map(c => c.textContent))")


def _fill_student(page, grades: list[str], below: str, hindcast: bool = False) -> None:
    for t in range(1, 6):
        page.fill(f"#grade-{t}", grades[t - 1] if t <= len(grades) else "")
    page.fill("#below", below)
    page.set_checked("#hide-last", hindcast)
    page.click("#predict")  # the handler clears the last answer before its first await


@pytest.mark.browser
def test_one_student_sees_the_rest_of_the_degree_as_explain_onnx_computes_it(browser, site, static_server):
    predictor = OnnxPredictor(SHIPPED / "model.onnx")
    url = static_server(site)
    for viewport in VIEWPORTS:
        page = _open(browser, url, viewport)
        page.evaluate("window.cgpa.ready")
        assert page.input_value("#below") == f"{predictor.scale.at_risk_line():g}"  # the model's own line
        # A gap, one semester with a line near its forecast (the chance is neither <1% nor >99%), a hindcast
        # (the rest of the degree starts from every grade given), and a finished student.
        for grades, below, hindcast in ((["7.1", "6.8", "", "7.3"], "", False), (["5.2"], "5.5", False),
                                        (["6.1", "5.9", "6.0"], "5.75", True), (["7.1", "6.8", "7.5", "7.3", "7.0"], "",
                                                                                False)):
            _fill_student(page, grades, below, hindcast)
            page.wait_for_function("document.getElementById('trajectory').textContent !== ''")
            expected = predictor.trajectory(grades, "115", below or None)
            assert page.text_content("#trajectory") == expected.sentence(predictor), grades
            # The fan: each forecast semester with its interval, then each known grade, as explain.onnx says.
            row = np.array([[float(g) if g else np.nan for g in grades] + [np.nan] * (5 - len(grades))],
                           dtype=np.float32)
            outputs = predictor.detail_batch(row, np.array([115]), None, predictor.risk_line(below or None))
            path = [f"{predictor.semester_names[t]}: forecast {outputs['trajectory'][0, t]:.2f} (80% interval "
                    f"{outputs['trajectory_low'][0, t]:.2f} to {outputs['trajectory_high'][0, t]:.2f})"
                    for t in range(5) if not np.isnan(outputs["trajectory"][0, t])]
            known = [f"{predictor.semester_names[t]}: {float(g):.2f}" for t, g in enumerate(grades) if g]
            assert page.locator("#fan circle title").all_text_contents() == path + known
            assert len(path) == len(expected.semesters) and (not path) == expected.finished
            if grades == ["5.2"]:
                assert not expected.finished and 0.01 < expected.probability_below < 0.99  # the line matters here
                page.screenshot(path=str(SCREENSHOTS / f"site-trajectory-{viewport}.png"), full_page=True)
        page.fill("#below", "11")  # off the scale: refused with the Python runtime's words
        page.click("#predict")
        with pytest.raises(Exception) as refused:
            predictor.risk_line("11")
        assert page.text_content("#result") == str(refused.value)
        assert page.get_attribute("#below", "aria-invalid") == "true" and page.text_content("#trajectory") == ""
        page.close()


@pytest.mark.browser
def test_the_at_risk_list_names_students_by_id_most_likely_first(browser, site, static_server, tmp_path):
    from cgpa_rnn.trajectory import percent

    cohort = tmp_path / "advisees.csv"
    cohort.write_text("Roll,College Code,1st,2nd,3rd,4th,5th\n"
                      "A1,115,7.1,6.8,,7.3,\n"
                      "A2,115,5.0,5.2,5.1,,\n"
                      "17020.0,116,8,8.2,8.1,8.3,8.0\n"  # finished; a spreadsheet's roll is the student 17020
                      "A4,165,6.1,5.9,6.0,5.8,5.5\n"  # finished, below the line
                      ",115,6.5,6.2,,,\n"  # no ID: named by its line
                      "A6,115,abc,,,,\n"  # an error: in no list
                      "A7,241,4.5,,,,\n"
                      "A8,115,5.9,6.0,6.1,5.8,\n"
                      "A9,165,9.5,,,,\n"  # A9 and A10: no chance at all; the lower final CGPA comes first
                      "A10,116,8.8,9.1,9,,\n")
    students = {2: ("115/A1", "7.1,6.8,,7.3", 115), 3: ("115/A2", "5.0,5.2,5.1", 115),  # line: name, grades, code
                4: ("116/17020", "8,8.2,8.1,8.3,8.0", 116), 5: ("165/A4", "6.1,5.9,6.0,5.8,5.5", 165),
                6: ("line 6", "6.5,6.2", 115), 8: ("241/A7", "4.5", 241), 9: ("115/A8", "5.9,6.0,6.1,5.8", 115),
                10: ("165/A9", "9.5", 165), 11: ("116/A10", "8.8,9.1,9", 116)}
    predictor = OnnxPredictor(SHIPPED / "model.onnx")
    page = _open(browser, static_server(site), "phone")
    page.evaluate("window.cgpa.ready")
    status, scored = _score_in_page(page, cohort)
    for below in ("6", "6.5"):
        if below != page.input_value("#cohort-below"):  # a new line rescores the file open
            page.evaluate("document.getElementById('cohort-status').dataset.state = ''")
            page.fill("#cohort-below", below)
            page.press("#cohort-below", "Enter")
            page.wait_for_function("document.getElementById('cohort-status').dataset.state === 'done'")
            status, scored = _scored_in_page(page)
        assert status.startswith("9 of 10 students scored"), status
        ahead = {line: predictor.trajectory(grades, code, below) for line, (_, grades, code) in students.items()}
        # Most likely first; chances within 0.001 and CGPAs within 0.01 are ties (as the demo's list): the lower
        # final CGPA, then the file's order.
        studying = sorted((line for line, t in ahead.items() if not t.finished), key=lambda line: (
            -round(ahead[line].probability_below, 3), round(ahead[line].final, 2), line))
        finished = sorted((line for line, t in ahead.items() if t.finished), key=lambda line: ahead[line].final)
        assert [students[line][0] for line in finished] == ["165/A4", "116/17020"]
        assert len({t.probability_below for t in ahead.values()}) > 3  # an order to get wrong, and ties
        assert [students[line][0] for line in studying[-2:]] == ["116/A10", "165/A9"]
        assert ahead[10].probability_below == ahead[11].probability_below == 0
        assert _cells(page, "#at-risk-table") == [
            [students[line][0], f"{t.final:.2f}", f"{t.final_low:.2f} to {t.final_high:.2f}",
             percent(t.probability_below)] for line, t in ((line, ahead[line]) for line in studying)]
        assert _cells(page, "#finished-table") == [
            [students[line][0], f"{ahead[line].final:.2f}",
             f"{'below' if ahead[line].final < float(below) else 'at or above'} {below}"] for line in finished]
        # The scored CSV: the rest of each degree in the CLI's columns (empty for the semesters known).
        header, *rows = _rows(scored)
        assert header[-16:] == [f"sem{k}_{part}" for k in range(2, 6) for part in ("pred", "low", "high")] + [
            "final_cgpa", "final_low", "final_high", "p_below"]
        for line, cells in enumerate(rows, start=2):
            values = dict(zip(header, cells))
            if line not in ahead:
                assert values["error"] and values["p_below"] == values["final_cgpa"] == "", line
                continue
            t = ahead[line]
            assert float(values["p_below"]) == pytest.approx(t.probability_below, abs=1e-5)
            assert {k: float(v) for k, v in values.items() if k.endswith("_pred") and v} == pytest.approx(
                {f"sem{semester}_pred": median for semester, median in zip(t.semesters, t.median)}, abs=1e-5)
        out = tmp_path / f"scored-{below}.csv"
        cli = cgpa("predict", str(SHIPPED), "--csv", str(cohort), "--out", str(out), "--backend", "onnx",
                   "--trajectory", "--at-risk-below", below)
        assert cli.returncode == 0, cli.stderr
        _assert_same_scored(scored, out.read_text(encoding="utf-8"), cohort.name)
        summary = page.text_content("#at-risk-summary")  # the CLI's summary line, with the line
        assert [summary] == [line for line in cli.stdout.splitlines() if "whose final CGPA is forecast" in line]
        assert f"end below {below} " in summary
    page.screenshot(path=str(SCREENSHOTS / "site-at-risk-phone.png"), full_page=True)
    page.close()


@pytest.mark.browser
def test_the_page_says_when_the_runtime_cannot_load(browser, site, static_server, tmp_path, vectors_run):
    cdn = tmp_path / "cdn-site"
    assert cgpa("web", str(vectors_run), "--out", str(cdn)).returncode == 0
    page = browser.new_page()
    page.route("https://cdn.jsdelivr.net/**", lambda route: route.abort())  # offline: the CDN is out of reach
    page.goto(static_server(cdn))
    page.wait_for_function("document.getElementById('status').classList.contains('error')")
    assert "onnxruntime-web did not load from https://cdn.jsdelivr.net/" in page.text_content("#status")
    assert page.is_disabled("#predict")
    broken = tmp_path / "broken-site"
    shutil.copytree(site, broken)
    for packed in (broken / "ort").glob("ort-wasm-simd-threaded.wasm*"):
        packed.unlink()  # a host that lost the runtime's files
    page = browser.new_page()
    page.goto(static_server(broken))
    page.wait_for_function("document.getElementById('status').classList.contains('error')", timeout=60_000)
    assert page.text_content("#status").startswith("The model cannot run in this browser")


@pytest.mark.browser
def test_the_runtime_is_small_on_the_wire_from_a_host_that_serves_precompressed_files(browser, site):
    from cgpa_rnn.export.site_bench import load_once, serve

    sent = {}
    for precompressed in (True, False):
        server = serve(site, precompressed)
        try:
            sent[precompressed] = load_once(browser, server)["bytes"]
        finally:
            server.shutdown()
    assert sent[True] <= 3_000_000  # brotli: the 14 MB .wasm as 2.7 MB
    assert sent[False] <= 4_000_000  # python -m http.server: the page inflates the .wasm.gz itself


@pytest.mark.browser
def test_hostile_metadata_and_ort_values_cannot_inject_into_the_page(browser, run_copy, ort_web_dist, static_server,
                                                                    tmp_path):
    import onnx

    hostile = "</script><script>alert(1)</script>"
    model = onnx.load(run_copy / "model.onnx")
    props = {p.key: p for p in model.metadata_props}
    source = json.loads(props["data_source"].value)
    props["data_source"].value = json.dumps({**source, "kind": "csv", "name": "<!--<script>.csv" + hostile})
    names = json.loads(props["semester_names"].value)
    props["semester_names"].value = json.dumps([f"{name}{hostile}\u2028" for name in names])
    onnx.save(model, run_copy / "model.onnx")
    site = tmp_path / "site"
    built = cgpa("web", str(run_copy), "--out", str(site), "--ort", str(ort_web_dist))
    assert built.returncode == 0, built.stderr
    page = _open(browser, static_server(site))
    page.evaluate("window.cgpa.ready")
    assert page.locator("script").count() == PAGE_SCRIPTS and page.dialogs == []
    page.click("#tab-about")
    assert "<!--<script>.csv</script>" in page.text_content("#about")  # shown as text
    assert hostile in page.text_content("#grades")
    for bad in ('https://cdn.example/dist/"><script>alert(1)</script>', "javascript:alert(1)",
                "data:text/javascript,alert(1)", "https://cdn.example/a b/", "ftp://cdn.example/dist/"):
        refused = cgpa("web", str(SHIPPED), "--out", str(tmp_path / "refused"), "--ort", bad)
        assert refused.returncode == 2 and "--ort" in refused.stderr and "Traceback" not in refused.stderr, bad
    odd = "https://cdn.example/a&b'c/dist/"  # quotes and ampersands are escaped in the attribute
    assert cgpa("web", str(SHIPPED), "--out", str(tmp_path / "odd"), "--ort", odd).returncode == 0
    page = browser.new_page()
    page.route("https://cdn.example/**", lambda route: route.abort())
    page.goto(static_server(tmp_path / "odd"))
    assert page.locator("script").count() == PAGE_SCRIPTS
    assert page.evaluate("document.scripts[1].getAttribute('src')") == odd + "ort.wasm.min.js"


def test_web_writes_a_folder_that_holds_exactly_the_site(tmp_path, ort_web_dist):
    site = tmp_path / "site"
    assert cgpa("web", str(SHIPPED), "--out", str(site), "--ort", str(ort_web_dist)).returncode == 0
    assert (site / "ort").is_dir() and (site / ".cgpa-site").is_file()
    assert cgpa("web", str(SHIPPED), "--out", str(site)).returncode == 0  # rebuilt without --ort: no stale ort/
    assert not (site / "ort").exists() and "cdn.jsdelivr.net" in (site / "index.html").read_text()
    assert not list(tmp_path.glob(".site.*"))  # nothing left beside it
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("keep me")
    refused = cgpa("web", str(SHIPPED), "--out", str(mine))
    assert refused.returncode == 2 and "not a site" in refused.stderr and sorted(mine.iterdir()) == [mine / "notes.txt"]
    forced = cgpa("web", str(SHIPPED), "--out", str(mine), "--force")  # the site's files added, nothing removed
    assert forced.returncode == 0 and (mine / "notes.txt").read_text() == "keep me" and (mine / "index.html").is_file()
    assert not (mine / ".cgpa-site").exists()  # still the user's folder: the next build is refused again
    assert cgpa("web", str(SHIPPED), "--out", str(mine)).returncode == 2 and (mine / "notes.txt").is_file()
    (tmp_path / "file").write_text("x")
    assert cgpa("web", str(SHIPPED), "--out", str(tmp_path / "file")).returncode == 2
    assert (tmp_path / "file").read_text() == "x"


def test_cgpa_web_refuses_what_it_cannot_build(tmp_path, run_copy):
    not_dist = cgpa("web", str(SHIPPED), "--out", str(tmp_path / "site"), "--ort", str(tmp_path))
    assert not_dist.returncode == 2 and "not an http(s) URL nor an onnxruntime-web dist/ folder" in not_dist.stderr
    (run_copy / "model.pt").write_bytes((run_copy / "model.pt").read_bytes() + b" ")
    stale = cgpa("web", str(run_copy), "--out", str(tmp_path / "site"))
    assert stale.returncode == 2 and "stale" in stale.stderr
    assert not (tmp_path / "site").exists()


def test_node_scores_students_and_passes_the_conformance_vectors(ort_web_dist, vectors_run, tmp_path):
    grades, colleges, expected = _students(300, seed=12)
    done = subprocess.run(["node", "score.mjs", str(SHIPPED / "model.onnx"), json.dumps(grades), json.dumps(colleges)],
                          cwd=ROOT / "export" / "node", capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    answer = json.loads(done.stdout)
    assert answer["semesters"] == 5
    _assert_same(answer, expected)
    checked = subprocess.run(["node", "check_vectors.mjs", str(vectors_run / "model.onnx"),
                              str(vectors_run / "vectors.json")], cwd=ROOT / "export" / "node", capture_output=True,
                             text=True, timeout=120)
    report = json.loads(checked.stdout)
    assert checked.returncode == 0 and report["cases"] >= 10 and report["failures"] == [], checked.stdout
    # explain.onnx too: every case's rest of the degree, one with its own credits and line, the others with the
    # optional inputs left out.
    assert report["trajectory_cases"] == report["cases"] and report["defaults_left_out"] == report["cases"] - 1
    # A check that compared no trajectory output, or only some, would pass these.
    vectors = json.loads((vectors_run / "vectors.json").read_text())
    cases = {case["name"]: case for case in vectors["cases"]}
    cases["history_of_1"]["trajectory"]["probability_below"][0] += 0.01  # the case fed its own credits and line
    cases["history_of_2"]["trajectory"]["trajectory_high"][0][-1] -= 0.01  # a path, [batch, semesters]
    wrong = tmp_path / "vectors.json"
    wrong.write_text(json.dumps(vectors))
    failed = subprocess.run(["node", "check_vectors.mjs", str(vectors_run / "model.onnx"), str(wrong),
                             str(vectors_run / "explain.onnx")], cwd=ROOT / "export" / "node", capture_output=True,
                            text=True, timeout=120)
    failures = [f.split(" expected")[0] for f in json.loads(failed.stdout)["failures"]]
    assert failed.returncode == 1 and failures == ["history_of_1: probability_below", "history_of_2: trajectory_high"]


@pytest.fixture(scope="module")
def school_run(tmp_path_factory) -> tuple[Path, Path]:
    """Another institution's model: a semicolon export on 0-20, periods G1..G3, text school codes."""
    from cgpa_rnn.data.synthetic import SyntheticSpec, generate_frame

    folder = tmp_path_factory.mktemp("school")
    data, run = folder / "escola.csv", folder / "run"
    generate_frame(SyntheticSpec(students=120, seed=3, semesters=3, kind="sticky")).to_csv(data, sep=";", index=False)
    for step in (("train", "--data", str(data), "--semesters", "G1,G2,G3", "--group", "school", "--scale", "0-20",
                  "--epochs", "5", "--out", str(run)), ("export", str(run))):
        done = cgpa(*step)
        assert done.returncode == 0, done.stderr
    return run, data


def test_node_feeds_text_labels_by_the_models_own_vocabulary(ort_web_dist, school_run):
    """The ONNX contract for text codes in Node: label k of the metadata's group_labels is code k + 1."""
    run, _ = school_run
    predictor = OnnxPredictor(run / "model.onnx")
    assert predictor.groups.labels == ("GP", "MS")
    grades, labels = [[11, 12, None], [11, None, None], [3, 4, None], [9, 9, None]], ["MS", "GP", "XX", " MS "]
    expected = predictor.predict_batch(np.array(grades, dtype=np.float32),
                                       np.array([predictor.parse_college(label) for label in labels]))
    done = subprocess.run(["node", "score.mjs", str(run / "model.onnx"), json.dumps(grades), json.dumps(labels)],
                          cwd=ROOT / "export" / "node", capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    _assert_same(json.loads(done.stdout), expected)
    blank = subprocess.run(["node", "score.mjs", str(run / "model.onnx"), "[[11, 12, null]]", '[""]'],
                           cwd=ROOT / "export" / "node", capture_output=True, text=True, timeout=120)
    assert blank.returncode == 2
    assert blank.stderr.strip() == "student 1: expected a school value (like 'GP'), got a blank"


@pytest.mark.browser
def test_the_page_of_a_text_label_model_reads_its_schools_like_the_cli(browser, static_server, ort_web_dist,
                                                                          school_run, tmp_path):
    run, data = school_run
    site = tmp_path / "site"
    assert cgpa("web", str(run), "--out", str(site), "--ort", str(ort_web_dist)).returncode == 0
    page = _open(browser, static_server(site), "phone")
    page.evaluate("window.cgpa.ready")
    assert page.text_content("#scale-text") == "0-20"  # the page speaks of the model's scale and columns
    assert page.text_content("#columns-text") == "semester columns G1, G2, G3 (or named by number), and a school column"
    page.fill("#grade-1", "11")
    page.fill("#grade-2", "12")
    page.fill("#college", "MS")
    page.click("#predict")
    page.wait_for_function("document.getElementById('result').textContent.includes('interval')")
    predictor = OnnxPredictor(run / "model.onnx")
    expected = predictor.predict(["11", "12"], "MS")
    assert page.text_content("#result").startswith(f"G3 (0-20): {expected.prediction:.2f} (80% interval "
                                                   f"{expected.low:.2f} to {expected.high:.2f})")
    page.wait_for_function("document.getElementById('trajectory').textContent !== ''")
    ahead = predictor.trajectory(["11", "12"], "MS")  # the line: 12 on 0-20
    assert page.text_content("#trajectory") == ahead.sentence(predictor)
    assert ahead.sentence(predictor).startswith("Final CGPA after the G3: ")
    page.fill("#college", "XX")
    page.click("#predict")
    page.wait_for_function("document.getElementById('result').textContent.endsWith('not seen in training')")
    assert page.text_content("#result").endswith("ms; school not seen in training")
    out = tmp_path / "scored.csv"
    cli = cgpa("predict", str(run), "--csv", str(data), "--out", str(out), "--backend", "onnx", "--trajectory")
    assert cli.returncode == 0, cli.stderr
    status, scored = _score_in_page(page, data)
    assert status.startswith("120 of 120 students scored"), status
    _assert_same_scored(scored, out.read_text(encoding="utf-8"), data.name)
    page.click("#tab-about")
    assert "school: GP, MS; any other value uses a shared 'unknown' slot" in page.text_content("#about")
    ticks = sorted({int(t) for t in page.locator("#chart svg text").all_text_contents() if t.isdigit()})
    assert max(ticks) == 20 and ticks[1] - ticks[0] == 2  # the 0-20 scale's axis, not clipped at 10
    page.screenshot(path=str(SCREENSHOTS / "site-school-model-phone.png"), full_page=True)
    page.close()
