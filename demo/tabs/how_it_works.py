"""The How it works tab: the textbook recurrence, the shipped cell's matrices, the hidden state
of the student asked in the Student tab, and the vanishing gradient as `cgpa lesson` measured it."""
from __future__ import annotations

from pathlib import Path

import gradio as gr

from cgpa_rnn.demo import inside, service

# `cgpa lesson`'s full run, generated into docs/ (docs/lesson.md); absent from a plain install.
LESSON_FIGURE = Path(__file__).resolve().parents[2] / "docs" / "lesson_gradients.png"


def build(backends: service.Backends, hidden_view: gr.HTML) -> None:
    record = backends.torch.record
    gr.Markdown(
        f"The shipped model is an ensemble of {record.config.model.ensemble} `{record.cell}` networks; each reads a "
        "student's semesters one at a time. The textbook recurrence, as `model/network.py` writes it: the "
        "hidden state after semester t, and what is read out from it,\n\n"
        "    h_t = tanh(x_t W_xh + h_(t-1) W_hh + b_h)\n"
        "    y_t = h_t W_hy + b_y\n\n"
        "`x_t` is what step t reads (the grade, its deviation from the group's mean, a missing flag and "
        "which semester it is); `y_t` is the network's correction to the prior and the interval's two "
        "gaps. The prediction is the prior (the group's mean of the next semester plus the student's "
        "smoothed deviation, damped) plus that correction: the Student tab shows the split for each "
        "answer.")
    with gr.Accordion("The three weight matrices (first member of the ensemble)", open=True):
        gr.HTML("".join(inside.cell_matrices(backends)), elem_id="matrices")
    gr.Markdown("### The hidden state of the student you asked\nAsk in the Student tab; the state after each "
                "semester the network read appears here, one row per semester.")
    hidden_view.render()
    gr.Markdown("### The vanishing gradient, measured\n`cgpa lesson` trains a vanilla RNN, this Elman cell, an "
                "LSTM and a GRU to remember the first of 50 symbols and measures how much of the loss's gradient "
                "reaches each earlier step (docs/lesson.md has the table and what it shows).")
    if LESSON_FIGURE.is_file():
        # Full screen on a phone, where the figure's legends are small at the page's width.
        gr.Image(str(LESSON_FIGURE), show_label=False, elem_id="lesson-figure", buttons=["fullscreen"],
                 interactive=False)
    else:
        gr.Markdown("(The figure ships with the repository's docs/; run `cgpa lesson --out DIR` to make it.)")
