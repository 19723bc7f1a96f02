"""Hugging Face Space entry point: serves the shipped model from a plain checkout."""
from cgpa_rnn.demo.app import build_demo, launch

demo = build_demo()

if __name__ == "__main__":
    launch(demo)
