"""What the tabs share: how a refused input is told (to the page, to API clients, to the
log), named API parameters, and the shipped-data button."""
from __future__ import annotations

import html
import inspect
import re
import traceback
from pathlib import Path

import gradio as gr

from cgpa_rnn.data import SHIPPED_DATA
from cgpa_rnn.demo.gradio_compat import describe_parameters, from_page
from cgpa_rnn.demo.retention import UPLOADS, log

_QUOTED_OR_NUMBER = re.compile(r"'[^']*'|\"[^\"]*\"|\d+(?:[.,]\d+)*")
# For events whose fields are all text boxes, a dropdown, a checkbox, Markdown or JSON: the handler
# takes the values as sent and its return values go out as they are, as with gr.api endpoints
# (/predict_json). Gradio's own conversion of such fields is str() or nothing, each in a hop to a
# worker thread per field and per call (twelve for a prediction, its validator seven more): a third
# of a prediction's server CPU. Our readers (cgpa_rnn.values) take text and numbers alike.
AS_SENT = {"preprocess": False, "postprocess": False}


def failed(error: Exception, what: str) -> gr.Error:
    """A failure that is not the visitor's mistake (a bug) as the caller sees it: a sentence, never
    Gradio's empty {"error": null}; logged in one line, its type and where it happened, no values."""
    frames = traceback.extract_tb(error.__traceback__)
    where = f" at {Path(frames[-1].filename).name}:{frames[-1].lineno}" if frames else ""
    log(f"failed {what}: {type(error).__name__}{where}")
    return gr.Error(f"{what.capitalize()} failed on the server (an internal error, logged); nothing was kept. "
                    "Please try again later.", print_exception=False)


def refused(error: Exception, request: gr.Request | None, upload: str | Path | None = None) -> gr.Error:
    """A user mistake as the caller sees it (plain text for programs, escaped for the page),
    logged in one line with the upload's name and the reason, its quoted values and numbers
    masked: a message may quote a grade or a roll number, the log must not."""
    message = str(error)
    name = Path(upload).name if upload else None
    # The reason names the upload itself, as the caller sees it; the log line names it once, unmasked.
    unnamed = message[len(name):].lstrip(":, ") if name and message.startswith(name) else message
    reason = _QUOTED_OR_NUMBER.sub("#", unnamed)
    log(f"refused {name or 'a request'}: {reason}")
    # The page renders error messages as (sanitised) HTML; programs get the plain text.
    return gr.Error(html.escape(message, quote=False) if from_page(request) else message, print_exception=False)


def named(fn, names: list[str], returns=None, flag: str | None = None, required: tuple[str, ...] = ()):
    """Give a handler taking *values one named parameter per field (text, then an optional
    yes/no `flag` last), for the API page, clients and MCP tools; it gets Gradio's request among
    the values (`split_request` takes it out). A text field may be left out (blank) unless it is
    `required`: the API page and MCP tools then say so, and gradio_client refuses a call without it."""
    kinds = ({n: (str, inspect.Parameter.empty if n in required else "") for n in names}
             | ({flag: (bool, False)} if flag else {}))
    return describe_parameters(fn, [inspect.Parameter(n, inspect.Parameter.POSITIONAL_OR_KEYWORD, default=default,
                                                      annotation=kind) for n, (kind, default) in kinds.items()],
                               returns)


def kept_once_chosen(upload: gr.File) -> None:
    """A file the page uploads is claimed as soon as it is chosen, so it stays while its visitor fills in
    the rest of the form (an upload no call claims is deleted after a minute: retention.Uploads)."""
    upload.upload(UPLOADS.keep, upload, None, queue=False, api_visibility="private")


def shipped_data_button(upload: gr.File, text: str) -> gr.Button:
    """Puts the shipped data set into `upload`. A button, not gr.Examples: each gr.Examples
    costs every new session ~1 ms of Gradio's state."""
    button = gr.Button(text, size="sm", variant="secondary", elem_classes="shipped-data")
    button.click(lambda: str(SHIPPED_DATA), None, upload, queue=False, api_visibility="private")
    return button
