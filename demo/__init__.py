"""The Gradio demo: demo.app assembles the page from demo/tabs/, whose handlers call
demo.service (one student, a cohort) and demo.visitors (a visitor's own model)."""
from cgpa_rnn.demo import environment  # noqa: F401 (first: Gradio's settings before Gradio is imported)
