"""The lesson's files: its two CSVs, the figure and a page whose every sentence is chosen by comparing numbers.

The page states no result of its own: each sentence is picked by a comparison below (did a
cell beat chance, is its gradient at the farthest distance above a threshold, did clipping
ever act), so a run with another seed or length gets the sentences its numbers support.
"""
from __future__ import annotations

import csv
import io
import math
from pathlib import Path

from cgpa_rnn.model.figures import save_figure
from cgpa_rnn.model.lesson import CELLS, Lesson
from cgpa_rnn.rundir import RunDir

GRADIENTS, RESULTS, PAGE, FIGURE = "gradients.csv", "results.csv", "lesson.md", "gradients.png"
GATED = ("lstm", "gru")
VANILLA = ("rnn", "elman")
DISTANCES = (1, 10, 30)  # and T-1, the farthest: the table's columns
VANISHED = 1e-3  # gradient at T-1 over gradient at 0 below this: the first step hardly teaches anything
KEPT = 0.1  # above this: the first step's signal arrives at a tenth of the last step's or better
LEARNT = 0.9  # test accuracy
COLOURS = {"rnn": "tab:blue", "elman": "tab:cyan", "lstm": "tab:green", "gru": "tab:red"}
STAGE_NAMES = {("initial", "no"): "initial", ("trained", "no"): "trained", ("trained", "yes"): "trained, clipped"}


def number(value: float) -> str:
    """Two significant digits: 0.52, 0.0072, 5.5e-14 (the page's only number format for gradients)."""
    return f"{value:.2g}"


def _csv(rows: list[dict]) -> str:
    text = io.StringIO()
    writer = csv.DictWriter(text, fieldnames=list(rows[0]), lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)  # floats as repr: the page's numbers can be recomputed from the file exactly
    return text.getvalue()


class Numbers:
    """Look-ups into the lesson's rows: relative gradient per (cell, clipping, stage) and distance."""

    def __init__(self, lesson: Lesson):
        self.config, self.last = lesson.config, lesson.config.length - 1
        self.curves: dict[tuple, list[float]] = {}
        for row in lesson.gradients:
            key = (row["cell"], row["clipping"], row["stage"])
            self.curves.setdefault(key, []).append(row["grad_norm"])  # rows come in distance order: [k] is k
        self.results = {(row["cell"], row["clipping"]): row for row in lesson.results}
        self.chance = 1 / self.config.symbols
        # Beyond four standard errors of a guesser's accuracy on the test sequences: not luck.
        self.noise = 4 * math.sqrt(self.chance * (1 - self.chance) / self.config.test_batch)

    def relative(self, cell: str, k: int, stage: str = "trained", clipping: str = "no") -> float:
        curve = self.curves[(cell, clipping, stage)]
        return curve[k] / curve[0] if curve[0] > 0 else math.nan

    def accuracy(self, cell: str, clipping: str = "no") -> float:
        return self.results[(cell, clipping)]["test_accuracy"]

    def outcome(self, cell: str, clipping: str = "no") -> str:
        accuracy = self.accuracy(cell, clipping)
        if accuracy >= LEARNT:
            return "learnt"
        return "partly" if accuracy > self.chance + self.noise else "chance"

    def fate(self, ratio: float) -> str:
        return "vanished" if ratio < VANISHED else "kept" if ratio >= KEPT else "faded"


def plot(numbers: Numbers, run: RunDir, name: str) -> None:
    from matplotlib.figure import Figure  # the object API: no global pyplot state, safe across threads

    # Stacked, not side by side: each panel keeps the page's full width on a phone (600 px).
    figure = Figure(figsize=(6, 9))
    axes = figure.subplots(3, 1, sharex=True)
    titles = {"initial": "at initialisation (both trainings start here)", "trained": "trained, no clipping",
              "trained, clipped": f"trained with clipping (norm {numbers.config.max_norm:g})"}
    distances = range(numbers.config.length)
    for axis, ((stage, clipping), shown) in zip(axes, STAGE_NAMES.items()):
        shown_curves = {cell: [numbers.relative(cell, k, stage, clipping) for k in distances] for cell in CELLS}
        for cell, curve in shown_curves.items():
            label = cell if stage == "initial" else f"{cell}: accuracy {numbers.accuracy(cell, clipping):.2f}"
            axis.plot(distances, curve, color=COLOURS[cell], linewidth=2, linestyle="--" if cell == "elman" else "-",
                      label=label)
        _decade_ticks(axis, [ratio for curve in shown_curves.values() for ratio in curve])
        axis.set_title(titles[shown], fontsize=11)
        axis.set_ylabel("gradient / gradient at k=0")
        axis.grid(True, which="major", alpha=0.3)
        axis.legend(fontsize=8, loc="lower left")
    axes[-1].set_xlabel(f"distance k: steps before the last (the first step is k={numbers.last})")
    save_figure(figure, run, name)


