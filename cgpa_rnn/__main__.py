"""`python -m cgpa_rnn ...`: the `cgpa` command line."""
import sys

from cgpa_rnn.cli import main

sys.exit(main())
