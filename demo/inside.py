"""What the demo shows of the network's inside, without any UI: the why of a student's forecast
as a chart, the hidden state it read, and the shipped cell's weight matrices (demo/svg.py draws them)."""
from __future__ import annotations

import numpy as np

from cgpa_rnn.demo import svg
from cgpa_rnn.demo.service import Backends, StudentResult


def why_chart(backends: Backends, result: StudentResult) -> str:
    """The why as a small chart: the prior, the network's correction, the prediction."""
    return svg.why_chart(result.why, backends.scale.low, backends.scale.high, result.why_sentence)


def hidden_states(backends: Backends, result: StudentResult) -> str:
    """The first member's hidden state after each semester it read, as a heat map."""
    states = np.asarray(result.why.hidden)[:, 0, :]
    units = [str(u + 1) for u in range(states.shape[1])]
    return svg.heat_map(states, result.why.semesters_read, units, "hidden state h_t after each semester read "
                        "(rows), one column per hidden unit, first member of the ensemble")


# The gates in the order torch stacks their rows (weight_ih_l0 is [gates x hidden, inputs]).
TORCH_GATES = {"rnn": ("h",), "gru": ("r", "z", "n"), "lstm": ("i", "f", "g", "o")}


def cell_matrices(backends: Backends) -> list[str]:
    """The shipped network's weight matrices (first member of the ensemble) as heat maps."""
    recurrent = backends.torch.model.recurrent
    inputs = ["grade", "deviation", "missing"] + [f"at {name}" for name in backends.semester_names]
    hidden = int(backends.torch.model.config.hidden)
    units = [str(u + 1) for u in range(hidden)]
    heads = ["median", "low gap", "high gap"]
    if hasattr(recurrent, "W_xh"):  # the Elman cell's own three matrices
        matrices = [(recurrent.W_xh[0], inputs, units, "W_xh: input to hidden (rows: what each step reads)"),
                    (recurrent.W_hh[0], units, units, "W_hh: hidden to hidden (the recurrence)")]
    else:  # nn.RNN / GRU / LSTM: torch's [gates x hidden, inputs] layouts, transposed to read like W_xh
        gates = [f"{gate}{u}" for gate in TORCH_GATES[backends.torch.record.cell] for u in units]
        matrices = [(recurrent.weight_ih_l0[0].T, inputs, gates, f"{backends.torch.record.cell}: input to hidden"),
                    (recurrent.weight_hh_l0[0].T, units, gates, f"{backends.torch.record.cell}: hidden to hidden")]
    matrices.append((recurrent.W_hy[0].T, heads, units, "W_hy: hidden to output (median correction, interval gaps)"))
    return [svg.heat_map(matrix.detach().numpy(), rows, columns, title) for matrix, rows, columns, title in matrices]
