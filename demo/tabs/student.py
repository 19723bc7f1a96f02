"""The "Student" tab: one student's grades in, both runtimes' forecasts side by side, the
visitor's browser as a third runtime, and a chart drawn by the browser."""
from __future__ import annotations

import json
import re
from pathlib import Path

import gradio as gr
import numpy as np

from cgpa_rnn.demo import inside, service
from cgpa_rnn.demo.gradio_compat import split_request
from cgpa_rnn.demo.tabs.common import AS_SENT, failed, named, refused
from cgpa_rnn.errors import DataError, UserError
from cgpa_rnn.values import parse_bool

HERE = Path(__file__).resolve().parent.parent
BROWSER_JS, CHART_JS = HERE / "browser.js", HERE / "chart.js"
HINDCAST_FLAG = "hindcast_last_given"


def parameter_names(backends: service.Backends) -> list[str]:
    """The API's parameters: one per semester, the college, then the hindcast flag."""
    # Python names (Gradio builds a signature from them): "Fall 2024" -> semester_Fall_2024.
    return [re.sub(r"\W+", "_", f"semester_{name}").strip("_") for name in backends.semester_names] + \
        ["college", HINDCAST_FLAG]


def ask(backends: service.Backends, values: tuple) -> service.StudentResult:
    """The answer to a form's (or an API call's) values, refusing a call with the wrong number
    of values by naming the parameters expected."""
    names = parameter_names(backends)
    if len(values) != len(names):
        raise UserError(f"expected {len(names)} values ({', '.join(names)}), got {len(values)}")
    *grades, code, hindcast_last_given = values
    return service.predict_student(backends, grades, code, parse_bool(hindcast_last_given, HINDCAST_FLAG))


def question_record(backends: service.Backends, result: service.StudentResult) -> dict:
    """The exact question the server asked and its answer, for the browser: its runtime asks the
    same question, its chart draws the answer."""
    return {"grades": [None if np.isnan(g) else g for g in result.grades], "college": result.college,
            "semester": result.semester, "names": backends.semester_names, "prediction": result.onnx_prediction,
            "low": result.low, "high": result.high, "actual": result.actual, "level": f"{backends.interval_level:.0%}",
            "scale": backends.scale.to_json(),
            "path": [{"semester": s, "median": m, "low": lo, "high": hi} for s, m, lo, hi in
                     zip(result.ahead.semesters, result.ahead.median, result.ahead.low, result.ahead.high)]}


def side_by_side(backends: service.Backends, result: service.StudentResult) -> tuple[str, str, str, str]:
    """torch, onnxruntime, their difference and the answer in words, as the page shows them."""
    return (f"{result.torch_prediction:.2f}", f"{result.onnx_prediction:.2f}", f"{result.abs_diff:.1e}",
            service.student_answer(backends, result))


def predict(backends: service.Backends, values: tuple, request: gr.Request | None = None) -> tuple:
    """The page's outputs: both runtimes, their difference, the answer, the question asked, the why
    as a chart and the hidden states read (shown in the How it works tab)."""
    try:
        result = ask(backends, values)
    except UserError as error:
        raise refused(error, request) from None
    except Exception as error:
        raise failed(error, "prediction") from None
    return (*side_by_side(backends, result), question_record(backends, result), inside.why_chart(backends, result),
            inside.hidden_states(backends, result))


def predict_json(backends: service.Backends, values: tuple, request: gr.Request | None = None) -> dict:
    try:
        return service.result_record(backends, ask(backends, values))
    except UserError as error:
        raise refused(error, request) from None
    except Exception as error:
        raise failed(error, "prediction") from None


def validate(backends: service.Backends, values: tuple) -> list:
    """One verdict per field, shown at the field before the prediction runs."""
    *grades, code, hindcast_last_given = values
    try:  # read as the handler reads it: the string "false" is no hindcast
        hindcast, flag_message = parse_bool(hindcast_last_given, HINDCAST_FLAG), None
    except DataError as error:
        hindcast, flag_message = False, str(error)
    messages = service.field_errors(backends, grades, code, hindcast)
    return [gr.validate(message is None, message or "") for message in [*messages, flag_message]]


def browser_runtime(backends: service.Backends) -> str:
    """The JS event that runs the same model.onnx in the visitor's browser (demo/browser.js)."""
    config = json.dumps(service.browser_config(backends))
    return BROWSER_JS.read_text(encoding="utf-8").replace("__CONFIG__", config)


