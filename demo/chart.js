// The "Student" tab's chart, drawn in the visitor's browser from the answer the server sent
// (demo/tabs/student.py's question_record): the grades given, a gap marked on the axis for each
// missing semester, the predicted semester as the interval's band with the prediction in its
// middle (and the actual grade for a hindcast), and the rest of the degree as a fan: each later
// semester's median and its interval, widening with the horizon. Returns SVG markup of numbers
// and fixed words only; nothing a visitor typed is put into it as text.
(asked) => {
  if (!asked || asked.prediction === undefined) return "";
  const W = 400, H = 230, left = 30, right = 8, top = 10, bottom = 44;
  const n = asked.names.length;
  const known = asked.grades.map((g, t) => [t + 1, g]).filter(([t, g]) => g !== null && t !== asked.semester);
  const path = (asked.path || []).filter((p) => p.semester !== asked.semester);  // later semesters only
  const values = known.map(([, g]) => g).concat([asked.low, asked.high, asked.prediction],
                                                path.flatMap((p) => [p.low, p.high]));
  if (asked.actual !== null) values.push(asked.actual);
  // The grades' range padded by a twentieth of the scale, within the scale, at whole ticks of a step that leaves at most 6.
  const [floor, ceiling] = asked.scale, pad = (ceiling - floor) / 20;
  const step = [1, 2, 5, 10, 20, 25, 50].find((s) => (Math.max(...values) - Math.min(...values) + 2 * pad) / s <= 6) || 100;
  const low = Math.max(floor, Math.floor((Math.min(...values) - pad) / step) * step);
  const high = Math.min(ceiling, Math.ceil((Math.max(...values) + pad) / step) * step);
  const x = (t) => left + ((t - 0.5) / n) * (W - left - right);
  const y = (g) => top + (1 - (g - low) / (high - low || 1)) * (H - top - bottom);
  const f = (v) => v.toFixed(1);
  const parts = [`<svg viewBox="0 0 ${W} ${H}" width="100%" role="img" aria-label="grades and prediction" style="max-width:560px;font:15px sans-serif">`];
  for (let g = low; g <= high; g += step) {
    parts.push(`<line x1="${left}" x2="${W - right}" y1="${f(y(g))}" y2="${f(y(g))}" stroke="#ddd"/>`,
               `<text x="${left - 6}" y="${f(y(g) + 4)}" text-anchor="end" fill="#555">${g}</text>`);
  }
  const axis = H - bottom;
  asked.names.forEach((name, i) => {
    const t = i + 1;
    const missing = t < asked.semester && asked.grades[i] === null && t !== asked.semester;
    parts.push(`<text x="${f(x(t))}" y="${axis + 18}" text-anchor="middle" fill="${missing ? "#b00" : "#333"}">${String(name).replace(/[^0-9a-z]/gi, "")}</text>`);
    if (missing) parts.push(`<text x="${f(x(t))}" y="${axis + 36}" text-anchor="middle" fill="#b00">missing</text>`,
                            `<line x1="${f(x(t))}" x2="${f(x(t))}" y1="${top}" y2="${axis}" stroke="#b00" stroke-dasharray="3 4"/>`);
  });
  const s = asked.semester;
  const band = 0.28 * (W - left - right) / n;
  parts.push(`<rect x="${f(x(s) - band)}" width="${f(2 * band)}" y="${f(y(asked.high))}" height="${f(Math.max(1, y(asked.low) - y(asked.high)))}" fill="#f4a26155" stroke="#e07b22"/>`);
  if (known.length) {
    const path = known.map(([t, g], k) => `${k ? "L" : "M"}${f(x(t))},${f(y(g))}`).join("");
    const [lt, lg] = known[known.length - 1];
    parts.push(`<path d="${path}" fill="none" stroke="#2a6fdb" stroke-width="2"/>`,
               `<path d="M${f(x(lt))},${f(y(lg))}L${f(x(s))},${f(y(asked.prediction))}" fill="none" stroke="#e07b22" stroke-width="2" stroke-dasharray="5 4"/>`);
    known.forEach(([t, g]) => parts.push(`<circle cx="${f(x(t))}" cy="${f(y(g))}" r="4" fill="#2a6fdb"/>`));
  }
  if (path.length) {  // the fan: from the predicted semester's interval through each later one's
    const start = asked.actual !== null ? [] : [{ semester: s, median: asked.prediction, low: asked.low, high: asked.high }];
    const fan = start.concat(path);
    const edge = (key) => fan.map((p) => `${f(x(p.semester))},${f(y(p[key]))}`);
    parts.push(`<polygon points="${edge("high").concat(edge("low").reverse()).join(" ")}" fill="#f4a26133" stroke="#e07b22" stroke-dasharray="2 3"/>`,
               `<path d="M${edge("median").join("L")}" fill="none" stroke="#e07b22" stroke-width="2" stroke-dasharray="5 4"/>`);
    path.forEach((p) => parts.push(`<circle cx="${f(x(p.semester))}" cy="${f(y(p.median))}" r="3.5" fill="#e07b22"/>`));
  }
  parts.push(`<line x1="${f(x(s) - band)}" x2="${f(x(s) + band)}" y1="${f(y(asked.prediction))}" y2="${f(y(asked.prediction))}" stroke="#e07b22" stroke-width="3"/>`);
  if (asked.actual !== null) parts.push(`<path d="M${f(x(s) - 6)},${f(y(asked.actual) - 6)}l12,12m0,-12l-12,12" stroke="#111" stroke-width="2.5"/>`);
  parts.push("</svg>");
  const legend = [["#2a6fdb", "grades"], ["#e07b22", path.length ? "prediction, then the rest of the degree" : "prediction"],
                  ["#f4a26155", `${String(asked.level).replace(/[^0-9%]/g, "")} interval`]];
  if (asked.actual !== null) legend.push(["#111", "actual"]);
  parts.push(`<div style="display:flex;flex-wrap:wrap;gap:4px 16px;font-size:14px">`);
  legend.forEach(([colour, label]) => parts.push(
    `<span><span style="display:inline-block;width:14px;height:10px;background:${colour};border:1px solid ${colour === "#f4a26155" ? "#e07b22" : colour}"></span> ${label}</span>`));
  parts.push("</div>");
  return parts.join("");
}
