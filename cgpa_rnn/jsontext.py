"""JSON that comes back to us: a run folder's records (metrics.json, config.json...), the ONNX
file's metadata, a request's body. Each is read with a size and a depth limit, so a damaged or
hostile one ends in one sentence that names it, never in a RecursionError or minutes of parsing.
What this project writes is a few levels deep and at most a few megabytes."""
from __future__ import annotations

import json

from cgpa_rnn.errors import UserError

MAX_CHARS = 8 << 20
MAX_DEPTH = 32


class JsonError(UserError, ValueError):
    """JSON over the limits or not JSON; the message names where it was read."""


def bounded_loads(text: str | bytes, where: str, max_chars: int = MAX_CHARS, max_depth: int | None = MAX_DEPTH):
    """`max_depth=None` leaves the depth to json's own recursion limit: walking a large request body
    to count its depth costs ten times its parsing."""
    too_deep = (f"{where}: nested deeper than {max_depth} levels" if max_depth else f"{where}: nested deeper than "
                "JSON's parser goes") + " (not JSON this project writes)"
    if len(text) > max_chars:
        raise JsonError(f"{where}: {len(text):,} characters is over the {max_chars:,}-character limit for JSON")
    try:
        value = json.loads(text)
    except RecursionError:  # json's own parser stops where the interpreter's recursion limit is
        raise JsonError(too_deep) from None
    except ValueError as error:
        raise JsonError(f"{where}: not valid JSON ({error})") from None
    if max_depth is not None and _depth(value) > max_depth:
        raise JsonError(too_deep)
    return value


def _depth(value) -> int:
    """How many lists and objects deep `value` goes, without recursion."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        item, depth = stack.pop()
        children = item.values() if isinstance(item, dict) else item if isinstance(item, list) else None
        if children is not None:
            deepest = max(deepest, depth)
            stack.extend((child, depth + 1) for child in children)
    return deepest
