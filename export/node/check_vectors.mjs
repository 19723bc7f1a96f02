// Check model.onnx and explain.onnx against their conformance vectors (vectors.json, written by
// `cgpa export`) in Node: every case's inputs through onnxruntime-web's wasm backend, every
// output compared with the expected one (the same NaN-ness, an absolute difference within the
// file's tolerance): model.onnx's forecast, and explain.onnx's rest of the degree (each case's
// `trajectory`), with the case's `options` when it has them and the file's defaults otherwise.
//
//   cd export/node && npm install
//   node check_vectors.mjs ../../model/default/model.onnx ../../model/default/vectors.json [EXPLAIN.onnx]
//
// explain.onnx is looked for beside model.onnx unless named. Prints one JSON line
// {"cases": N, "trajectory_cases": N, "defaults_left_out": N, "failures": [...]} and exits 1
// when any output disagrees. An embedder in another language does the same with their runtime.
import { readFile } from "node:fs/promises";
import { dirname, join } from "node:path";
import * as ort from "onnxruntime-web";
import "../web/onnx_bytes.js";

const [modelPath, vectorsPath, explainArgument] = process.argv.slice(2);
if (!modelPath || !vectorsPath) {
  console.error("usage: node check_vectors.mjs MODEL.onnx VECTORS.json [EXPLAIN.onnx]");
  process.exit(2);
}
ort.env.wasm.numThreads = 1;
const vectors = JSON.parse(await readFile(vectorsPath, "utf8"));
const session = await ort.InferenceSession.create(await readFile(modelPath));
const explainBytes = await readFile(explainArgument ?? join(dirname(modelPath), vectors.trajectory_model ?? "explain.onnx"));
// onnxruntime warns at every load that an input with a default is not folded as a constant: by design.
const QUIET = { logSeverityLevel: 3 };
const explainer = await ort.InferenceSession.create(explainBytes, QUIET);
const tolerance = vectors.tolerance.absolute;
const failures = [];
let trajectoryCases = 0, defaultsLeftOut = 0;

// onnxruntime-web refuses feeds for an initializer (see ../web/onnx_bytes.js): a case's options
// go into a copy of the file; a case without them runs the file as it is, its inputs left out.
async function explainerFor(options) {
  if (!options) return explainer;
  const values = { ...(options.credits ? { credits: options.credits } : {}),
    ...(options.below !== undefined ? { below: [options.below] } : {}) };
  return ort.InferenceSession.create(globalThis.cgpaOnnxBytes.withInputs(explainBytes, values), QUIET);
}

// Expected and got as flat arrays; null expected is NaN.
function compare(caseName, name, expected, got) {
  const flat = [expected].flat(Infinity);
  const bad = flat.length !== got.length || flat.some((e, i) => (e === null
    ? !Number.isNaN(got[i]) : Number.isNaN(got[i]) || Math.abs(got[i] - e) > tolerance));
  if (bad) failures.push(`${caseName}: ${name} expected ${JSON.stringify(expected)}, got ${JSON.stringify(got)}`);
}

for (const testCase of vectors.cases) {
  const { grades, college } = testCase.inputs;
  const width = grades[0].length;
  const flat = Float32Array.from(grades.flat(), (g) => (g === null ? NaN : g));
  // JSON.parse reads codes as doubles: exact below 2**53 and for the powers of two the cases use (2**62).
  const feeds = () => ({
    grades: new ort.Tensor("float32", flat, [grades.length, width]),
    college: new ort.Tensor("int64", BigInt64Array.from(college, (c) => BigInt(c)), [college.length]),
  });
  const out = await session.run(feeds());
  for (const name of ["prediction", "low", "high"]) compare(testCase.name, name, testCase.outputs[name], Array.from(out[name].data));
  if (!testCase.trajectory) {
    failures.push(`${testCase.name}: no trajectory outputs in ${vectorsPath} (written before explain.onnx had them?)`);
    continue;
  }
  const ahead = await (await explainerFor(testCase.options)).run(feeds());
  trajectoryCases++;
  if (!testCase.options) defaultsLeftOut++;
  for (const [name, expected] of Object.entries(testCase.trajectory)) {
    if (!ahead[name]) failures.push(`${testCase.name}: explain.onnx has no output ${name}`);
    else compare(testCase.name, name, expected, Array.from(ahead[name].data));
  }
}
console.log(JSON.stringify({ cases: vectors.cases.length, trajectory_cases: trajectoryCases,
  defaults_left_out: defaultsLeftOut, failures }));
process.exit(failures.length ? 1 : 0);
