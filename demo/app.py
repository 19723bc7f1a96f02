"""The Gradio demo: the page assembled from its tabs (demo/tabs/), and the one way it is served.

Layout only: each tab's module holds its handlers, which call demo.service (one student, a
cohort) and demo.visitors (a visitor's own model).
"""
from __future__ import annotations

import contextlib
import gc
import logging
import os
import sys
import weakref
from pathlib import Path

import gradio as gr
from starlette.middleware import Middleware

from cgpa_rnn.data import SHIPPED_DATA
from cgpa_rnn.demo import environment, gradio_compat, service, training
from cgpa_rnn.demo.fairness import FairShare, client_of
from cgpa_rnn.demo.middleware import GROWN_ENDPOINTS, BodyLimit, ClosedRoutes, ReprFreeErrors, ValueCount
from cgpa_rnn.demo.retention import Janitor, log
from cgpa_rnn.demo.tabs import about, cohort, how_it_works, own_model, student
from cgpa_rnn.demo.visitors import OwnModels
from cgpa_rnn.errors import UserError
from cgpa_rnn.processes import stop_cleanly_on_sigterm

# A request is CPU work (a cohort, a prediction): running more at once than there are cores
# only adds memory. A burst beyond the queue gets Gradio's "busy" answer instead of piling up;
# trainings never wait in it (demo/visitors.py keeps their own short line).
CONCURRENCY = os.cpu_count() or 2
QUEUE_SIZE = 64
# The queue tells waiting visitors their place on a timer (seconds) instead of after every job:
# after each job Gradio would send every waiting visitor a message (40 at once: ~800 messages,
# each waking its stream), for answers that come within milliseconds anyway.
STATUS_UPDATE_SECONDS = 1
# Gradio keeps each session's page state (every component's settings and last value: the grades asked,
# the scored table) in memory until this many newer sessions have come. The pages do not need it between
# calls (no gr.State; a visitor's model is kept by demo/visitors.py): a session whose state went has it
# rebuilt on its next call. Each session's state is walked by every full pass of the garbage collector:
# Gradio's default, 10,000 sessions, holds gigabytes and makes that pass take seconds (docs/hosting.md
# gives the figures measured); 200 is over three times the queue.
SESSIONS_KEPT = 200
# Gradio deletes uploads and its copies of results: checked every 5 minutes, older than 15.
DELETE_CACHE = (300, 900)
MAX_FILE_SIZE = f"{service.UPLOAD_LIMITS.bytes // 1024}kb"  # Gradio refuses larger uploads before they land

# Each app's visitors' models, for launch to start their clean-up (kept beside the app, not on it).
_OWN_MODELS: weakref.WeakKeyDictionary[gr.Blocks, OwnModels] = weakref.WeakKeyDictionary()


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
    minutes = DELETE_CACHE[1] // 60
    gradio_compat.cache_in(environment.folders().gradio)  # before the Blocks, which reads where its cache goes
    with gr.Blocks(title="cgpa-rnn: next-semester grade forecaster", delete_cache=DELETE_CACHE) as demo:
        synthetic = ("**This model was trained on a SYNTHETIC cohort: generated students, not real ones.**\n\n"
                     if backends.torch.record.synthetic else "")
        cell = backends.torch.record.cell
        gr.Markdown(f"# cgpa-rnn: next-semester grade forecaster\n{synthetic}The `{cell}` recurrent network, run in "
                    "**torch** and in **onnxruntime** side by side.")
        # Short tab names: all five fit a phone's width without an overflow menu.
        # Filled by the Student tab's answers, shown in the How it works tab.
        hidden_view = gr.HTML(label="hidden_states", elem_id="hidden-states", render=False)
        with gr.Tab("Student"):
            student.build(backends, demo, hidden_view)
        with gr.Tab("Cohort"):
            cohort.build(backends, minutes)
        with gr.Tab("Your model"):
            _OWN_MODELS[demo] = OwnModels()
            own_model.build(_OWN_MODELS[demo], demo, minutes)
        with gr.Tab("How it works"):
            how_it_works.build(backends, hidden_view)
        with gr.Tab("About"):
            about.build(backends)
    return demo


def serving(demo: gr.Blocks):
    """The server's lifespan: only the marked MCP tools are served (gradio_compat), and visitors'
    models, scored files and unclaimed uploads are cleaned up while it runs."""
    tools_only = gradio_compat.marked_tools_only(demo)

    @contextlib.asynccontextmanager
    async def lifespan(app):
        models = _OWN_MODELS.get(demo)
        janitor = Janitor(models).start() if models is not None else None
        try:
            async with tools_only(app):
                yield
        finally:
            if janitor is not None:
                janitor.stop()

    return lifespan


