// The rest of a degree, read from explain.onnx's trajectory outputs as cgpa_rnn/trajectory.py
// reads them: each semester after the last one known (its median and interval), the final
// CGPA, the chance of ending below a line; a student with every semester known has an outcome
// instead (its interval closed, its chance 0 or 1). `ahead` is the outputs by name, per student: the three paths as arrays of
// the model's semesters (NaN at or before the last known one), the finals as numbers. No DOM.
(function (exports) {
  "use strict";
  const rules = (typeof window === "undefined" ? globalThis : window).cgpaRules;

  // trajectory.percent: a probability as people read it, never a bare 0% or 100%.
  function percent(probability) {
    if (probability < 0.005) return "<1%";
    if (probability > 0.995) return ">99%";
    return `${rules.formatFixed(probability * 100, 0)}%`;
  }

  // trajectory.trajectory_of: student `row` of `ahead`, measured against the line `below`.
  function trajectoryOf(ahead, below, row = 0) {
    const path = ahead.trajectory[row];
    const semesters = [...path.keys()].filter((t) => !Number.isNaN(path[t]));
    const along = (name) => semesters.map((t) => ahead[name][row][t]);
    return { semesters: semesters.map((t) => t + 1), median: along("trajectory"), low: along("trajectory_low"),
      high: along("trajectory_high"), final: ahead.final[row], finalLow: ahead.final_low[row],
      finalHigh: ahead.final_high[row], below, probabilityBelow: ahead.probability_below[row],
      finished: ahead.final_low[row] === ahead.final_high[row] };
  }

  // Trajectory.sentence: `names` the semesters as people say them (5th semester), `level` "80%".
  function sentence(t, names, level) {
    const fixed = (x) => rules.formatFixed(x, 2), line = rules.formatG(t.below);
    if (t.finished) {  // the graph's own comparison decides, in float32: a CGPA at the line is not below it
      return `Final CGPA ${fixed(t.final)}, the actual one (nothing left to forecast): ` +
        `${t.probabilityBelow === 1 ? "below" : "at or above"} ${line}.`;
    }
    const after = t.semesters.length ? ` after the ${names[t.semesters.at(-1) - 1]}` : ", its missing semesters estimated";
    return `Final CGPA${after}: ${fixed(t.final)} (${level} interval ` +
      `${fixed(t.finalLow)} to ${fixed(t.finalHigh)}); chance of ending below ${line}: ${percent(t.probabilityBelow)}.`;
  }

  // A scored cohort's at-risk list: the students whose final CGPA is forecast by their chance of ending below the
  // line, highest first, and apart from them the finished ones, whose final CGPA is known (those below
  // the line first, lowest first). As the demo's list (demo/service.py at_risk_table), chances within
  // 0.001 of each other are ties, and so are CGPAs within 0.01: the lower final CGPA first, then the
  // file's order (a >99% student at 4.70 before one at 6.02, whatever the last digits of float32 say).
  function atRisk(scored) {
    const forecasts = [], finished = [];
    scored.errors.forEach((error, i) => {
      if (error) return;
      const t = trajectoryOf(scored.ahead, scored.below, i);
      (t.finished ? finished : forecasts).push({ student: scored.students[i], line: scored.table.lines[i], ...t });
    });
    const rounded = (x, digits) => Math.round(x * 10 ** digits) / 10 ** digits;
    const byFinal = (a, b) => rounded(a.final, 2) - rounded(b.final, 2) || a.line - b.line;
    forecasts.sort((a, b) => rounded(b.probabilityBelow, 3) - rounded(a.probabilityBelow, 3) || byFinal(a, b));
    finished.sort(byFinal);
    return { below: scored.below, forecasts, finished };
  }

  Object.assign(exports, { percent, trajectoryOf, sentence, atRisk });
})(typeof window === "undefined" ? globalThis.cgpaTrajectory = {} : (window.cgpaTrajectory = {}));