def _decade_ticks(axis, ratios: list[float]) -> None:
    """A log axis labelled every 1, 2, 5, 10... decades: about six labels, whether the curves fall 10 decades or 140."""
    from matplotlib.ticker import FixedLocator, FuncFormatter, NullLocator

    shown = [r for r in ratios if r > 0 and math.isfinite(r)]  # a zero has no place on a log axis
    low, high = math.floor(math.log10(min(shown))), max(0, math.ceil(math.log10(max(shown))))
    stride = next(s for s in (1, 2, 5, 10, 20, 50, 100) if (high - low) / s <= 7)
    axis.set_yscale("log")
    axis.set_ylim(10.0 ** low / 2, 10.0 ** high * 2)
    axis.yaxis.set_major_locator(FixedLocator([10.0 ** e for e in range(high, low - 1, -1) if e % stride == 0]))
    axis.yaxis.set_minor_locator(NullLocator())
    axis.yaxis.set_major_formatter(FuncFormatter(lambda value, _: number(value)))  # 1e-14, as in the table


def _table(numbers: Numbers) -> list[str]:
    distances = [k for k in DISTANCES if k < numbers.last] + [numbers.last]
    lines = ["| cell | stage | " + " | ".join(f"k={k}" for k in distances) + " | test accuracy | test loss | "
             f"steps over norm {numbers.config.max_norm:g} |", "|---" * (len(distances) + 5) + "|"]
    for cell in CELLS:
        for (stage, clipping), shown in STAGE_NAMES.items():
            result = numbers.results[(cell, clipping)]
            scores = ("", "", "") if stage == "initial" else (
                f"{result['test_accuracy']:.3f}", f"{result['test_loss']:.3g}", f"{result['over_threshold']:.1%}")
            lines.append(f"| {cell} | {shown} | " + " | ".join(number(numbers.relative(cell, k, stage, clipping))
                                                              for k in distances) + " | " + " | ".join(scores) + " |")
    return lines


def _listed(cells) -> str:
    cells = list(cells)
    return ", ".join(cells[:-1]) + " and " + cells[-1] if len(cells) > 1 else "".join(cells)


def _findings(n: Numbers) -> list[str]:
    last, found = n.last, []
    at_start = {cell: n.relative(cell, last, "initial") for cell in CELLS}
    per_step = {cell: ratio ** (1 / last) for cell, ratio in at_start.items()}
    fates = {cell: n.fate(ratio) for cell, ratio in at_start.items()}
    vanished = [cell for cell in CELLS if fates[cell] == "vanished"]
    found.append(f"At initialisation the gradient at k={last} is " + ", ".join(
        f"{number(at_start[c])} ({c}, {per_step[c]:.2f} per step)" for c in CELLS) + " of its value at k=0: "
        + ("it vanishes in every cell." if len(vanished) == len(CELLS) else
           f"it vanishes in {_listed(vanished) or 'no cell'}; "
           f"{_listed(c for c in CELLS if c not in vanished)} keep more of it."))
    gated_floor, vanilla_top = min(at_start[c] for c in GATED), max(at_start[c] for c in VANILLA)
    if gated_floor > vanilla_top:
        orders = math.log10(gated_floor / vanilla_top)
        found.append(f"As the textbook says, the gated cells lose it more slowly, by {orders:.1f} orders of magnitude "
                     f"or more at k={last}; but at initialisation they lose it too: their gates start half open "
                     "(torch's initialisation), so they forget by a roughly constant factor per step.")
    else:
        found.append("Unlike the textbook, the gated cells do not lose the gradient more slowly here at "
                     "initialisation: their gates start half open (torch's initialisation) and must learn to keep "
                     "anything.")

    for cell in CELLS:
        ratio, outcome, accuracy = n.relative(cell, last), n.outcome(cell), n.accuracy(cell)
        kept = f"its trained gradient at k={last} is {number(ratio)} of k=0"
        if outcome == "learnt" and n.fate(ratio) != "vanished":
            near = n.curves[(cell, "no", "trained")][0]
            found.append(f"The {cell} learnt the task (accuracy {accuracy:.3f}) and {kept}: the first step's "
                         "signal reaches the loss" + (", as the gates were designed to allow" if cell in GATED else "")
                         + f". Its test loss is {n.results[(cell, 'no')]['test_loss']:.2g} and the last state's "
                         f"gradient {number(near)}: the ratio, not the size, says how far back the signal reaches.")
        elif outcome != "chance" and n.fate(ratio) == "vanished":
            found.append(f"The {cell} {'learnt' if outcome == 'learnt' else 'partly learnt'} the task (accuracy "
                         f"{accuracy:.3f}) although {kept}: a memory that survives {last} steps of random symbols "
                         "must ignore small changes to its state, and the gradient measures exactly the response "
                         "to small changes (Bengio, Simard and Frasconi, 1994).")
        elif outcome != "chance":
            found.append(f"The {cell} partly learnt the task (accuracy {accuracy:.3f}); {kept}.")
        else:
            found.append(f"The {cell} stayed at chance (accuracy {accuracy:.3f}, chance {n.chance:.3f}); {kept}"
                         + (": gates make a long memory possible, they do not guarantee that training finds one "
                            f"in {n.config.train_steps} steps." if cell in GATED else "."))

    pair = sorted((at_start["rnn"], at_start["elman"]))
    same = n.outcome("rnn") == n.outcome("elman")
    found.append(f"The rnn and the elman cell are the same maths (tests/test_lesson.py gives both the same weights "
                 f"and gets the same gradients) from different random weights: two samples of one cell. At "
                 f"initialisation their gradients at k={last} agree within a factor of {pair[1] / pair[0]:.1f}; "
                 f"trained, their accuracies are {n.accuracy('rnn'):.3f} and {n.accuracy('elman'):.3f}"
                 + (": the same outcome." if same else ": what one training reaches is one sample of what the "
                    "cell can do, not a property of it (--seed draws others)."))

    calm = []
    for cell in CELLS:
        free, clipped = n.results[(cell, "no")], n.results[(cell, "yes")]
        if free["over_threshold"] == 0 and clipped["over_threshold"] == 0:
            found.append(f"Clipping never acted on the {cell}: no step's gradient norm reached the threshold "
                         f"{n.config.max_norm:g} (the largest was {free['largest_grad_norm']:.2g}), so its two "
                         "trainings are the same.")
            continue
        change = clipped["test_accuracy"] - free["test_accuracy"]
        largest = free["largest_grad_norm"] / n.config.max_norm
        if abs(change) <= n.noise:
            calm.append(cell)
        times = f"{largest:.0f}" if largest >= 100 else f"{largest:.3g}"  # 2256, not 2.26e+03
        found.append(f"Clipping acted on {clipped['over_threshold']:.0%} of the {cell}'s steps; without it the "
                     f"largest gradient norm was {times} times the threshold"
                     + (" (it exploded)" if largest >= 10 else "") + f". Accuracy {free['test_accuracy']:.3f} "
                     f"without, {clipped['test_accuracy']:.3f} with: "
                     + ("no change beyond noise." if abs(change) <= n.noise else
                        "clipping helped." if change > 0 else "clipping hurt."))
    if calm:
        found.append(f"Where clipping acted without changing the outcome ({_listed(calm)}), part of the reason is "
                     "Adam: it already bounds each weight's step near the learning rate, so scaling a spike down "
                     "changes the step less than it would in plain gradient descent.")
    return found