def build(backends: service.Backends, demo: gr.Blocks, hidden_view: gr.HTML) -> None:
    """The Student tab; `hidden_view` (rendered in the How it works tab) shows the hidden states read."""
    names = backends.semester_names
    gr.Markdown(f"Grade points on the {backends.scale} scale per semester; leave a semester blank if it is missing "
                "or not yet taken. "
                f"The model knows {backends.semesters} semesters. To see how close it would have been (a hindcast), "
                f"give all of them: it then predicts the {names[-1]} from the earlier ones; or tick the box to "
                "predict the last grade you gave from the ones before it.")
    with gr.Row(elem_id="grade-row"):
        grade_boxes = [gr.Textbox(label=backends.onnx.semester_label(t), elem_id=f"grade-{t + 1}", max_lines=1,
                                  min_width=80) for t in range(len(names))]
    with gr.Row():
        column = backends.groups.column
        college = gr.Dropdown(backends.college_choices(), value=None, allow_custom_value=True,
                              label=f"{column or 'group'} (pick one, or type any)", elem_id="college",
                              visible=column is not None)
        hindcast_last_given = gr.Checkbox(label="hindcast: predict the last grade given from the earlier ones",
                                elem_id="hide-last-grade")
        button = gr.Button("Predict", variant="primary", elem_id="predict")
    with gr.Row():
        torch_out = gr.Textbox(label="torch", elem_id="pred-torch", interactive=False, min_width=80)
        onnx_out = gr.Textbox(label="onnxruntime", elem_id="pred-onnx", interactive=False, min_width=80)
        diff_out = gr.Textbox(label="torch - onnxruntime", elem_id="abs-diff", interactive=False, min_width=80)
        browser_out = gr.Textbox(label="your browser (onnxruntime-web)", elem_id="pred-browser", interactive=False)
    details = gr.Markdown(label="answer", elem_id="details")
    chart = gr.HTML(elem_id="plot")  # drawn by the browser from the answer (demo/chart.js)
    why = gr.HTML(label="why", elem_id="why")  # the prior, the network's correction, the prediction (demo/svg.py)
    question = gr.JSON(label="question_and_answer", visible=False)
    outputs = [torch_out, onnx_out, diff_out, details, question, why, hidden_view]
    # The page starts on the first known college, chosen in the browser: a field's initial value on the
    # server is also its API default, and /predict would answer a caller who never gave a college.
    demo.load(None, None, college, js=f"() => {json.dumps(backends.college_choices()[0])}", api_visibility="private")

    # The page's endpoint returns the page's texts: public for clients, but not an MCP tool
    # (agents get /predict_json's record; demo.app keeps only functions marked gr.mcp.tool()).
    def page_predict(*values):
        return predict(backends, *split_request(values))

    @gr.mcp.tool()
    def api_predict_json(*values) -> dict:
        return predict_json(backends, *split_request(values))

    api_predict_json.__doc__ = tool_description(backends)
    api_predict_json.__name__ = "predict_student"  # the MCP tool's name
    parameters = parameter_names(backends)
    required = ("college",) if backends.groups.column else ()
    inputs = [*grade_boxes, college, hindcast_last_given]
    button.click(lambda: ["", "", "", "", None, "", "", "", ""], None, [*outputs, browser_out, chart], queue=False,
                 api_visibility="private").then(
        named(page_predict, parameters[:-1], flag=HINDCAST_FLAG, required=required), inputs, outputs,
        validator=lambda *values: validate(backends, values), api_name="predict", **AS_SENT).success(
        None, question, chart, js=CHART_JS.read_text(encoding="utf-8"), api_visibility="private").then(
        None, question, browser_out, js=browser_runtime(backends), api_visibility="private")
    gr.api(named(api_predict_json, parameters[:-1], dict, flag=HINDCAST_FLAG, required=required),
           api_name="predict_json")
    examples = service.examples(backends)
    if examples:
        gr.Examples(examples, [*grade_boxes, college],
                    label="students from the data: the last semester hidden, or given for a hindcast")


def tool_description(backends: service.Backends) -> str:
    """The docstring of /predict_json, which API pages and MCP clients show: what each input means."""
    known = ", ".join(backends.college_choices())
    scale, example = backends.scale, f"{backends.scale.low + 0.71 * (backends.scale.high - backends.scale.low):g}"
    semesters = "\n".join(
        f"    {parameter}: grade point of the {backends.onnx.semester_name(t)} on the {scale} scale, as text "
        f"(\"{example}\"); blank (\"\") when missing or not yet taken"
        for t, parameter in enumerate(parameter_names(backends)[:backends.semesters]))
    column = backends.groups.column
    group = (f"the student's {column}; the model knows {known}, and any other value uses its shared \"unknown\" slot"
             if column else "ignored: this model has no group column (send \"\")")
    return f"""One student's next-semester grade point average ({scale}), with its {backends.interval_level:.0%} prediction
interval, from the same recurrent network in torch and in onnxruntime.

The semester after the last one given is predicted. With the final semester given (or
{HINDCAST_FLAG} true), the last grade given is predicted from the earlier ones instead and
returned as hindcast_actual beside the prediction: how close the model would have been.

Args:
{semesters}
    college: {group}
    {HINDCAST_FLAG}: true to predict the last grade given from the earlier ones (a hindcast); false by default
Returns:
    prediction: a dict of plain numbers: semester (1-based) and semester_name predicted, prediction, low, high, interval_level, hindcast_actual (null unless a hindcast), backends (each runtime's prediction and latency_us), abs_diff, known_college, cumulative_average, scale, why (the prediction split: prior + correction = prediction, where prior = group_mean + the student's deviation carried over by damping; and a sentence saying so), trajectory (the rest of the degree from every grade given: semesters, median, low, high of each later semester with 80% intervals that widen with the horizon; final, final_low, final_high: the final CGPA; below and probability_below: the chance of ending below the scale's at-risk line; finished: true when the last semester is known and final is the actual CGPA; and a sentence), warning (null, or why the grades are unlike the model's training cohort)
"""
