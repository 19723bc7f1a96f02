// The page's two charts, drawn as SVG by the page itself (no charting library, nothing fetched):
//   window.cgpaChart(points, intervalLevel, [low, high])  the hindcast of a cohort: each student's
//       predicted grade against the actual one, the interval as a vertical line; points are
//       {actual, prediction, low, high} in grade points.
//   window.cgpaFan(fan, intervalLevel, [low, high])  one student's degree: the known grades, then
//       the forecast median of each remaining semester in its shaded interval (a fan widening with
//       the horizon) and the at-risk line; fan is {names, known: [{semester, grade}], ahead:
//       [{semester, median, low, high}], below}, semesters 1-based.
// Both return an <svg> element that scales with its box (width 100% in the page's CSS).
(function () {
  "use strict";
  const SVG = "http://www.w3.org/2000/svg";
  const STEPS = [0.1, 0.2, 0.25, 0.5, 1, 2, 5, 10, 20, 25, 50];
  const COLOURS = { known: "#1f2937", forecast: "#c2410c", band: "#fed7aa", line: "#b91c1c", frame: "#d1d5db" };

  function element(name, attributes, text) {
    const node = document.createElementNS(SVG, name);
    Object.entries(attributes).forEach(([key, value]) => node.setAttribute(key, String(value)));
    if (text !== undefined) node.textContent = text;
    return node;
  }

  // An axis over `values` within the scale, padded to whole ticks of the first step (at least
  // `smallest`) that leaves at most `most` intervals between them.
  function axis(values, [floor, ceiling], most, smallest) {
    const min = Math.min(...values), max = Math.max(...values);
    const step = STEPS.find((s) => s >= smallest && (max - min) / s <= most) || 100;
    const lo = Math.max(floor, Math.floor(min / step + 1e-9) * step);
    const hi = Math.min(ceiling, Math.ceil(max / step - 1e-9) * step);
    const span = Math.max(hi - lo, step);
    const ticks = [];
    for (let k = 0; k * step <= span + 1e-9; k++) ticks.push(Number((lo + k * step).toFixed(6)));
    return { lo, span, ticks };
  }

  window.cgpaChart = function chart(points, intervalLevel, scale) {
    const SIZE = 360, MARGIN = { left: 46, right: 12, top: 12, bottom: 64 };
    // Both axes alike, so the diagonal is a true 45 degrees.
    const { lo, span, ticks } = axis(points.flatMap((p) => [p.actual, p.low, p.high]), scale, 10, 1);
    const inner = SIZE - MARGIN.left - MARGIN.right;
    const x = (v) => MARGIN.left + ((v - lo) / span) * inner;
    const y = (v) => MARGIN.top + inner - ((v - lo) / span) * inner;
    const svg = element("svg", { viewBox: `0 0 ${SIZE} ${SIZE + MARGIN.top}`, role: "img",
      "aria-label": `Predicted against actual grade for ${points.length} students` });
    svg.appendChild(element("rect", { x: MARGIN.left, y: MARGIN.top, width: inner, height: inner, fill: "#f9fafb",
      stroke: COLOURS.frame }));
    for (const g of ticks) {
      svg.appendChild(element("line", { x1: x(g), x2: x(g), y1: y(lo), y2: y(lo) + 4, stroke: "#6b7280" }));
      svg.appendChild(element("text", { x: x(g), y: y(lo) + 16, "text-anchor": "middle", "font-size": 11 }, g));
      svg.appendChild(element("line", { x1: x(lo) - 4, x2: x(lo), y1: y(g), y2: y(g), stroke: "#6b7280" }));
      svg.appendChild(element("text", { x: x(lo) - 7, y: y(g) + 4, "text-anchor": "end", "font-size": 11 }, g));
    }
    svg.appendChild(element("line", { x1: x(lo), y1: y(lo), x2: x(lo + span), y2: y(lo + span), stroke: "#9ca3af",
      "stroke-dasharray": "4 3" }));
    points.forEach((p) => {
      svg.appendChild(element("line", { x1: x(p.actual), x2: x(p.actual), y1: y(p.low), y2: y(p.high),
        stroke: "#fdba74", "stroke-width": 1.5, opacity: 0.7 }));
    });
    points.forEach((p) => {
      svg.appendChild(element("circle", { cx: x(p.actual), cy: y(p.prediction), r: 3, fill: COLOURS.forecast,
        "fill-opacity": 0.75 }));
    });
    svg.appendChild(element("text", { x: x(lo) + inner / 2, y: y(lo) + 32, "text-anchor": "middle", "font-size": 12 },
      "actual grade"));
    svg.appendChild(element("text", { transform: `translate(13 ${y(lo) - inner / 2}) rotate(-90)`,
      "text-anchor": "middle", "font-size": 12 }, "predicted grade"));
    svg.appendChild(legend(MARGIN.left, y(lo) + 46, [["dot", "prediction"], ["bar", `${intervalLevel} interval`],
      ["dashed", "exact", "#9ca3af"]]));
    return svg;
  };

  window.cgpaFan = function fan({ names, known, ahead, below }, intervalLevel, scale) {
    const WIDTH = 360, HEIGHT = 250, FONT = 12, MARGIN = { left: 36, right: 10, top: 10, bottom: 72 };
    const { lo, span, ticks } = axis([...known.map((k) => k.grade), ...ahead.flatMap((a) => [a.low, a.high]), below],
      scale, 6, 0.1);
    const inner = { width: WIDTH - MARGIN.left - MARGIN.right, height: HEIGHT - MARGIN.top - MARGIN.bottom };
    const slot = inner.width / names.length; // each semester in the middle of its own slot
    const x = (semester) => MARGIN.left + (semester - 0.5) * slot;
    const y = (v) => MARGIN.top + inner.height - ((v - lo) / span) * inner.height;
    const bottom = MARGIN.top + inner.height;
    const svg = element("svg", { viewBox: `0 0 ${WIDTH} ${HEIGHT}`, role: "img", "aria-label":
      `Known grades and the forecast of ${ahead.length} remaining semesters with their ${intervalLevel} interval` });
    svg.appendChild(element("rect", { x: MARGIN.left, y: MARGIN.top, width: inner.width, height: inner.height,
      fill: "#f9fafb", stroke: COLOURS.frame }));
    for (const g of ticks) {
      svg.appendChild(element("line", { x1: MARGIN.left, x2: MARGIN.left + inner.width, y1: y(g), y2: y(g),
        stroke: "#e5e7eb" }));
      svg.appendChild(element("text", { x: MARGIN.left - 5, y: y(g) + 4, "text-anchor": "end", "font-size": FONT }, g));
    }
    // Semester names where they fit, else their numbers.
    const fits = names.every((name) => name.length * FONT * 0.6 <= slot - 2);
    names.forEach((name, t) => svg.appendChild(element("text", { x: x(t + 1), y: bottom + 16, "text-anchor": "middle",
      "font-size": FONT }, fits ? name : t + 1)));
    // The fan starts at the last known grade, where the interval is nothing yet; the line goes over
    // the band and under the points.
    const start = known.at(-1), edge = (key) => ahead.map((a) => `${x(a.semester)},${y(a[key])}`);
    const from = start ? [`${x(start.semester)},${y(start.grade)}`] : [];
    if (ahead.length) {
      svg.appendChild(element("polygon", { points: [...from, ...edge("low"), ...edge("high").reverse()].join(" "),
        fill: COLOURS.band, "fill-opacity": 0.8 }));
    }
    svg.appendChild(element("line", { x1: MARGIN.left, x2: MARGIN.left + inner.width, y1: y(below), y2: y(below),
      stroke: COLOURS.line, "stroke-dasharray": "5 3", "stroke-width": 1.2 }));
    if (ahead.length) {
      svg.appendChild(element("polyline", { points: [...from, ...edge("median")].join(" "), fill: "none",
        stroke: COLOURS.forecast, "stroke-width": 2, "stroke-dasharray": "6 3" }));
      ahead.forEach((a) => svg.appendChild(point({ cx: x(a.semester), cy: y(a.median), r: 3.5, fill: "white",
        stroke: COLOURS.forecast, "stroke-width": 2 }, `${names[a.semester - 1]}: forecast ${fixed(a.median)} ` +
        `(${intervalLevel} interval ${fixed(a.low)} to ${fixed(a.high)})`)));
    }
    svg.appendChild(element("polyline", { points: known.map((k) => `${x(k.semester)},${y(k.grade)}`).join(" "),
      fill: "none", stroke: COLOURS.known, "stroke-width": 2 }));
    known.forEach((k) => svg.appendChild(point({ cx: x(k.semester), cy: y(k.grade), r: 3.5, fill: COLOURS.known },
      `${names[k.semester - 1]}: ${fixed(k.grade)}`)));
    svg.appendChild(legend(MARGIN.left, bottom + 38, [["dot", "known", COLOURS.known], ["hollow", "forecast"],
      ["band", `${intervalLevel} interval`]], FONT));
    svg.appendChild(legend(MARGIN.left, bottom + 58, [["dashed", `at risk below ${window.cgpaRules.formatG(below)}`,
      COLOURS.line]], FONT));
    return svg;
  };

  // A point that says its numbers when pointed at (a tooltip, read by screen readers too).
  function point(attributes, words) {
    const circle = element("circle", attributes);
    circle.appendChild(element("title", {}, words));
    return circle;
  }
  const fixed = (x) => window.cgpaRules.formatFixed(x, 2);

  // A row of [mark, words, colour] entries, each as wide as its words need.
  function legend(left, top, entries, size = 11) {
    const group = element("g", { "font-size": size, transform: `translate(${left} ${top})` });
    let at = 0;
    for (const [mark, words, colour = COLOURS.forecast] of entries) {
      const marks = {
        dot: () => element("circle", { cx: at + 5, cy: 0, r: 3, fill: colour }),
        hollow: () => element("circle", { cx: at + 5, cy: 0, r: 3, fill: "white", stroke: colour, "stroke-width": 2 }),
        bar: () => element("line", { x1: at + 5, x2: at + 5, y1: -6, y2: 6, stroke: "#fdba74", "stroke-width": 2 }),
        band: () => element("rect", { x: at, y: -5, width: 12, height: 10, fill: COLOURS.band }),
        dashed: () => element("line", { x1: at, x2: at + 18, y1: 0, y2: 0, stroke: colour, "stroke-dasharray": "4 3",
          "stroke-width": 1.5 }),
      };
      group.appendChild(marks[mark]());
      const indent = mark === "dashed" ? 23 : 15;
      group.appendChild(element("text", { x: at + indent, y: 4 }, words));
      at += indent + words.length * size * 0.55 + 14;
    }
    return group;
  }
})();
