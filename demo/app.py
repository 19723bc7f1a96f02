"""The Gradio demo: torch and onnxruntime side by side, cohort scoring, the model card.

UI only: every handler translates widgets to demo.service calls and back.
"""
from __future__ import annotations

import base64
import html
import inspect
import json
import os
import sys
from pathlib import Path

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
# Gradio recomputes its monitoring summary (a pandas frame of up to 10,000 past events) after
# every event by default: 7 ms per click on a long-running server. Nothing here reads it often.
os.environ.setdefault("GRADIO_ANALYTICS_CACHE_FREQUENCY", "500")

import gradio as gr  # noqa: E402
import numpy as np  # noqa: E402
from starlette.middleware import Middleware  # noqa: E402

from cgpa_rnn.data import SHIPPED_DATA  # noqa: E402
from cgpa_rnn.demo import service, training  # noqa: E402
from cgpa_rnn.demo.middleware import ReprFreeErrors  # noqa: E402
from cgpa_rnn.export.site import ORT_CDN  # noqa: E402
from cgpa_rnn.export.verify import TOLERANCE as PARITY_TOLERANCE  # noqa: E402
from cgpa_rnn.model.config import INTERVAL_LEVEL  # noqa: E402
from cgpa_rnn.model.train import MIN_STUDENTS  # noqa: E402
from cgpa_rnn.errors import UserError  # noqa: E402
from cgpa_rnn.rundir import RunDir  # noqa: E402

# A request is CPU work (the plot, a cohort): running more at once than there are cores only
# adds memory. A burst beyond the queue gets Gradio's "busy" answer instead of piling up.
CONCURRENCY = os.cpu_count() or 2
QUEUE_SIZE = 64
# Gradio deletes uploads and its copies of results: checked every 5 minutes, older than 15.
DELETE_CACHE = (300, 900)
BROWSER_JS = Path(__file__).resolve().parent / "browser.js"
MAX_FILE_SIZE = f"{service.UPLOAD_LIMITS.bytes // 1024}kb"  # Gradio refuses larger uploads before they land


def _shown(error: Exception) -> gr.Error:
    """A user mistake as the page shows it: plain text, whatever the input held."""
    return gr.Error(html.escape(str(error)))


def build_demo(run: str | Path | service.Backends = service.DEFAULT_RUN) -> gr.Blocks:
    """The app for a run directory (or for backends already loaded); a page that says what is
    wrong when the model cannot be served."""
    try:
        backends = run if isinstance(run, service.Backends) else service.load_backends(run)
    except UserError as error:
        # The details (paths, runtime messages) are for whoever runs the server, not for visitors.
        print(f"error: {error}", file=sys.stderr)
        with gr.Blocks(title="cgpa-rnn") as broken:
            gr.Markdown("# cgpa-rnn\n\n**The model cannot be served**: its files are missing, damaged or out of "
                        "date. The server's log says which file and how to rebuild it.")
        return broken
    with gr.Blocks(title="cgpa-rnn: next-semester grade forecaster", delete_cache=DELETE_CACHE) as demo:
        synthetic = ("**This model was trained on a SYNTHETIC cohort: generated students, not real ones.**\n\n"
                     if backends.torch.payload["data"]["synthetic"] else "")
        cell = backends.torch.payload["config"]["model"]["cell"]
        gr.Markdown(f"# cgpa-rnn: next-semester grade forecaster\n{synthetic}A `{cell}` recurrent network run in "
                    "**torch** and in **onnxruntime** side by side.")
        with gr.Tab("One student"):
            _student_tab(backends)
        with gr.Tab("A cohort"):
            _cohort_tab(backends)
        with gr.Tab("Train on your own cohort"):
            _train_tab(training.OwnModels(), demo)
        with gr.Tab("About the model"):
            gr.Markdown(service.model_card(backends.run))
    return demo


