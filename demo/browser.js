// The third column: the same model.onnx run by onnxruntime-web in the visitor's own browser.
// A JS-only Gradio event: it receives the exact question the server asked its runtimes
// ({grades: null for missing, college, prediction: the server's onnxruntime answer}) and returns
// the text of the "your browser" field. Its config is filled in by demo/tabs/student.py:
// {ortBase, model (base64 of model.onnx), semesters}.
async (asked) => {
  const config = __CONFIG__;
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
    const row = Float32Array.from(asked.grades, (g) => (g === null ? NaN : g));
    const started = performance.now();
    const out = await session.run({
      grades: new ort.Tensor("float32", row, [1, config.semesters]),
      college: new ort.Tensor("int64", BigInt64Array.of(BigInt(asked.college)), [1]),
    });
    const ms = performance.now() - started;
    const value = out.prediction.data[0];
    const difference = Math.abs(value - asked.prediction);
    return `${value.toFixed(2)} (|browser - onnxruntime| = ${difference.toExponential(1)}; ${ms.toFixed(1)} ms here)`;
  } catch (error) {
    return `not available in this browser (${error.message}); nothing is wrong with the predictions beside it`;
  }
}
