"""The "Your model" tab: a visitor's cohort trained, exported and verified into a model that
this page alone can ask, in both runtimes, and take away as model.onnx."""
from __future__ import annotations

import html

import gradio as gr

from cgpa_rnn.data.cohort import MIN_STUDENTS, CohortFormat
from cgpa_rnn.demo import service, training, visitors
from cgpa_rnn.demo.retention import UPLOADS
from cgpa_rnn.demo.tabs.common import AS_SENT, failed, kept_once_chosen, refused, shipped_data_button
from cgpa_rnn.demo.tabs.student import side_by_side
from cgpa_rnn.demo.visitors import OwnModels
from cgpa_rnn.errors import UserError

SCALES = ("0-10", "0-4", "0-5", "0-20", "0-100")  # offered; any LOW-HIGH may be typed


def train(models: OwnModels, cohort_csv: str | None, session: str, report: training.Report,
          request: gr.Request | None = None, scale: str = "", group: str = "", semesters: str = ""
          ) -> tuple[str, list[list], list[str]]:
    """The summary, the held-out error table and the files to download: plain values. `scale`,
    `group` and `semesters` read the file as `cgpa train`'s options of those names do."""
    try:
        if cohort_csv is None:
            raise UserError("upload a CSV first")
        UPLOADS.claim(cohort_csv)  # kept while the training waits its turn
        form = CohortFormat.parse(semesters, scale, group)
        model = models.train(session, cohort_csv, report, form)
    except UserError as error:
        raise refused(error, request, cohort_csv) from None
    except gr.Error:
        raise
    except Exception as error:
        raise failed(error, "training") from None
    return trained_text(model), training.error_table(model), [str(p) for p in model.downloads]


def predict_own(models: OwnModels, grades_csv: str, college_code: str, session: str,
                request: gr.Request | None = None) -> tuple[str, str, str, str]:
    try:
        model = models.get(session)
        result = service.predict_student(model.backends, grades_csv, college_code)
    except UserError as error:
        raise refused(error, request) from None
    except Exception as error:
        raise failed(error, "prediction") from None
    return side_by_side(model.backends, result)


def trained_text(model: training.OwnModel) -> str:
    record = model.record
    groups = model.backends.groups
    group = (f"{html.escape(groups.column)} {html.escape(', '.join(model.backends.college_choices()[:12]))}"
             if groups.column else "no group column")
    lines = [(f"**Your model is ready**: the `{record.cell}` network, "
              f"trained on {service.plural(record.split.train_students, 'student')} of {html.escape(model.name)} "
              f"({record.data.students:,} read, {service.plural(model.backends.semesters, 'semester')} "
              f"({html.escape(', '.join(model.backends.semester_names))}) on the {model.backends.scale} scale, "
              f"{group}); "
              f"{service.plural(record.split.test_students, 'student')} "
              "were held out to measure it, below."),
             (f"Both runtimes agree: the largest |torch - onnxruntime| over "
              f"{service.plural(model.parity['samples'], 'input')} (the cohort's students, cut after each "
              "semester, and random ones) is "
              f"{model.parity['max_abs_diff']:.1e} (tolerance {service.PARITY_TOLERANCE:g}). Try it below, or take "
              "the verified `model.onnx` away: it runs in any ONNX runtime.")]
    prior = record.prior_sentence()
    if prior:
        lines.append(prior)
    if record.time_limited_networks:
        lines.append(f"Training reached the {training.TRAIN_SECONDS} s limit before early stopping for "
                     f"{service.plural(record.time_limited_networks, 'network')}; each kept its best epoch "
                     "so far.")
    return "\n\n".join(lines)