def _named(fn, names: list[str], returns=None, flag: str | None = None):
    """Give a handler taking *values one named parameter per field (text, then an optional
    yes/no `flag` last), for the API page and clients."""
    kinds = {n: (str, "") for n in names} | ({flag: (bool, False)} if flag else {})
    fn.__signature__ = inspect.Signature(
        [inspect.Parameter(n, inspect.Parameter.POSITIONAL_OR_KEYWORD, default=default, annotation=kind)
         for n, (kind, default) in kinds.items()], return_annotation=returns or inspect.Signature.empty)
    fn.__annotations__ = {n: kind for n, (kind, _) in kinds.items()} | ({"return": returns} if returns else {})
    return fn


def _side_by_side(backends: service.Backends, result: service.StudentResult) -> tuple[str, str, str, str]:
    """torch, onnxruntime, their difference and the answer in words, as the page shows them."""
    return (f"{result.torch_prediction:.2f}", f"{result.onnx_prediction:.2f}", f"{result.abs_diff:.1e}",
            _answer_text(backends, result))


def _answer_text(backends: service.Backends, result: service.StudentResult) -> str:
    name = backends.semester_names[result.semester - 1]
    lines = [f"**{name} semester: {result.onnx_prediction:.2f}** ({INTERVAL_LEVEL:.0%} interval "
             f"{result.low:.2f} to {result.high:.2f})."]
    if result.actual is not None:
        inside = "inside" if result.low <= result.actual <= result.high else "outside"
        lines.append(f"Hindcast: the actual {name} semester was **{result.actual:.2f}**, so the model would have "
                     f"been {abs(result.actual - result.onnx_prediction):.2f} off ({inside} the interval).")
    agreement = ("Both runtimes agree" if result.abs_diff <= PARITY_TOLERANCE
                 else f"**The runtimes differ by more than {PARITY_TOLERANCE:g}**")
    lines.append(f"{agreement}: |torch - onnxruntime| = {result.abs_diff:.1e}; this call took "
                 f"{result.torch_latency_us / 1000:.2f} ms in torch and {result.onnx_latency_us / 1000:.2f} ms in "
                 "onnxruntime.")
    lines.append(f"Cumulative average with this semester: {result.cumulative_average:.2f} (equal credits assumed).")
    if not result.known_college:
        lines.append("The college was not seen in training: it uses the shared 'unknown' slot.")
    return "\n\n".join(lines)


