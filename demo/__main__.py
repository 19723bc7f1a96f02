"""`python -m demo [DIR] [--port N] [--rebuild]`: serve the demo on 127.0.0.1."""
import argparse

from demo.app import main

parser = argparse.ArgumentParser(prog="python -m demo", description=__doc__)
parser.add_argument("run", nargs="?", help="run directory (default: the shipped model in model/default)")
parser.add_argument("--port", type=int, default=7860)
parser.add_argument("--rebuild", action="store_true", help="train, export and verify first")
arguments = parser.parse_args()
main(arguments.run, port=arguments.port, rebuild=arguments.rebuild)
