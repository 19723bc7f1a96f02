"""The static site (`cgpa web`) as a visitor uses it, in headless Chromium from a loopback
server: one student, a cohort file scored by the same rules as `cgpa predict --csv`, nothing
sent anywhere, the runtime's size, hostile metadata; and the Node example."""
from __future__ import annotations

import csv
import io
import json
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
PAGE_SCRIPTS = 5  # the config, onnxruntime-web, rules.js, chart.js, cgpa.js
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
    numeric = {k for k, c in enumerate(cli_rows[0]) if c in ("pred_onnx", "low", "high", "actual", "abs_error")}
    for line, (mine, theirs) in enumerate(zip(page_rows[1:], cli_rows[1:]), start=2):
        for k, (a, b) in enumerate(zip(mine, theirs)):
            if k in numeric and a and b:
                assert abs(float(a) - float(b)) <= 1e-5 + 1e-9, f"{name} line {line} {cli_rows[0][k]}: {a} vs {b}"
            else:
                assert a == b, f"{name} line {line} {cli_rows[0][k]}: page {a!r}, cli {b!r}"


@pytest.mark.browser
def test_the_site_runs_the_model_in_the_browser(browser, site, static_server):
    expected_files = {".cgpa-site", "README.md", "index.html", "rules.js", "chart.js", "cgpa.js", "model.onnx",
                      "explain.onnx", "vectors.json", "ort"}
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
    failures = page.evaluate("""async (vectors) => {
        const failures = [];
        for (const c of vectors.cases) {
            const out = await window.cgpa.predict(c.inputs.grades, c.inputs.college.map(BigInt));
            for (const name of ["prediction", "low", "high"]) {
                c.outputs[name].forEach((expected, i) => {
                    const got = out[name][i];
                    const ok = expected === null ? Number.isNaN(got)
                        : Math.abs(got - expected) <= vectors.tolerance.absolute;
                    if (!ok) failures.push(`${c.name} ${name}[${i}]: expected ${expected}, got ${got}`);
                });
            }
        }
        return failures;
    }""", vectors)
    assert len(vectors["cases"]) >= 10 and failures == []


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
        cli = cgpa("predict", str(SHIPPED), "--csv", path.name, "--out", str(out), "--backend", "onnx", *flags,
                   cwd=FIXTURES)
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
        reference = score_csv(path, {"onnx": check_fresh(SHIPPED)}, name=path.name, hindcast_last_given=hindcast_all)
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
        page.screenshot(path=str(SCREENSHOTS / f"site-cohort-{viewport}.png"), full_page=True)
        page.click("#tab-about")
        assert [r for r in page.requests if not r.startswith("blob:")] == []  # the download is a local blob
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


def test_node_scores_students_and_passes_the_conformance_vectors(ort_web_dist, vectors_run):
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
    expected = OnnxPredictor(run / "model.onnx").predict(["11", "12"], "MS")
    assert page.text_content("#result").startswith(f"G3 (0-20): {expected.prediction:.2f} (80% interval "
                                                   f"{expected.low:.2f} to {expected.high:.2f})")
    page.fill("#college", "XX")
    page.click("#predict")
    page.wait_for_function("document.getElementById('result').textContent.endsWith('not seen in training')")
    assert page.text_content("#result").endswith("ms; school not seen in training")
    out = tmp_path / "scored.csv"
    cli = cgpa("predict", str(run), "--csv", str(data), "--out", str(out), "--backend", "onnx")
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