def page(numbers: Numbers, figure_name: str, command: str) -> str:
    c = numbers.config
    lines = [
        "# The vanishing gradient, measured", "",
        f"Generated by `{command}` (model/lesson.py, model/lesson_page.py); do not edit, run it again. "
        f"Its numbers are in {GRADIENTS} and {RESULTS} in the command's --out folder.", "",
        f"**The task:** remember the first of T={c.length} random symbols ({c.symbols} kinds; a guess is right "
        f"{numbers.chance:.0%} of the time). Four cells with {c.hidden} hidden units: `nn.RNN` (tanh), the same "
        "cell written out (elman: h_t = tanh(W_xh x_t + W_hh h_{t-1} + b)), `nn.LSTM` and `nn.GRU`, each trained "
        f"twice from the same weights on the same batches ({c.train_steps} steps of {c.batch} sequences, Adam, "
        f"learning rate {c.learning_rate:g}): without and with `clip_grad_norm_` at norm {c.max_norm:g}. "
        f"Seed {c.seed}.",
        "",
        f"**The measurement:** the norm of d loss / d h_(T-k), the gradient the loss at the last step sends to the "
        f"hidden state k steps earlier, averaged over {c.measure_batch} fixed sequences and divided by its value "
        "at k=0. It is the raw gradient (clipping acts on the weights' gradient during training, not on this). "
        "For the LSTM, h is measured, not its cell state c.", "",
        f"![The gradient against the distance k, at initialisation and after training]({figure_name})", "",
        *_table(numbers), "",
        "## What the numbers show", "",
        *(f"- {sentence}" for sentence in _findings(numbers)), "",
    ]
    return "\n".join(lines)


def write_lesson(lesson: Lesson, out: str | Path, figure_name: str = FIGURE,
                 command: str = "cgpa lesson") -> list[Path]:
    """Write the two CSVs, the figure and the page into `out`, each atomically; returns their paths."""
    run, numbers = RunDir(out), Numbers(lesson)
    run.write_text(GRADIENTS, _csv(lesson.gradients))
    run.write_text(RESULTS, _csv(lesson.results))
    plot(numbers, run, figure_name)
    run.write_text(PAGE, page(numbers, figure_name, command))
    return [run / name for name in (GRADIENTS, RESULTS, figure_name, PAGE)]

