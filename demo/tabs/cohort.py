"""The "Cohort" tab: a CSV of students scored by both runtimes, hindcasts of known semesters
with a predicted-vs-actual chart, the at-risk list (every student's final CGPA and chance of
ending below the line), and both as files to download."""
from __future__ import annotations

import gradio as gr
import pandas as pd

from cgpa_rnn.demo import service
from cgpa_rnn.demo.retention import UPLOADS
from cgpa_rnn.demo.tabs.common import failed, kept_once_chosen, refused, shipped_data_button
from cgpa_rnn.errors import UserError
from cgpa_rnn.values import parse_bool


def score(backends: service.Backends, cohort_csv: str | None, at_risk_below: float,
          hindcast_last_given, request: gr.Request | None = None
          ) -> tuple[str, pd.DataFrame | None, pd.DataFrame, pd.DataFrame, str, str]:
    """The summary, the predicted-vs-actual chart's data (None without hindcasts), the at-risk list, the
    scored table, the scored CSV and the at-risk list's CSV: plain values, for the page and for programs alike."""
    try:
        if cohort_csv is None:
            raise UserError("upload a CSV first")
        UPLOADS.claim(cohort_csv)
        scored, out, text = service.score_upload(backends, cohort_csv, at_risk_below,
                                                 parse_bool(hindcast_last_given, "hindcast_last_given"))
    except UserError as error:
        raise refused(error, request, cohort_csv) from None
    except Exception as error:
        raise failed(error, "scoring") from None
    at_risk = service.at_risk_table(scored)
    return (text, service.hindcast_frame(scored), at_risk, service.display_table(scored), str(out),
            str(service.write_at_risk(at_risk, out)))


def validate(backends: service.Backends, cohort_csv, at_risk_below, hindcast_last_given) -> list:
    try:
        backends.onnx.risk_line(at_risk_below)
        threshold_message = None
    except UserError as error:
        threshold_message = str(error)
    return [gr.validate(cohort_csv is not None, "upload a CSV first"),
            gr.validate(threshold_message is None, threshold_message or ""),
            gr.validate(True, "")]  # one verdict per input: the checkbox cannot be wrong


def chart_shown(points) -> gr.ScatterPlot:
    """The chart is shown only when the scoring produced hindcasts to draw."""
    return gr.ScatterPlot(visible=points is not None)


def build(backends: service.Backends, delete_after_minutes: int) -> None:
    limits = service.UPLOAD_LIMITS
    scale, at_risk = backends.scale, backends.scale.at_risk_line()
    group = f", {backends.groups.column}" if backends.groups.column else ""
    gr.Markdown(f"Upload a CSV (comma, semicolon or tab separated) with the model's semester columns "
                f"({', '.join(backends.semester_names)}: grades on the {scale} scale){group}. "
                f"At most {limits.bytes // 1024} KB, {limits.rows:,} rows and {limits.columns} columns. "
                "Each student's next semester is predicted; a student whose final semester is known is scored by "
                "**hindcast** instead (that semester predicted from the earlier ones, then compared with the known "
                "grade), so last year's class shows how close the model comes. The **at-risk list** gives every "
                "student's final CGPA (the rest of the degree forecast, or the actual one for a finished student) "
                "and the chance of ending below the line, most likely first. Rows that cannot be scored keep "
                "their reason in the `error` column. Uploads are student records: the server deletes them and the "
                f"scored file within {delete_after_minutes} minutes and keeps nothing else.")
    with gr.Row():
        with gr.Column():
            upload = gr.File(label="cohort CSV", file_types=[".csv"], elem_id="cohort-file", height=120)
            kept_once_chosen(upload)
            shipped_data_button(upload, "No file at hand? Take the data set the model was trained on")
        with gr.Column():
            threshold = gr.Number(value=at_risk, label=f"at risk below ({scale})",
                                  minimum=scale.low, maximum=scale.high, elem_id="threshold")
            hindcast_last_given = gr.Checkbox(label="hindcast every student's last known semester", elem_id="hide-last")
            button = gr.Button("Score cohort", variant="primary", elem_id="score")
    summary = gr.Markdown(label="summary", elem_id="cohort-summary")
    chart = gr.ScatterPlot(x="actual", y="predicted", color="interval", x_lim=[scale.low, scale.high],
                           y_lim=[scale.low, scale.high], label="hindcast: predicted against actual",
                           x_title="actual grade point", y_title="predicted", elem_id="hindcast-chart",
                           visible=False)
    at_risk_list = gr.Dataframe(label="at-risk list: forecasts (most likely below first), then the finished",
                                wrap=True, elem_id="at-risk-table")
    table = gr.Dataframe(label="scored students", wrap=True, elem_id="cohort-table")
    with gr.Row():
        download = gr.File(label="download the scored CSV", elem_id="cohort-download", height=120)
        at_risk_download = gr.File(label="download the at-risk list", elem_id="at-risk-download", height=120)

    @gr.mcp.tool()
    def page_score(cohort_csv, at_risk_below, hindcast_last_given, request: gr.Request):
        """Score a cohort CSV: every student's next-semester grade point average (SCALE) with its
        interval, from torch and onnxruntime, a hindcast of each known final semester, and the at-risk
        list: every student's final CGPA with its 80% interval and the probability of ending below
        at_risk_below (a finished student's actual CGPA instead), named by the file's ID column.

        Args:
            cohort_csv: a CSV file (comma, semicolon or tab separated), one row per student: grade columns SEMESTERS on the SCALE scale, blank when missing; GROUP; at most 2 MB and 5,000 rows; sent as a data: URL (data:text/csv;base64,...) or a public http(s) URL
            at_risk_below: the line (a grade point on the SCALE scale) whose risk is reported: the probability of a final CGPA below it; AT_RISK_BELOW is the model's default
            hindcast_last_given: true to predict every student's last known semester from the earlier ones and compare; false (the default) predicts the next semester, hindcasting only students whose final semester is known
        Returns:
            a summary in words (with the hindcast's mean absolute error), the predicted-vs-actual points, the at-risk list (student, status forecast or finished, final CGPA, low, high, probability below the line; forecasts first, most likely first), the scored table (with each later semester's forecast, the final CGPA and p_below), the scored CSV file and the at-risk list's CSV file
        """
        return score(backends, cohort_csv, at_risk_below, hindcast_last_given, request)

    groups = backends.groups
    group_text = (f"a {groups.column} column ({'text labels' if groups.text else 'integer codes'}: "
                  f"{', '.join(backends.college_choices()[:12])})" if groups.column else "no group column is needed")
    for name, value in (("AT_RISK_BELOW", f"{at_risk:g}"), ("SCALE", str(scale)), ("GROUP", group_text),
                        ("SEMESTERS", ", ".join(backends.semester_names))):
        page_score.__doc__ = page_score.__doc__.replace(name, value)  # the model's own terms

    page_score.__name__ = "score_cohort"  # the MCP tool's name
    outputs = [summary, chart, at_risk_list, table, download, at_risk_download]
    button.click(lambda: ["", None, None, None, None, None], None, outputs, queue=False, api_visibility="private").then(
        page_score, [upload, threshold, hindcast_last_given], outputs,
        validator=lambda *values: validate(backends, *values),
        api_name="predict_batch").success(
        chart_shown, chart, chart, queue=False, api_visibility="private")
