"""Every place the demo relies on Gradio beyond its documented API, behind one door.

Gradio is pinned (pyproject.toml), and what this module relies on is checked twice: by
`problems()`, which `check()` runs before the server starts (a Gradio that moved any of it
stops the server with a sentence naming what moved, instead of serving with a patch that
quietly stopped working) and tests/test_gradio_compat.py runs on every install; and by the
patches themselves, which fail closed: no MCP tool is offered when the tool table is not
where it was, a call in a shape this module does not know is refused, not passed through.

The reliances, each used by one caller:
- Gradio's routes and the body of a queued call (`{"data": [...], "fn_index": n}`):
  demo.middleware and demo.fairness police them.
- The MCP server's table of tools (`tool_to_endpoint`) and `gr.mcp.tool()`'s mark: only the
  marked functions are tools (`marked_tools_only`; Gradio has no switch for it, see there).
- The queue's events per client (`waiting_in_queue`), for each client's share.
- A handler's signature set by hand (`describe_parameters`, with CPython's private
  `__validate_parameters__`) and `gr.Request` passed among `*values` (`split_request`).
- The page's own requests carry `x-gradio-user: app` (`from_page`).
- Two undocumented settings of the queue's monitoring (`quiet_monitoring`).
- The sessions' state kept in memory (`sessions_held`, read by tests only).
- Gradio's markup, which the page's CSS styles (`PAGE_CSS`).
- Modules that read GRADIO_TEMP_DIR once, when imported (`cache_in`): MCP's copies of files
  sent as data: URLs went to /tmp/gradio, readable by all, once the server's folder was made at
  build time rather than at import.
"""
from __future__ import annotations

import contextlib
import importlib
import inspect
import os
import re
from pathlib import Path

import gradio as gr
from gradio import mcp as gradio_mcp
from gradio import queueing

from cgpa_rnn.errors import UserError

TESTED_VERSION = "6.31.0"

# Gradio's routes this demo polices. The page's unqueued events all post to RUN_PATH.
QUEUE_PATH = "/gradio_api/queue/join"
RUN_PATH = "/gradio_api/run/predict"
CALL_PATH = re.compile(r"/gradio_api/call/(v2/)?[^/]+/?")  # a call by name (its result is a GET below it)
UPLOAD_PATH = "/gradio_api/upload"
MCP_PATH = "/gradio_api/mcp"
# Routes this demo does not offer: a deep link writes a session's components (a scored table of
# students) to disk outside any clean-up; the run history page is off anyway; MCP's older SSE
# transport answers each message at once and runs it later, out of any client's share (the
# streamable HTTP one at MCP_PATH is served).
CLOSED_PATHS = ("/gradio_api/deep_link", "/gradio_api/runs", f"{MCP_PATH}/sse", f"{MCP_PATH}/messages")
PAGE_HEADER = ("x-gradio-user", "app")
# After every event Gradio rebuilds a pandas summary of recent events for a monitoring dashboard this
# demo never turns on (docs/hosting.md gives the cost measured). Recomputed never, one event kept.
UNUSED_MONITORING = {"GRADIO_ANALYTICS_CACHE_FREQUENCY": str(2 ** 62), "GRADIO_ANALYTICS_MAX_EVENTS": "1"}

# The page's CSS. It reaches into Gradio's markup (its class names and element nesting), so it lives
# here; the browser tests (tests/test_browser.py) check what it is for at a phone's width. Tables
# readable on a phone: headers wrap between words (never inside one), wide tables scroll.
PAGE_CSS = """
#cohort-table th, #train-errors th { min-width: min-content !important; max-width: none !important; }
#cohort-table th span, #train-errors th span { word-break: normal !important; overflow-wrap: normal !important; }
.model-card table { display: block; overflow-x: auto; }
.model-card th, .model-card td { white-space: nowrap; }
/* Five tab names in a phone's width, none behind an overflow menu: Gradio decides what overflows by
   measuring a hidden copy of the tab buttons, so the copy is narrowed too. */
@media (max-width: 480px) {
  .tab-wrapper button { padding-left: 6px !important; padding-right: 6px !important; font-size: 13px !important; }
}
/* A phone fits two grade fields a row: four left no room for a field's message ("expected a grade..."). */
@media (max-width: 480px) { #grade-row .form > * { min-width: calc(50% - 8px) !important; } }
"""


class GradioChanged(UserError):
    """This Gradio does not have what the demo relies on; the message says what moved (one line
    from `cgpa demo`, as any mistake its user can mend)."""


def problems(demo: gr.Blocks | None = None) -> list[str]:
    """What this module relies on and this Gradio lacks (empty when all is where it was); with a
    queued `demo`, its queue is checked too."""
    found = []
    marked = gr.mcp.tool()(lambda: None)
    if getattr(marked, "_mcp_type", None) != "tool":
        found.append("gr.mcp.tool() no longer marks a function with _mcp_type")
    if "self.tool_to_endpoint" not in inspect.getsource(gradio_mcp.GradioMCPServer):
        found.append("the MCP server no longer keeps its tools in tool_to_endpoint")
    source = inspect.getsource(queueing)
    found += [f"the queue no longer reads {name}" for name in UNUSED_MONITORING if name not in source]
    if "__validate_parameters__" not in inspect.signature(inspect.Signature).parameters:
        found.append("inspect.Signature no longer takes __validate_parameters__")
    if demo is not None:
        queues = getattr(getattr(demo, "_queue", None), "event_queue_per_concurrency_id", None)
        if not isinstance(queues, dict):
            found.append("the queue no longer keeps its events in event_queue_per_concurrency_id")
    return found


