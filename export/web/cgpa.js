// The model in this page. For people: one student, a cohort file, and what the model is. For
// programs and tests:
//   window.cgpa.ready                      a Promise, resolved once the model is loaded
//   window.cgpa.predict(grades, colleges)  grades: per-student arrays of numbers (NaN or null
//                                          for missing); colleges: codes. Resolves to
//                                          {prediction, low, high}, NaN where nothing to predict.
//   window.cgpa.explain(grades, colleges)  the same inputs through explain.onnx: {prediction, prior,
//                                          correction, group_mean, deviation} (prior + correction
//                                          = prediction), per student.
// Everything runs here: no value or file the visitor gives is sent anywhere.
(function () {
  "use strict";
  const config = JSON.parse(document.getElementById("cgpa-config").textContent);
  const rules = window.cgpaRules;
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

  // The why of a forecast (explain.onnx beside model.onnx), loaded with the model: once the page
  // is ready it makes no request at all. Resolves to per-student arrays by output name.
  const explainer = session.then(() => config.explanation &&
    ort.InferenceSession.create(config.explanation, { executionProviders: ["wasm"] }));
  async function explain(grades, colleges) {
    const out = await (await explainer).run(inputs(grades, colleges));
    return Object.fromEntries(["prediction", "prior", "correction", "group_mean", "deviation"].map(
      (name) => [name, Array.from(out[name].data)]));
  }

  window.cgpa = { ready: Promise.all([session, explainer]).then(() => undefined), predict, explain,
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

  // One student: the same validation as the Python runtime (rules.question).
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
  const result = $("result");
  const fixed = (x) => rules.formatFixed(x, 2);

  $("form").addEventListener("submit", async (event) => {
    event.preventDefault();
    fields.forEach((input) => input.setAttribute("aria-invalid", "false"));
    let asked;
    try {
      asked = rules.question(fields.map((input) => input.value), $("college").value, config, $("hide-last").checked);
    } catch (error) {
      const field = config.semesterLabels.findIndex((label) => error.message.startsWith(`${label}:`));
      if (field >= 0) fields[field].setAttribute("aria-invalid", "true");
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
    $("why").textContent = "";
    if (!config.explanation) return;
    const why = await explain([Array.from(asked.row)], [asked.college]);
    const signed = (x) => (x < 0 ? "" : "+") + fixed(x);
    const semester = config.semesterNames[asked.semester - 1];
    const named = /^[0-9]+(st|nd|rd|th)$/.test(semester) ? `${semester} semester` : semester;
    const column = config.groupColumn === null ? null :
      ["college code", "college", "college_code"].includes(config.groupColumn.trim().toLowerCase()) ? "college" :
        config.groupColumn;
    const group = column === null ? "of the cohort" : unknown ? `for a ${column} not seen in training` :
      `at ${column} ${$("college").value.trim()}`;
    $("why").textContent = `Why: the ${named} average ${group} is ${fixed(why.group_mean[0])}; this student has ` +
      `been ${fixed(Math.abs(why.deviation[0]))} ${why.deviation[0] >= 0 ? "above" : "below"} the group's averages ` +
      `so far (carried over: ` +
      `${signed(why.prior[0] - why.group_mean[0])}); the network adds ${signed(why.correction[0])}, giving ` +
      `${fixed(why.prediction[0])}.`;
  });

  // A cohort: read, scored and drawn here; the scored CSV is offered as a local download.
  let download = null;
  const rescore = async () => {
    const file = $("cohort-file").files[0];
    if (file) await scoreFile(file);
  };
  $("cohort-file").addEventListener("change", rescore);
  $("hindcast-all").addEventListener("change", rescore);
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

  async function scoreFile(file) {
    const cohortStatus = $("cohort-status");
    [$("cohort-summary"), $("chart")].forEach((element) => element.replaceChildren());
    $("download").hidden = $("cohort-table").hidden = true;
    cohortStatus.dataset.state = "working"; // for programs and tests: working, done or error
    show(cohortStatus, `Scoring ${file.name}...`);
    let scored, summary;
    try {
      const bytes = new Uint8Array(await file.arrayBuffer());
      const table = rules.readTable(bytes, file.name);
      await session;
      scored = await rules.scoreTable(table, config, predict, $("hindcast-all").checked);
      summary = rules.hindcastSummary(scored, (await sha256(bytes)) === config.dataSha256, config.intervalLevel);
    } catch (error) {
      show(cohortStatus, error instanceof rules.DataError ? error.message : `${file.name}: ${error.message}`, true);
      cohortStatus.dataset.state = "error";
      return;
    }
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
    showTable(scored);
    cohortStatus.dataset.state = "done";
  }

  function showTable(scored, limit = 200) {
    const headings = ["line", "semester", "prediction", "low", "high", "actual", "reason"];
    const table = document.createElement("table");
    const head = table.createTHead().insertRow();
    headings.forEach((h) => {
      const th = document.createElement("th");
      th.textContent = h;
      if (h === "reason") th.className = "reason";
      head.appendChild(th);
    });
    const body = table.createTBody();
    scored.errors.slice(0, limit).forEach((error, i) => {
      const q = scored.questions[i];
      const cells = q ? [scored.table.lines[i], config.semesterNames[q.semester - 1], fixed(scored.prediction[i]),
        fixed(scored.low[i]), fixed(scored.high[i]), Number.isNaN(q.actual) ? "" : fixed(q.actual), ""]
        : [scored.table.lines[i], "", "", "", "", "", error.replace(/^line \d+: /, "")];
      const row = body.insertRow();
      cells.forEach((text, k) => {
        const cell = row.insertCell();
        cell.textContent = text;
        if (k === cells.length - 1) cell.className = "reason";
      });
    });
    const box = $("cohort-table");
    box.replaceChildren(table);
    if (scored.errors.length > limit) {
      const more = document.createElement("p");
      more.className = "note";
      more.textContent = `The first ${limit} of ${scored.errors.length} rows; the scored CSV holds them all.`;
      box.appendChild(more);
    }
    box.hidden = false;
  }

  // About: what site.py read from the model's metadata.
  config.about.forEach(([term, text]) => {
    const dt = document.createElement("dt"), dd = document.createElement("dd");
    dt.textContent = term;
    dd.textContent = text;
    $("about").append(dt, dd);
  });
})();
