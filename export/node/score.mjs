// Score students with model.onnx from Node: no Python, no preprocessing; the graph takes raw
// grade points (NaN for missing) and each student's group as the model's code: an integer code
// as it is, a text label (a model trained on "GP", "MS") by the metadata's group_labels, with the
// page's own rule (../web/rules.js groupCode).
//
//   cd export/node && npm install
//   node score.mjs ../../model/default/model.onnx '[[7.1, 6.8, null, 7.3]]' '[115]'
//   node score.mjs ../../my-run/model.onnx '[[11, 12]]' '["MS"]'
//
// prints one JSON line: {"semesters": 5, "prediction": [...], "low": [...], "high": [...]}.
// onnxruntime-web's wasm backend runs in Node as it does in a browser; onnxruntime-node works
// the same way where its install step can download its native binaries.
import { readFile } from "node:fs/promises";
import * as ort from "onnxruntime-web";
import "../web/rules.js";
import "../web/onnx_bytes.js";

const [modelPath, gradesJson, collegesJson] = process.argv.slice(2);
if (!modelPath || !gradesJson || !collegesJson) {
  console.error("usage: node score.mjs MODEL.onnx GRADES_JSON COLLEGES_JSON");
  process.exit(2);
}
ort.env.wasm.numThreads = 1;
const bytes = await readFile(modelPath);
const session = await ort.InferenceSession.create(bytes);
const metadata = globalThis.cgpaOnnxBytes.readMetadata(bytes);
const groups = { groupColumn: JSON.parse(metadata.group_column ?? '"College Code"'),
  groupLabels: JSON.parse(metadata.group_labels ?? "null") };
// The semester axis is fixed at the model's horizon: read it off the input's shape ["batch", S].
const semesters = session.inputMetadata.find((input) => input.name === "grades").shape[1];
const grades = JSON.parse(gradesJson);
const colleges = JSON.parse(collegesJson).map((value, i) => {
  try {
    return globalThis.cgpaRules.groupCode(value, groups);
  } catch (error) {
    console.error(`student ${i + 1}: ${error.message}`);
    process.exit(2);
  }
});
const flat = new Float32Array(grades.length * semesters).fill(NaN);
grades.forEach((row, i) => row.forEach((g, t) => {
  if (g !== null && !Number.isNaN(g)) flat[i * semesters + t] = g;
}));
const out = await session.run({
  grades: new ort.Tensor("float32", flat, [grades.length, semesters]),
  college: new ort.Tensor("int64", BigInt64Array.from(colleges, (c) => BigInt(c)), [colleges.length]),
});
const list = (tensor) => Array.from(tensor.data, (v) => (Number.isNaN(v) ? null : v));
console.log(JSON.stringify({ semesters, prediction: list(out.prediction), low: list(out.low), high: list(out.high) }));
