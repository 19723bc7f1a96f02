"""`python -m demo [DIR] [--port N] [--rebuild]`: the same command as `cgpa demo`
(GRADIO_MCP_SERVER=True also serves the public endpoints as MCP tools; see demo/app.py)."""
import sys

from cgpa_rnn.cli import main

sys.exit(main(["demo", *sys.argv[1:]]))
