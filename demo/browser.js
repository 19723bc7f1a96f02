// The third column: the same model.onnx run by onnxruntime-web in the visitor's own browser.
// A JS-only Gradio event: it receives the grade fields, the college code and the server's
// onnxruntime prediction, and returns the text of the "your browser" field. Its config is filled
// in by demo/app.py: {ortBase, model (base64 of model.onnx), semesters}.
async (...values) => {
  const config = __CONFIG__;
  const [grades, college, serverValue] = [values.slice(0, config.semesters), values[config.semesters],
                                          values[config.semesters + 1]];
  try {
    if (!window.cgpaBrowserSession) {
      window.cgpaBrowserSession = (async () => {
        await new Promise((resolve, reject) => {
          const script = document.createElement("script");
          script.src = config.ortBase + "ort.wasm.min.js";
          script.onload = resolve;
          script.onerror = () => reject(new Error("onnxruntime-web could not be loaded"));
          document.head.appendChild(script);
        });
        ort.env.wasm.numThreads = 1;
        ort.env.wasm.wasmPaths = config.ortBase;
        const bytes = Uint8Array.from(atob(config.model), (c) => c.charCodeAt(0));
        return ort.InferenceSession.create(bytes, { executionProviders: ["wasm"] });
      })();
      window.cgpaBrowserSession.catch(() => { window.cgpaBrowserSession = null; });
    }
    const session = await window.cgpaBrowserSession;
    const row = new Float32Array(config.semesters).fill(NaN);
    grades.forEach((g, t) => { if (g !== null && String(g).trim() !== "") row[t] = Number(g); });
    // With the final semester given, the server predicted it from the earlier ones (a hindcast).
    if (!Number.isNaN(row[config.semesters - 1])) row[config.semesters - 1] = NaN;
    const started = performance.now();
    const out = await session.run({
      grades: new ort.Tensor("float32", row, [1, config.semesters]),
      college: new ort.Tensor("int64", BigInt64Array.of(BigInt(Math.trunc(Number(college)))), [1]),
    });
    const ms = performance.now() - started;
    const value = out.prediction.data[0];
    const difference = Math.abs(value - Number(serverValue));
    return `${value.toFixed(2)} (|browser - onnxruntime| = ${difference.toExponential(1)}; ${ms.toFixed(1)} ms here)`;
  } catch (error) {
    return `not available in this browser (${error.message}); nothing is wrong with the predictions beside it`;
  }
}