def _student_tab(backends: service.Backends) -> None:
    names = backends.semester_names
    gr.Markdown(f"Grade points 0-10 per semester; leave a semester blank if it is missing or not yet taken. "
                f"The model knows {backends.semesters} semesters. To see how close it would have been (a hindcast), "
                f"give all of them: it then predicts the {names[-1]} from the earlier ones; or tick the box to "
                "predict the last grade you gave from the ones before it.")
    with gr.Row():
        grade_boxes = [gr.Textbox(label=f"{name} semester", elem_id=f"grade-{t + 1}", max_lines=1)
                       for t, name in enumerate(names)]
    with gr.Row():
        college = gr.Dropdown([str(c) for c in backends.colleges], value=str(backends.colleges[0]),
                              allow_custom_value=True, label="college (pick one, or type any code)",
                              elem_id="college")
        hide_last = gr.Checkbox(label="hindcast: predict the last grade given from the earlier ones",
                                elem_id="hide-last-grade")
        button = gr.Button("Predict", variant="primary", elem_id="predict")
    with gr.Row():
        torch_out = gr.Textbox(label="torch", elem_id="pred-torch", interactive=False)
        onnx_out = gr.Textbox(label="onnxruntime", elem_id="pred-onnx", interactive=False)
        diff_out = gr.Textbox(label="torch - onnxruntime", elem_id="abs-diff", interactive=False)
        browser_out = gr.Textbox(label="your browser (onnxruntime-web)", elem_id="pred-browser", interactive=False)
    details = gr.Markdown(label="answer", elem_id="details")
    plot = gr.LinePlot(x="semester", y="grade", color="series", label="grades and prediction",
                       x_title="semester", y_title="grade point (0-10)", elem_id="plot")
    # The exact question the server asked and its answer: the browser column runs the same one.
    question = gr.JSON(label="question_and_answer", visible=False)
    outputs = [torch_out, onnx_out, diff_out, details, plot, question, browser_out]

    def clear():  # a new question: no answer to an earlier one stays on screen beside it
        return ["", "", "", "", None, None, ""]

    def validate(*values):
        *grades, code, hindcast = values
        messages = service.field_errors(backends, grades, code, bool(hindcast))
        return [gr.validate(message is None, message or "") for message in messages] + [gr.validate(True, "")]

    def result_of(values) -> service.StudentResult:
        if len(values) != backends.semesters + 2:
            raise gr.Error(f"expected {backends.semesters} grades, a college code and the hindcast choice, got "
                           f"{len(values)} values")
        *grades, code, hindcast = values
        try:
            return service.predict_student(backends, grades, code, bool(hindcast))
        except UserError as error:
            raise _shown(error) from None

    def predict(*values):
        result = result_of(values)
        asked = {"grades": [None if np.isnan(g) else g for g in result.grades], "college": result.college,
                 "prediction": result.onnx_prediction}
        return (*_side_by_side(backends, result), service.plot_frame(backends, result), asked)

    def predict_json(*values) -> dict:
        """For programs: the prediction, its interval and semester, both runtimes' values, their
        difference and latencies, and for a hindcast the actual grade.

        Returns:
            prediction: a dict of plain numbers
        """
        return service.result_record(backends, result_of(values))

    parameters = [f"semester_{name}" for name in names] + ["college"]
    inputs = [*grade_boxes, college, hide_last]
    button.click(clear, None, outputs, queue=False, api_visibility="private").then(
        # The named API endpoint: one parameter per semester (blank for missing), the college code,
        # and whether to hindcast the last grade given.
        _named(predict, parameters, flag="hindcast_last_given"), inputs, outputs[:6], validator=validate,
        api_name="predict").success(
        None, question, browser_out, js=browser_runtime(backends), api_visibility="private")
    gr.api(_named(predict_json, parameters, dict, flag="hindcast_last_given"), api_name="predict_json")
    examples = service.examples(backends)
    if examples:
        gr.Examples(examples, [*grade_boxes, college],
                    label="students from the data: the last semester hidden, or given for a hindcast")


def browser_runtime(backends: service.Backends) -> str:
    """The JS event that runs the same model.onnx in the visitor's browser (demo/browser.js)."""
    model = (backends.run / RunDir.ONNX).read_bytes()
    config = {"ortBase": ORT_CDN, "model": base64.b64encode(model).decode(), "semesters": backends.semesters}
    return BROWSER_JS.read_text(encoding="utf-8").replace("__CONFIG__", json.dumps(config))


def _cohort_tab(backends: service.Backends) -> None:
    limits = service.UPLOAD_LIMITS
    gr.Markdown(f"Upload a CSV in the data format (columns 1st, 2nd, ..., College Code; semesters are matched by "
                f"their number). At most {limits.bytes // 1024} KB, {limits.rows:,} rows and {limits.columns} columns. "
                "Each student's next semester is predicted; a student whose final semester is known is scored by "
                "**hindcast** instead (that semester predicted from the earlier ones, then compared with the known "
                "grade), so last year's class shows how close the model comes. Rows that cannot be scored keep "
                "their reason in the `error` column. Uploads are student records: the server deletes them and the "
                f"scored file within {DELETE_CACHE[1] // 60} minutes and keeps nothing else.")
    with gr.Row():
        upload = gr.File(label="cohort CSV", file_types=[".csv"], elem_id="cohort-file")
        with gr.Column():
            threshold = gr.Number(value=6.0, label="at risk below (0-10)", minimum=0, maximum=10,
                                  elem_id="threshold")
            hide_last = gr.Checkbox(label="hindcast every student's last known semester", elem_id="hide-last")
        button = gr.Button("Score cohort", variant="primary", elem_id="score")
    summary = gr.Markdown(label="summary", elem_id="cohort-summary")
    chart = gr.ScatterPlot(x="actual", y="predicted", color="interval", x_lim=[0, 10], y_lim=[0, 10],
                           label="hindcast: predicted against actual", x_title="actual grade point",
                           y_title="predicted grade point", elem_id="hindcast-chart", visible=False)
    table = gr.Dataframe(label="scored students", wrap=True)
    download = gr.File(label="download the scored CSV")

    def validate(cohort_csv, at_risk_below, hindcast_every_student):
        path, limit = cohort_csv, at_risk_below
        try:
            service.at_risk_threshold(limit)
            threshold_message = None
        except UserError as error:
            threshold_message = str(error)
        return [gr.validate(path is not None, "upload a CSV first"),
                gr.validate(threshold_message is None, threshold_message or ""),
                gr.validate(True, "")]  # one verdict per input: the checkbox cannot be wrong

    def score(cohort_csv, at_risk_below, hindcast_every_student):
        if cohort_csv is None:
            raise gr.Error("upload a CSV first")
        try:
            scored, out, text = service.score_upload(backends, cohort_csv, at_risk_below, bool(hindcast_every_student))
        except UserError as error:
            raise _shown(error) from None
        frame = service.hindcast_frame(scored)
        return text, gr.ScatterPlot(frame, visible=frame is not None), service.display_table(scored), str(out)

    _shipped_data_button(upload, "No file at hand? Take the data set the model was trained on")
    outputs = [summary, chart, table, download]
    button.click(lambda: ["", gr.ScatterPlot(None, visible=False), None, None], None, outputs, queue=False,
                 api_visibility="private").then(
        score, [upload, threshold, hide_last], outputs, validator=validate, api_name="predict_batch")


