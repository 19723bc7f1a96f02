// The model in this page. For people: the form. For programs and tests:
//   window.cgpa.ready                      a Promise, resolved once the model is loaded
//   window.cgpa.predict(grades, colleges)  grades: per-student arrays of numbers (NaN or null
//                                          for missing); colleges: codes. Resolves to
//                                          {prediction, low, high}, NaN where nothing to predict.
(function () {
  "use strict";
  const config = JSON.parse(document.getElementById("cgpa-config").textContent);
  ort.env.wasm.numThreads = 1; // threads need cross-origin isolation, which a static host rarely sets
  ort.env.wasm.wasmPaths = new URL(config.wasmPaths, document.baseURI).href; // module imports need a URL
  const session = ort.InferenceSession.create(config.model, { executionProviders: ["wasm"] });

  function isMissing(value) {
    return value === null || value === undefined || value === "" || Number.isNaN(value);
  }

  async function predict(grades, colleges) {
    if (grades.length !== colleges.length) throw new Error("grades and colleges differ in length");
    const S = config.semesters, n = grades.length;
    const flat = new Float32Array(n * S).fill(NaN);
    grades.forEach((row, i) => {
      if (row.length > S) throw new Error(`student ${i}: the model knows ${S} semesters, got ${row.length}`);
      row.forEach((g, t) => { if (!isMissing(g)) flat[i * S + t] = Number(g); });
    });
    const codes = BigInt64Array.from(colleges, (c) => BigInt(Math.trunc(Number(c))));
    const out = await (await session).run({
      grades: new ort.Tensor("float32", flat, [n, S]),
      college: new ort.Tensor("int64", codes, [n]),
    });
    return { prediction: Array.from(out.prediction.data), low: Array.from(out.low.data),
             high: Array.from(out.high.data) };
  }

  window.cgpa = { ready: session.then(() => undefined), predict, semesters: config.semesters };

  // The form: one field per semester, checked the way the Python runtime checks them.
  const gradesBox = document.getElementById("grades");
  const fields = config.semesterNames.map((name, t) => {
    const label = document.createElement("label");
    label.textContent = `${name} semester`;
    const input = document.createElement("input");
    input.id = `grade-${t + 1}`;
    input.inputMode = "decimal";
    label.appendChild(input);
    gradesBox.appendChild(label);
    return input;
  });
  const college = document.getElementById("college");
  college.value = String(config.colleges[0]);
  const result = document.getElementById("result");
  document.getElementById("about").textContent =
    `Known colleges: ${config.colleges.join(", ")} (any other code uses the shared "unknown" slot). ` +
    `onnxruntime-web ${config.ortVersion}; model ${config.cell}, trained on ${config.data}.`;

  function show(text, isError) {
    result.textContent = text;
    result.className = isError ? "error" : "";
  }

  function readForm() {
    const grades = [];
    fields.forEach((input) => input.setAttribute("aria-invalid", "false"));
    for (const [t, input] of fields.entries()) {
      const text = input.value.trim();
      const value = text === "" ? NaN : Number(text);
      if (text !== "" && !(value >= 0 && value <= 10)) {
        input.setAttribute("aria-invalid", "true");
        throw new Error(`semester ${t + 1}: expected a grade point between 0 and 10 or blank, got "${text.slice(0, 20)}"`);
      }
      grades.push(value);
    }
    const code = Number(college.value.trim());
    if (college.value.trim() === "" || !Number.isInteger(code) || code < 0) {
      throw new Error("college: expected a non-negative integer college code");
    }
    const observed = grades.map((g, t) => (Number.isNaN(g) ? -1 : t)).filter((t) => t >= 0);
    if (observed.length === 0) throw new Error("grades: no grade given; enter at least one semester");
    const last = observed[observed.length - 1];
    if (last === config.semesters - 1) {
      throw new Error(`grades: semester ${config.semesters} is already known, so there is nothing left to predict`);
    }
    return { grades, code, semester: last + 2 };
  }

  document.getElementById("form").addEventListener("submit", async (event) => {
    event.preventDefault();
    let input;
    try {
      input = readForm();
    } catch (error) {
      show(error.message, true);
      return;
    }
    const started = performance.now();
    const out = await predict([input.grades], [input.code]);
    const ms = performance.now() - started;
    const name = config.semesterNames[input.semester - 1];
    show(`${name} semester: ${out.prediction[0].toFixed(2)} (${config.intervalLevel} interval ` +
         `${out.low[0].toFixed(2)} to ${out.high[0].toFixed(2)}), computed in your browser in ${ms.toFixed(1)} ms`);
  });

  session.then(() => show("Model loaded: enter grades and press Predict."),
               (error) => show(`The model could not be loaded: ${error.message}`, true));
})();
