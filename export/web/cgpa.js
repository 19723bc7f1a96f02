// The model in this page. For people: one student, a cohort file, and what the model is. For
// programs and tests:
//   window.cgpa.ready                      a Promise, resolved once the model is loaded
//   window.cgpa.predict(grades, colleges)  grades: per-student arrays of numbers (NaN or null
//                                          for missing); colleges: codes. Resolves to
//                                          {prediction, low, high}, NaN where nothing to predict.
//   window.cgpa.explain(grades, colleges)  the same inputs through explain.onnx: {prediction, prior,
//                                          correction, group_mean, deviation} (prior + correction
//                                          = prediction), per student.
//   window.cgpa.trajectory(grades, colleges, {below, credits})
//                                          the rest of each degree, explain.onnx's trajectory outputs
//                                          by name: trajectory, trajectory_low, trajectory_high (an
//                                          array of the model's semesters per student, NaN at or
//                                          before the last known one), final, final_low, final_high,
//                                          probability_below (a number per student); `below` (the
//                                          line) and `credits` (a weight per semester) are optional.
// Everything runs here: no value or file the visitor gives is sent anywhere.
(function () {
  "use strict";
  const config = JSON.parse(document.getElementById("cgpa-config").textContent);
  const rules = window.cgpaRules, ahead = window.cgpaTrajectory;
  const WASM = "ort-wasm-simd-threaded.wasm";
  const $ = (id) => document.getElementById(id);

  // With a self-hosted runtime the site carries WASM.gz: a host that compresses on its own (or
  // serves the .br/.gz files beside) sends the .wasm compressed; one that does not (python -m
  // http.server) would send 14 MB, so the page fetches the gzip file and inflates it itself.
  async function wasmBinary() {
    const url = new URL(config.wasmPaths + WASM, document.baseURI).href;
    const head = await fetch(url, { method: "HEAD" });
    if (head.ok && head.headers.get("content-encoding")) return undefined; // onnxruntime-web fetches it as is
    const response = await fetch(url + ".gz");
    if (!response.ok) throw new Error(`${WASM}.gz: HTTP ${response.status}`);
    const bytes = new Uint8Array(await response.arrayBuffer());
    if (bytes[0] === 0 && bytes[1] === 0x61) return bytes; // the host decoded it already ("\0asm")
    const inflated = new Blob([bytes]).stream().pipeThrough(new DecompressionStream("gzip"));
    return new Uint8Array(await new Response(inflated).arrayBuffer());
  }

  async function load() {
    if (typeof ort === "undefined") {
      throw new Error(`onnxruntime-web did not load from ${config.ortScript} (offline, blocked, or missing files)`);
    }
    ort.env.wasm.numThreads = 1; // threads need cross-origin isolation, which a static host rarely sets
    ort.env.wasm.wasmPaths = new URL(config.wasmPaths, document.baseURI).href; // module imports need a URL
    if (config.selfHosted) {
      const binary = await wasmBinary();
      if (binary) ort.env.wasm.wasmBinary = binary;
    }
    return ort.InferenceSession.create(config.model, { executionProviders: ["wasm"] });
  }
  const session = load();

  function inputs(grades, colleges) {
    if (grades.length !== colleges.length) throw new Error("grades and colleges differ in length");
    const S = config.semesters, n = grades.length;
    const flat = new Float32Array(n * S).fill(NaN);
    grades.forEach((row, i) => {
      if (row.length > S) throw new Error(`student ${i}: the model knows ${S} semesters, got ${row.length}`);
      row.forEach((g, t) => { if (g !== null && g !== undefined && g !== "") flat[i * S + t] = Number(g); });
    });
    const codes = BigInt64Array.from(colleges, (c) => BigInt(typeof c === "bigint" ? c : Math.trunc(Number(c))));
    return { grades: new ort.Tensor("float32", flat, [n, S]), college: new ort.Tensor("int64", codes, [n]) };
  }

  async function predict(grades, colleges) {
    const out = await (await session).run(inputs(grades, colleges));
    return { prediction: Array.from(out.prediction.data), low: Array.from(out.low.data), high: Array.from(out.high.data) };
  }

  // The why and the rest of the degree (explain.onnx beside model.onnx), loaded with the model: once
  // the page is ready it makes no request at all. onnxruntime-web cannot feed its optional inputs
  // (onnx_bytes.js says why): a caller's line or credits make a copy of the file with them set.
  // Severity 3: not the warning, at each load, that those inputs are not constants (by design).
  const EXPLAIN_OPTIONS = { executionProviders: ["wasm"], logSeverityLevel: 3 };
  const explainBytes = session.then(async () => {
    if (!config.explanation) return null;
    const response = await fetch(config.explanation);
    if (!response.ok) throw new Error(`${config.explanation}: HTTP ${response.status}`);
    return new Uint8Array(await response.arrayBuffer());
  });
  const explainer = explainBytes.then((bytes) => bytes && ort.InferenceSession.create(bytes, EXPLAIN_OPTIONS));
  // A model exported before explain.onnx had the rest of the degree: the page leaves it out.
  const hasTrajectory = explainer.then((s) => Boolean(s && s.outputNames.includes("probability_below")), () => false);
  // The optional inputs' values as JSON -> {made: a session of the copy with them, runs under way, evicted}.
  const withInputs = new Map(), defaults = { made: explainer, busy: 0, evicted: false };
  function explainerFor({ below, credits } = {}) {
    const line = below === undefined || below === null || below === config.atRiskLine ? {} : { below: [below] };
    const values = { ...(credits ? { credits } : {}), ...line };
    if (!Object.keys(values).length) return defaults;  // the file's own defaults: no copy
    const key = JSON.stringify(values);
    if (!withInputs.has(key)) {
      if (withInputs.size >= 8) { // a visitor trying lines one after another: keep the last few
        const [oldest, entry] = withInputs.entries().next().value;
        withInputs.delete(oldest);
        entry.evicted = true;
        release(entry);
      }
      withInputs.set(key, { made: explainBytes.then((bytes) =>
        ort.InferenceSession.create(window.cgpaOnnxBytes.withInputs(bytes, values), EXPLAIN_OPTIONS)),
      busy: 0, evicted: false });
    }
    return withInputs.get(key);
  }
  // An evicted session is released once no run is using it (a cohort is scored in several runs).
  function release(entry) {
    if (entry.evicted && entry.busy === 0) entry.made.then((s) => s.release(), () => {});
  }

  // explain.onnx's outputs by name: a [batch, K] output as K-long arrays per student, a [batch] one as numbers.
  async function runExplainer(grades, colleges, names, options) {
    const entry = explainerFor(options);
    entry.busy += 1;
    let out;
    try {
      const explaining = await entry.made;
      if (!explaining) throw new Error("this site has no explain.onnx (cgpa export writes it beside model.onnx)");
      out = await explaining.run(inputs(grades, colleges));
    } finally {
      entry.busy -= 1;
      release(entry);
    }
    return Object.fromEntries(names.map((name) => {
      const { data, dims } = out[name];
      const width = dims.length > 1 ? dims[1] : null;
      return [name, width === null ? Array.from(data)
        : grades.map((_, i) => Array.from(data.subarray(i * width, (i + 1) * width)))];
    }));
  }
  const explain = (grades, colleges) =>
    runExplainer(grades, colleges, ["prediction", "prior", "correction", "group_mean", "deviation"]);
  const trajectory = (grades, colleges, options) => runExplainer(grades, colleges, rules.TRAJECTORY_OUTPUTS, options);

  window.cgpa = { ready: Promise.all([session, explainer]).then(() => undefined), predict, explain, trajectory,
    semesters: config.semesters };

  // Tabs: the three views share the status line.
  const tabs = [...document.querySelectorAll("[role=tab]")];
  tabs.forEach((tab) => tab.addEventListener("click", () => {
    tabs.forEach((other) => {
      other.setAttribute("aria-selected", String(other === tab));
      $(other.getAttribute("aria-controls")).hidden = other !== tab;
    });
  }));

  function show(element, text, isError) {
    element.textContent = text;
    element.classList.toggle("error", Boolean(isError));
  }
  const status = $("status");
  window.cgpa.ready.then(() => show(status, "Model loaded: it runs in this page."), (error) => {
    show(status, `The model cannot run in this browser: ${error.message}. Nothing was sent anywhere; ` +
      "try again online, or ask whoever published this page for a copy with the runtime included (cgpa web --ort).", true);
    document.querySelectorAll("button.action, #cohort-file").forEach((b) => { b.disabled = true; });
  });

  // One student: the same validation as the Python runtime (rules.question, rules.riskLine).
  const fields = config.semesterNames.map((name, t) => {
    const label = document.createElement("label");
    label.textContent = config.semesterLabels[t];
    const input = document.createElement("input");
    Object.assign(input, { id: `grade-${t + 1}`, type: "text", inputMode: "decimal" });
    label.appendChild(input);
    $("grades").appendChild(label);
    return input;
  });
  // The model's scale and columns in the page's words (the HTML's are the shipped model's).
  $("scale-text").textContent = `${rules.formatG(config.scale[0])}-${rules.formatG(config.scale[1])}`;
  const code = (text) => Object.assign(document.createElement("code"), { textContent: text });
  $("columns-text").replaceChildren("semester columns ", ...config.semesterNames.flatMap((name, t) => [t ? ", " : "",
    code(name)]), " (or named by number)", ...(config.groupColumn === null ? [] : [", and a ", code(config.groupColumn),
    " column"]));
  // The model's group column names the field; text labels are written as labels, a model without one hides it.
  $("college").value = config.groupLabels ? config.groupLabels[0] : String(config.colleges[0]);
  $("college").previousSibling.textContent = `${config.groupColumn ?? "group"} `;
  $("college").parentElement.hidden = config.groupColumn === null;
  if (config.groupLabels) $("college").inputMode = "text";
  // The at-risk line of both views starts at the model's own (60% up its scale).
  ["below", "cohort-below"].forEach((id) => { $(id).value = rules.formatG(config.atRiskLine); });
  const result = $("result");
  const fixed = (x) => rules.formatFixed(x, 2);
  const semesterNames = config.semesterNames.map((_, t) => rules.semesterName(config, t)); // "5th semester", "G3"

  $("form").addEventListener("submit", async (event) => {
    event.preventDefault();
    [...fields, $("below")].forEach((input) => input.setAttribute("aria-invalid", "false"));
    [$("why"), $("trajectory")].forEach((element) => { element.textContent = ""; });
    $("fan").replaceChildren();
    let asked, below;
    try {
      asked = rules.question(fields.map((input) => input.value), $("college").value, config, $("hide-last").checked);
      below = rules.riskLine($("below").value, config);
    } catch (error) {
      const field = config.semesterLabels.findIndex((label) => error.message.startsWith(`${label}:`));
      if (field >= 0) fields[field].setAttribute("aria-invalid", "true");
      if (error.message.startsWith("at risk below:")) $("below").setAttribute("aria-invalid", "true");
      show(result, error.message, true);
      return;
    }
    const started = performance.now();
    const out = await predict([Array.from(asked.row)], [asked.college]);
    const ms = performance.now() - started;
    const name = config.semesterLabels[asked.semester - 1];
    const hindcast = Number.isNaN(asked.actual) ? "" : ` (hindcast: the actual ${name} was ${fixed(asked.actual)})`;
    const unknown = config.colleges.includes(asked.college) ? "" : `; ${config.groupColumn} not seen in training`;
    show(result, `${name}: ${fixed(out.prediction[0])} (${config.intervalLevel} interval ` +
      `${fixed(out.low[0])} to ${fixed(out.high[0])})${hindcast}, computed in your browser in ${ms.toFixed(1)} ms${unknown}`);
    if (!config.explanation) return;
    const why = await explain([Array.from(asked.row)], [asked.college]);
    const signed = (x) => (x < 0 ? "" : "+") + fixed(x);
    const column = config.groupColumn === null ? null :
      ["college code", "college", "college_code"].includes(config.groupColumn.trim().toLowerCase()) ? "college" :
        config.groupColumn;
    const group = column === null ? "of the cohort" : unknown ? `for a ${column} not seen in training` :
      `at ${column} ${$("college").value.trim()}`;
    $("why").textContent = `Why: the ${semesterNames[asked.semester - 1]} average ${group} is ` +
      `${fixed(why.group_mean[0])}; this student has ` +
      `been ${fixed(Math.abs(why.deviation[0]))} ${why.deviation[0] >= 0 ? "above" : "below"} the group's averages ` +
      `so far (carried over: ` +
      `${signed(why.prior[0] - why.group_mean[0])}); the network adds ${signed(why.correction[0])}, giving ` +
      `${fixed(why.prediction[0])}.`;
    if (await hasTrajectory) await showTrajectory(asked, below);
  });

  // The rest of the degree from every grade given (a hindcast's hidden one too), as Predictor.trajectory.
  async function showTrajectory(asked, below) {
    const given = rules.givenRow(asked);
    const t = ahead.trajectoryOf(await trajectory([Array.from(given)], [asked.college], { below }), below);
    $("trajectory").textContent = ahead.sentence(t, semesterNames, config.intervalLevel);
    const known = [...given.keys()].filter((k) => !Number.isNaN(given[k])).map((k) => ({ semester: k + 1,
      grade: given[k] }));
    const path = t.semesters.map((semester, k) => ({ semester, median: t.median[k], low: t.low[k], high: t.high[k] }));
    $("fan").replaceChildren(window.cgpaFan({ names: config.semesterNames, known, ahead: path, below },
      config.intervalLevel, config.scale));
  }

  // A cohort: read, scored and drawn here; the scored CSV is offered as a local download.
  let download = null;
  const rescore = async () => {
    const file = $("cohort-file").files[0];
    if (file) await scoreFile(file);
  };
  ["cohort-file", "hindcast-all", "cohort-below"].forEach((id) => $(id).addEventListener("change", rescore));
  // Enter in the line's field would submit the form and reload the page (the change event rescores).
  $("cohort-form").addEventListener("submit", (event) => event.preventDefault());
  $("download").addEventListener("click", () => {
    const link = document.createElement("a");
    link.href = URL.createObjectURL(new Blob([download.text], { type: "text/csv" }));
    link.download = download.name;
    link.click();
    setTimeout(() => URL.revokeObjectURL(link.href), 10_000);
  });

  async function sha256(bytes) {
    if (!crypto.subtle) return null; // only in secure contexts (https, localhost): then no in-sample check
    return Array.from(new Uint8Array(await crypto.subtle.digest("SHA-256", bytes)),
      (b) => b.toString(16).padStart(2, "0")).join("");
  }

  let latest = 0; // the latest scoring asked for: an earlier one still running shows nothing
  async function scoreFile(file) {
    const mine = ++latest;
    const cohortStatus = $("cohort-status");
    [$("cohort-summary"), $("chart"), $("at-risk-summary")].forEach((element) => element.replaceChildren());
    ["download", "cohort-table", "at-risk", "at-risk-table", "finished-table"].forEach((id) => { $(id).hidden = true; });
    $("cohort-below").setAttribute("aria-invalid", "false");
    cohortStatus.dataset.state = "working"; // for programs and tests: working, done or error
    show(cohortStatus, `Scoring ${file.name}...`);
    let scored, summary;
    try {
      let below;
      try {
        below = rules.riskLine($("cohort-below").value, config);
      } catch (error) {
        $("cohort-below").setAttribute("aria-invalid", "true");
        throw error;
      }
      const bytes = new Uint8Array(await file.arrayBuffer());
      const table = rules.readTable(bytes, file.name);
      await session;
      const rest = (await hasTrajectory) ? { below, detail: (g, c) => trajectory(g, c, { below }) } : null;
      scored = await rules.scoreTable(table, config, predict, $("hindcast-all").checked, rest);
      summary = rules.hindcastSummary(scored, (await sha256(bytes)) === config.dataSha256, config.intervalLevel);
    } catch (error) {
      if (mine !== latest) return;
      show(cohortStatus, error instanceof rules.DataError ? error.message : `${file.name}: ${error.message}`, true);
      cohortStatus.dataset.state = "error";
      return;
    }
    if (mine !== latest) return;
    const failed = scored.errors.filter(Boolean).length, count = scored.errors.length;
    show(cohortStatus, (scored.warning ? scored.warning + " " : "") +
      `${count - failed} of ${count} ${count === 1 ? "student" : "students"} scored; ` +
      `${failed} with an error (the reason is in the table and the CSV)`);
    if (summary) {
      show($("cohort-summary"), summary.text);
      $("chart").appendChild(window.cgpaChart(summary.points, config.intervalLevel, config.scale));
    }
    download = { text: rules.scoredCsv(scored), name: file.name.replace(/\.csv$/i, "") + "-scored.csv" };
    $("download").hidden = false;
    if (scored.ahead) showAtRisk(ahead.atRisk(scored));
    showTable(scored);
    cohortStatus.dataset.state = "done";
  }

  // A table of text cells in a box that scrolls, the first `limit` rows (the CSV holds them all).
  // `wide`: the columns of words, left-aligned.
  function fillTable(box, headings, rows, { limit = 200, wide = [], cellClass = () => "" } = {}) {
    const table = document.createElement("table");
    const head = table.createTHead().insertRow();
    headings.forEach((h, k) => {
      const th = document.createElement("th");
      th.textContent = h;
      if (wide.includes(k)) th.className = "text";
      head.appendChild(th);
    });
    const body = table.createTBody();
    rows.slice(0, limit).forEach((cells, i) => {
      const row = body.insertRow();
      cells.forEach((text, k) => {
        const cell = row.insertCell();
        cell.textContent = text;
        cell.className = [wide.includes(k) ? "text" : "", cellClass(i, k)].join(" ").trim();
      });
    });
    box.replaceChildren(table);
    if (rows.length > limit) {
      const more = document.createElement("p");
      more.className = "note";
      more.textContent = `The first ${limit} of ${rows.length} rows; the scored CSV holds them all.`;
      box.appendChild(more);
    }
    box.hidden = false;
  }

  function showTable(scored) {
    const rows = scored.errors.map((error, i) => {
      const q = scored.questions[i];
      return q ? [scored.table.lines[i], config.semesterNames[q.semester - 1], fixed(scored.prediction[i]),
        fixed(scored.low[i]), fixed(scored.high[i]), Number.isNaN(q.actual) ? "" : fixed(q.actual), ""]
        : [scored.table.lines[i], "", "", "", "", "", error.replace(/^line \d+: /, "")];
    });
    fillTable($("cohort-table"), ["line", "semester", "prediction", "low", "high", "actual", "reason"], rows,
      { wide: [6], cellClass: (i, k) => (k === 6 ? "reason" : "") });
  }

  // Who may end below the line, most likely first; the finished students apart, with their outcome.
  function showAtRisk({ below, forecasts, finished }) {
    const line = rules.formatG(below);
    const likely = forecasts.filter((s) => s.probabilityBelow > 0.5).length;
    const under = finished.filter((s) => s.probabilityBelow === 1).length;
    // The words of `cgpa predict --csv --trajectory`'s summary line.
    $("at-risk-summary").textContent = `${likely} of the ${forecasts.length} student` +
      `${forecasts.length === 1 ? "" : "s"} whose final CGPA is forecast ${likely === 1 ? "is" : "are"} more likely ` +
      `than not to end below ${line} (p_below > 0.5); ${under} of the ${finished.length} with nothing left to ` +
      "forecast ended below it";
    fillTable($("at-risk-table"), ["student", "final CGPA", `${config.intervalLevel} interval`, `chance below ${line}`],
      forecasts.map((s) => [s.student, fixed(s.final), `${fixed(s.finalLow)} to ${fixed(s.finalHigh)}`,
        ahead.percent(s.probabilityBelow)]), { wide: [0], cellClass: (i, k) => (k === 3 && forecasts[i].probabilityBelow > 0.5 ? "risk" : "") });
    if (finished.length) {
      fillTable($("finished-table"), ["finished student", "final CGPA (actual)", "outcome"],
        finished.map((s) => [s.student, fixed(s.final), s.probabilityBelow === 1 ? `below ${line}` : `at or above ${line}`]),
        { wide: [0, 2], cellClass: (i, k) => (k === 2 && finished[i].probabilityBelow === 1 ? "risk" : "") });
    }
    $("at-risk").hidden = false;
  }

  // About: what site.py read from the model's metadata.
  config.about.forEach(([term, text]) => {
    const dt = document.createElement("dt"), dd = document.createElement("dd");
    dt.textContent = term;
    dd.textContent = text;
    $("about").append(dt, dd);
  });
})();