def build(models: OwnModels, demo: gr.Blocks, delete_after_minutes: int) -> None:
    limits = training.TRAIN_LIMITS
    gr.Markdown(
        "The shipped model knows one university. Train one on your own cohort: a CSV (comma, semicolon or tab "
        "separated) with one row per student and one column per semester: named by number (`1st`, `2nd`, ... or "
        "`sem1`, ...) or listed below in order (`G1, G2, G3`). Say its grade scale, and the column that groups "
        "students (a college, a school: integer or text codes; `none` if there is none). The demo trains it, "
        "exports it to ONNX, verifies the export against torch, and "
        "serves it below in both runtimes **to this page only**; the shipped model stays as it is for everyone "
        "else.\n\n"
        f"Limits: at most {limits.bytes // 1024} KB, {limits.rows:,} students, {training.MAX_SEMESTERS} semesters "
        f"and {limits.columns} columns; at least {MIN_STUDENTS} students; training stops after "
        f"{training.TRAIN_SECONDS} "
        f"seconds. One training runs at a time and {visitors.WAITING_TRAININGS} may wait (one per page); when the "
        "line is full you are asked to try again later. Your file and your model are deleted when you close this "
        f"page, even while the training runs (or after {visitors.IDLE_SECONDS // 60} idle minutes); Gradio deletes "
        f"its own copies of the upload and the downloads within {delete_after_minutes} minutes.")
    with gr.Row():
        with gr.Column():
            upload = gr.File(label="your cohort CSV", file_types=[".csv"], elem_id="train-file", height=120)
            kept_once_chosen(upload)
            shipped_data_button(upload, "No file at hand? Take the shipped data set (trains the shipped model again)")
        with gr.Column():
            scale = gr.Dropdown(list(SCALES), value=SCALES[0], allow_custom_value=True, label="grade scale (LOW-HIGH)",
                                elem_id="train-scale")
            # Values set, so API callers may leave these out (middleware.ValueCount fills in the defaults).
            group = gr.Textbox("", label="group column (blank: College Code if present; none: no group)",
                               elem_id="train-group", max_lines=1)
            semesters = gr.Textbox("", label="semester columns in order (blank: found by their numbers)",
                                   placeholder="G1, G2, G3", elem_id="train-semesters", max_lines=1)
        button = gr.Button("Train, export and verify", variant="primary", elem_id="train")
    summary = gr.Markdown(label="summary", elem_id="train-summary")
    errors = gr.Dataframe(headers=training.ERROR_COLUMNS, label="error on held-out students (lower is better)",
                          elem_id="train-errors", visible=False, wrap=True)
    # No height: with files in it, Gradio's height is the box's maximum, and 140 pixels showed two of
    # the three files (the third only by scrolling inside the box, which nothing on a phone shows).
    downloads = gr.File(label="model.onnx, its parity report and model card", file_count="multiple",
                        elem_id="train-downloads")
    gr.Markdown("### Try your model")
    with gr.Row():
        grades = gr.Textbox(label="grades in your semesters' order, comma-separated (blank for missing)",
                            elem_id="own-grades", max_lines=1)
        college = gr.Textbox(label="group (college code, school...)", elem_id="own-college", max_lines=1)
        predict_button = gr.Button("Predict with your model", elem_id="own-predict")
    with gr.Row():
        answers = [gr.Textbox(label="torch", elem_id="own-torch", interactive=False, min_width=80),
                   gr.Textbox(label="onnxruntime", elem_id="own-onnx", interactive=False, min_width=80),
                   gr.Textbox(label="torch - onnxruntime", elem_id="own-diff", interactive=False, min_width=80)]
    details = gr.Markdown(label="answer", elem_id="own-details")

    def page_train(cohort_csv, scale, group, semesters, request: gr.Request,
                   progress=gr.Progress()):  # noqa: B008 (Gradio's idiom)
        return train(models, cohort_csv, request.session_hash, lambda share, what: progress(share, desc=what),
                     request, scale, group, semesters)

    def page_predict_own(grades_csv: str, college_code: str, request: gr.Request):
        return predict_own(models, grades_csv, college_code, request.session_hash, request)

    outputs = [summary, errors, downloads]
    # Session-bound endpoints: callable by a client that keeps its session (gradio_client does),
    # but not listed on the API page or as MCP tools, where a stateless caller would find them.
    # Every training request gets a worker at once (no concurrency limit here): OwnModels.train
    # refuses it at once when the line is full, so trainings never wait in the queue that the
    # predictions share; torch.export is safe because OwnModels runs one training at a time.
    # A new training clears what the last one left, its model's answers too: after a failure or a new
    # model, no answer on the page is from a model that is not the one served now.
    button.click(lambda: ["", gr.Dataframe(visible=False), None, "", "", "", ""], None, [*outputs, *answers, details],
                 queue=False, api_visibility="private").then(
        page_train, [upload, scale, group, semesters], outputs, api_name="train_own", api_visibility="undocumented",
        concurrency_limit=None,
        concurrency_id="train").success(
        lambda: gr.Dataframe(visible=True), None, errors, queue=False, api_visibility="private")
    predict_button.click(page_predict_own, [grades, college], [*answers, details], api_name="predict_own",
                         api_visibility="undocumented", **AS_SENT)

    def page_closed(request: gr.Request):  # its model, its upload and its training (waiting or running) go
        models.discard(request.session_hash)

    demo.unload(page_closed)