def check(demo: gr.Blocks) -> None:
    """Refuse to serve on a Gradio that moved what this module relies on."""
    found = problems(demo)
    if found:
        raise GradioChanged(f"Gradio {gr.__version__} differs from {TESTED_VERSION}, which this demo was tested "
                            f"with: {'; '.join(found)}. Install gradio=={TESTED_VERSION}.")


# Modules holding the cache folder as read when they were imported (routes.py imports route_utils').
CACHE_HOLDERS = ("gradio.mcp", "gradio.route_utils", "gradio.routes", "gradio.screen_recording_utils")


def cache_in(folder: Path) -> None:
    """Every copy Gradio makes goes to `folder`: GRADIO_TEMP_DIR for what reads it when used, and the
    modules that read it when imported (before the server's folder existed) are told too."""
    os.environ["GRADIO_TEMP_DIR"] = str(folder)
    for name in CACHE_HOLDERS:
        module = importlib.import_module(name)
        if not hasattr(module, "DEFAULT_TEMP_DIR"):  # moved: refuse rather than write elsewhere
            raise GradioChanged(f"{name} no longer keeps DEFAULT_TEMP_DIR; install gradio=={TESTED_VERSION}")
        module.DEFAULT_TEMP_DIR = str(folder)


def quiet_monitoring() -> None:
    for name, value in UNUSED_MONITORING.items():
        os.environ.setdefault(name, value)  # whoever runs the server may still set them


def marked_tools_only(demo: gr.Blocks):
    """The server's lifespan: before the first request, Gradio's MCP server (when on) keeps as
    tools only the endpoints whose functions are marked gr.mcp.tool(). Gradio makes every public
    endpoint a tool, and no switch keeps a public one out (its maintainers: hide it from the API
    page, gradio-app/gradio#11463); /predict stays public for clients but answers with the page's
    texts. Out of the table of tools, an endpoint is in none of Gradio's MCP answers (the tool
    list, the schema at /gradio_api/mcp/schema, tool calls). A server whose table is not there
    does not start."""

    @contextlib.asynccontextmanager
    async def lifespan(app):
        server = getattr(demo, "mcp_server_obj", None)
        if server is not None:
            table = getattr(server, "tool_to_endpoint", None)
            if not isinstance(table, dict):
                raise GradioChanged("Gradio's MCP server has no table of tools to keep to the marked ones")
            marked = {f"/{fn.api_name}" for fn in demo.fns.values() if getattr(fn.fn, "_mcp_type", None) == "tool"}
            server.tool_to_endpoint = {name: endpoint for name, endpoint in table.items() if endpoint in marked}
        yield

    return lifespan


def waiting_in_queue(demo: gr.Blocks, client_of):
    """client -> how many of its calls wait in Gradio's queue (read, never changed)."""

    def waiting(client: str) -> int:
        queues = list(demo._queue.event_queue_per_concurrency_id.values())
        return sum(1 for queue in queues for event in list(queue.queue) if client_of(event.request.scope) == client)

    return waiting


def endpoint_parameters(demo: gr.Blocks, grown: tuple[str, ...]) -> dict:
    """For each named endpoint clients may call: (its name, its parameter names, and for the
    `grown` endpoints the defaults of those that have one), keyed both by the paths that call
    it by name and by its fn_index (the queue's)."""
    endpoints = {}
    named = demo.get_api_info(all_endpoints=True)["named_endpoints"]
    for index, fn in demo.fns.items():
        info = named.get(f"/{fn.api_name}")
        if info is None:
            continue
        names = [p.get("parameter_name") or p["label"] for p in info["parameters"]]
        defaults = [(p["parameter_default"],) if p.get("parameter_has_default") and fn.api_name in grown else ()
                    for p in info["parameters"]]
        for route in ("call", "run"):
            endpoints[f"/gradio_api/{route}/{fn.api_name}"] = (fn.api_name, names, defaults)
        endpoints[index] = (fn.api_name, names, defaults)
    return endpoints


def call_of(path: str, payload) -> tuple[str | int, list]:
    """Which endpoint a call's JSON body names (its path, or the page's fn_index on every path)
    and its values; ValueError for a body in any other shape."""
    if not isinstance(payload, dict) or not isinstance(payload.get("data"), list):
        raise ValueError('expected a JSON object with a list of values under "data"')
    return payload.get("fn_index", path), payload["data"]


def describe_parameters(fn, parameters: list[inspect.Parameter], returns=None):
    """Give `fn` (which takes *values) the signature Gradio reads to describe its endpoint, plus
    a last parameter for Gradio's request. Not validated: Python would refuse a required field
    after optional ones, but only Gradio reads this signature."""
    request = inspect.Parameter("request", inspect.Parameter.POSITIONAL_OR_KEYWORD, default=None,
                                annotation=gr.Request)
    fn.__signature__ = inspect.Signature(parameters + [request], return_annotation=returns or inspect.Signature.empty,
                                         __validate_parameters__=False)
    fn.__annotations__ = ({p.name: p.annotation for p in parameters} | {"request": gr.Request}
                          | ({"return": returns} if returns else {}))
    return fn


def split_request(values: tuple) -> tuple[tuple, gr.Request | None]:
    """The field values and Gradio's request of a `describe_parameters` handler's arguments
    (Gradio passes the request among the values)."""
    requests = [v for v in values if isinstance(v, gr.Request)]
    return tuple(v for v in values if not isinstance(v, gr.Request)), (requests[0] if requests else None)


def from_page(request: gr.Request | None) -> bool:
    """Whether the call comes from the demo's own page (which renders messages as HTML)."""
    return request is not None and request.headers.get(PAGE_HEADER[0]) == PAGE_HEADER[1]


def sessions_held(demo: gr.Blocks) -> dict:
    """session -> the state Gradio keeps for it in memory (for tests of what the server keeps)."""
    return demo.state_holder.session_data