class OneLineMcpRefusals(logging.Filter):
    """The MCP library logs what it refuses with the request's values: a request or notification it
    cannot validate on the root logger, with the whole validation error (about 90 lines for a 37-byte
    call), and a call of an unknown tool by name. Each becomes one line of ours, as every refusal is
    logged, the values left out. Installed on the two loggers those come from (a logger's filter sees
    only its own records)."""

    LOGGERS = ("", "mcp.server.lowlevel.server")
    REFUSED = {("Failed to validate request", ""): "an MCP request the protocol does not allow",
               ("Failed to validate notification", ""): "an MCP notification the protocol does not allow",
               ("Tool '", "not listed, no validation will be performed"): "an MCP call of a tool it does not have"}

    def filter(self, record: logging.LogRecord) -> bool:
        message = str(record.msg)
        for (start, end), what in self.REFUSED.items():
            if message.startswith(start) and message.endswith(end):
                log(f"refused {what} (its values are not logged)")
                return False
        return True

    @classmethod
    def install(cls) -> None:
        for name in cls.LOGGERS:
            logger = logging.getLogger(name)
            if not any(isinstance(f, cls) for f in logger.filters):
                logger.addFilter(cls())


def launch(demo: gr.Blocks, server_name: str | None = None, port: int | None = None, mcp: bool | None = None,
           **options):
    """The one way the app is served (python -m demo, cgpa demo, app.py, the tests); unset
    values come from GRADIO_SERVER_NAME / GRADIO_SERVER_PORT / GRADIO_MCP_SERVER, as a Space
    sets them. With `mcp`, the public endpoints marked gr.mcp.tool() are also MCP tools
    (/gradio_api/mcp/; needs the [mcp] extra)."""
    stop_cleanly_on_sigterm()  # a server stopped by SIGTERM removes its folder too
    removed = environment.sweep_stopped_servers()
    if removed:
        log(f"removed {len(removed)} folder(s) left by demo servers that stopped")
    gradio_compat.quiet_monitoring()  # before the queue is made, which reads it
    # api_open=False: a queued function is not also callable around the queue (/gradio_api/run/<name>), past
    # its concurrency limit and every client's share of the queue; the page's unqueued events still are.
    demo.queue(default_concurrency_limit=CONCURRENCY, max_size=QUEUE_SIZE, status_update_rate=STATUS_UPDATE_SECONDS,
               api_open=False)
    gradio_compat.check(demo)
    OneLineMcpRefusals.install()
    # What was loaded so far (torch, Gradio, the models) lives as long as the server. Frozen, it is left
    # out of the collector's full passes, which otherwise walk it all whenever enough new objects pile up
    # (new sessions' state does): a pause of every request (docs/hosting.md gives the figures measured).
    gc.collect()
    gc.freeze()
    return demo.launch(server_name=server_name, server_port=port, footer_links=["api"], run_history=False,
                       max_file_size=MAX_FILE_SIZE, mcp_server=mcp, css=gradio_compat.PAGE_CSS,
                       state_session_capacity=SESSIONS_KEPT,
                       app_kwargs={"middleware": [
                           Middleware(BodyLimit),
                           Middleware(FairShare, waiting=gradio_compat.waiting_in_queue(demo, client_of)),
                           Middleware(ClosedRoutes),
                           Middleware(ValueCount, endpoints=gradio_compat.endpoint_parameters(demo, GROWN_ENDPOINTS)),
                           Middleware(ReprFreeErrors)],
                           "lifespan": serving(demo)},
                       # The shipped-data button's file and the lesson's figure, wherever they live.
                       allowed_paths=[str(SHIPPED_DATA), str(how_it_works.LESSON_FIGURE)],
                       **options)


def main(run: str | Path | None = None, port: int = 7860, rebuild: bool = False, host: str = "127.0.0.1",
         mcp: bool | None = None) -> None:
    """`cgpa demo` / `python -m demo`: serve a run, refusing one that cannot be served."""
    run = Path(run) if run else service.DEFAULT_RUN
    if rebuild:
        training.rebuild(run)
    backends = service.load_backends(run)  # a UserError here is one line from the CLI
    try:
        launch(build_demo(backends), server_name=host, port=port, mcp=mcp)
    except OSError as error:  # the port is not ours to use
        raise UserError(f"--port {port}: cannot serve on it ({error.strerror or error})") from None
