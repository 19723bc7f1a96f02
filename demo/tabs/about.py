"""The "About" tab: the model card, as the run's files describe the served model."""
from __future__ import annotations

import gradio as gr

from cgpa_rnn.demo import service


def build(backends: service.Backends) -> None:
    gr.Markdown(service.model_card(backends.run), elem_classes="model-card")
