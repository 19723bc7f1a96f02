// The hindcast chart: each student's predicted grade against the actual one, with the
// interval as a vertical line, drawn as SVG by the page itself (no charting library, nothing
// fetched). window.cgpaChart(points, intervalLevel, [low, high] of the model's scale) -> an <svg>
// element, where points are {actual, prediction, low, high} in grade points.
(function () {
  "use strict";
  const SVG = "http://www.w3.org/2000/svg";
  const SIZE = 360, MARGIN = { left: 46, right: 12, top: 12, bottom: 64 };

  function element(name, attributes, text) {
    const node = document.createElementNS(SVG, name);
    Object.entries(attributes).forEach(([key, value]) => node.setAttribute(key, String(value)));
    if (text !== undefined) node.textContent = text;
    return node;
  }

  window.cgpaChart = function chart(points, intervalLevel, [floor, ceiling]) {
    // The axes cover the data within the scale (both axes alike, so the diagonal is a true 45 degrees),
    // padded to whole ticks of a step that leaves at most 10 of them.
    const values = points.flatMap((p) => [p.actual, p.low, p.high]);
    const step = [1, 2, 5, 10, 20, 25, 50].find((s) => (Math.max(...values) - Math.min(...values)) / s <= 10) || 100;
    const lo = Math.max(floor, Math.floor(Math.min(...values) / step) * step);
    const hi = Math.min(ceiling, Math.ceil(Math.max(...values) / step) * step);
    const span = Math.max(hi - lo, step), inner = SIZE - MARGIN.left - MARGIN.right;
    const x = (v) => MARGIN.left + ((v - lo) / span) * inner;
    const y = (v) => MARGIN.top + inner - ((v - lo) / span) * inner;
    const svg = element("svg", { viewBox: `0 0 ${SIZE} ${SIZE + MARGIN.top}`, role: "img",
      "aria-label": `Predicted against actual grade for ${points.length} students` });
    svg.appendChild(element("rect", { x: MARGIN.left, y: MARGIN.top, width: inner, height: inner, fill: "#f9fafb",
      stroke: "#d1d5db" }));
    for (let g = lo; g <= lo + span; g += step) {
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
      svg.appendChild(element("circle", { cx: x(p.actual), cy: y(p.prediction), r: 3, fill: "#c2410c",
        "fill-opacity": 0.75 }));
    });
    svg.appendChild(element("text", { x: x(lo) + inner / 2, y: y(lo) + 32, "text-anchor": "middle", "font-size": 12 },
      "actual grade"));
    svg.appendChild(element("text", { transform: `translate(13 ${y(lo) - inner / 2}) rotate(-90)`,
      "text-anchor": "middle", "font-size": 12 }, "predicted grade"));
    const legend = element("g", { "font-size": 11, transform: `translate(${MARGIN.left} ${y(lo) + 46})` });
    legend.appendChild(element("circle", { cx: 4, cy: 0, r: 3, fill: "#c2410c" }));
    legend.appendChild(element("text", { x: 11, y: 4 }, "prediction"));
    legend.appendChild(element("line", { x1: 86, x2: 86, y1: -6, y2: 6, stroke: "#fdba74", "stroke-width": 2 }));
    legend.appendChild(element("text", { x: 92, y: 4 }, `${intervalLevel} interval`));
    legend.appendChild(element("line", { x1: 180, x2: 200, y1: 0, y2: 0, stroke: "#9ca3af", "stroke-dasharray": "4 3" }));
    legend.appendChild(element("text", { x: 205, y: 4 }, "exact"));
    svg.appendChild(legend);
    return svg;
  };
})();
