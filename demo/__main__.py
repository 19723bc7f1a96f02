"""`python -m demo [DIR] [--port N] [--rebuild]`: the same command as `cgpa demo`."""
import sys

from cgpa_rnn.cli import main

sys.exit(main(["demo", *sys.argv[1:]]))