def _shipped_data_button(upload: gr.File, text: str) -> None:
    # A button, not gr.Examples: each gr.Examples costs every new session ~1 ms of Gradio's state.
    gr.Button(text, size="sm", variant="secondary", elem_classes="shipped-data").click(
        lambda: str(SHIPPED_DATA), None, upload, queue=False, api_visibility="private")


def _train_tab(models: training.OwnModels, demo: gr.Blocks) -> None:
    limits = training.TRAIN_LIMITS
    gr.Markdown(
        "The shipped model knows one university. Train one on your own cohort: a CSV in the data format (one row "
        "per student; columns `1st`, `2nd`, ... up to the semesters you have, `College Code` with your own codes, "
        "and `Roll` or `Roll no.`). The demo trains it, exports it to ONNX, verifies the export against torch, and "
        "serves it below in both runtimes **to this page only**; the shipped model stays as it is for everyone "
        "else.\n\n"
        f"Limits: at most {limits.bytes // 1024} KB, {limits.rows:,} students, {training.MAX_SEMESTERS} semesters "
        f"and {limits.columns} columns; at least {MIN_STUDENTS} students; training stops after {training.TRAIN_SECONDS} "
        "seconds. One training runs at a time; others wait in the queue. Your file and your model are deleted "
        f"when you close this page (or after {training.IDLE_SECONDS // 60} idle minutes); Gradio deletes its own "
        f"copies of the upload and the downloads within {DELETE_CACHE[1] // 60} minutes.")
    with gr.Row():
        upload = gr.File(label="your cohort CSV", file_types=[".csv"], elem_id="train-file")
        button = gr.Button("Train, export and verify", variant="primary", elem_id="train")
    _shipped_data_button(upload, "No file at hand? Take the shipped data set (this trains the shipped model again)")
    summary = gr.Markdown(label="summary", elem_id="train-summary")
    errors = gr.Dataframe(headers=training.ERROR_COLUMNS, label="error on held-out students (lower is better)",
                          elem_id="train-errors", visible=False)
    downloads = gr.File(label="model.onnx, its parity report and model card", file_count="multiple",
                        elem_id="train-downloads")
    gr.Markdown("### Try your model")
    with gr.Row():
        grades = gr.Textbox(label="grades, comma-separated (blank for missing)", placeholder="7.1, 6.8, , 7.3",
                            elem_id="own-grades", max_lines=1)
        college = gr.Textbox(label="college code", elem_id="own-college", max_lines=1)
        predict_button = gr.Button("Predict with your model", elem_id="own-predict")
    with gr.Row():
        answers = [gr.Textbox(label="torch", elem_id="own-torch", interactive=False),
                   gr.Textbox(label="onnxruntime", elem_id="own-onnx", interactive=False),
                   gr.Textbox(label="torch - onnxruntime", elem_id="own-diff", interactive=False)]
    details = gr.Markdown(label="answer", elem_id="own-details")

    def train(cohort_csv, request: gr.Request, progress=gr.Progress()):
        if cohort_csv is None:
            raise gr.Error("upload a CSV first")
        try:
            model = models.train(request.session_hash, cohort_csv, lambda share, what: progress(share, desc=what))
        except UserError as error:
            raise _shown(error) from None
        return (_trained_text(model), gr.Dataframe(training.error_table(model), visible=True),
                [str(p) for p in model.downloads])

    def predict_own(grades_csv: str, college_code: str, request: gr.Request):
        try:
            model = models.get(request.session_hash)
            result = service.predict_student(model.backends, grades_csv, college_code)
        except UserError as error:
            raise _shown(error) from None
        return _side_by_side(model.backends, result)

    outputs = [summary, errors, downloads]
    # One training at a time, the others queued: it keeps a core for the visitors' predictions, and
    # torch.export fails when two threads export at once (tests/test_training.py shows it).
    button.click(lambda: ["", gr.Dataframe(visible=False), None], None, outputs, queue=False,
                 api_visibility="private").then(train, upload, outputs, api_name="train_own", concurrency_limit=1,
                                                concurrency_id="train")
    predict_button.click(predict_own, [grades, college], [*answers, details], api_name="predict_own")

    def forget(request: gr.Request):  # the page was closed: its model and its copy of the upload go
        models.discard(request.session_hash)

    demo.unload(forget)


def _trained_text(model: training.OwnModel) -> str:
    data, split = model.metrics["data"], model.metrics["split"]
    lines = [f"**Your model is ready**: the `{model.backends.torch.payload['config']['model']['cell']}` network, "
             f"trained on {split['train_students']} students of {html.escape(model.name)} ({data['students']} read, "
             f"{model.backends.semesters} semesters, colleges {', '.join(map(str, model.backends.colleges))}); "
             f"{split['test_students']} students were held out to measure it, below.",
             f"Both runtimes agree: the largest |torch - onnxruntime| over {model.parity['samples']:,} students is "
             f"{model.parity['max_abs_diff']:.1e} (tolerance {PARITY_TOLERANCE:g}). Try it below, or take the "
             "verified `model.onnx` away: it runs in any ONNX runtime."]
    if model.metrics.get("time_limited_networks"):
        lines.append(f"Training reached the {training.TRAIN_SECONDS} s limit before early stopping for "
                     f"{model.metrics['time_limited_networks']} network(s); each kept its best epoch so far.")
    return "\n\n".join(lines)


def launch(demo: gr.Blocks, server_name: str | None = None, port: int | None = None, **options):
    """The one way the app is served (python -m demo, cgpa demo, app.py, the tests); unset
    values come from GRADIO_SERVER_NAME / GRADIO_SERVER_PORT, as a Space sets them."""
    demo.queue(default_concurrency_limit=CONCURRENCY, max_size=QUEUE_SIZE)
    return demo.launch(server_name=server_name, server_port=port, footer_links=["api"],
                       max_file_size=MAX_FILE_SIZE, app_kwargs={"middleware": [Middleware(ReprFreeErrors)]},
                       allowed_paths=[str(SHIPPED_DATA)],  # the examples' file, wherever the package lives
                       **options)


def main(run: str | Path | None = None, port: int = 7860, rebuild: bool = False) -> None:
    """`cgpa demo` / `python -m demo`: serve a run on 127.0.0.1, refusing one that cannot be served."""
    run = Path(run) if run else service.DEFAULT_RUN
    if rebuild:
        training.rebuild(run)
    backends = service.load_backends(run)  # a UserError here is one line from the CLI
    try:
        launch(build_demo(backends), server_name="127.0.0.1", port=port)
    except OSError as error:  # the port is taken or not ours to use
        raise UserError(f"--port {port}: cannot serve on it ({error})") from None
