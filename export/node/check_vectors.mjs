// Check model.onnx against its conformance vectors (vectors.json, written by `cgpa export`)
// in Node: every case's inputs through onnxruntime-web's wasm backend, every output compared
// with the expected one (the same NaN-ness, an absolute difference within the file's tolerance).
//
//   cd export/node && npm install
//   node check_vectors.mjs ../../model/default/model.onnx ../../model/default/vectors.json
//
// prints one JSON line {"cases": N, "failures": [...]} and exits 1 when any case disagrees.
// An embedder in another language does the same with their runtime.
import { readFile } from "node:fs/promises";
import * as ort from "onnxruntime-web";

const [modelPath, vectorsPath] = process.argv.slice(2);
if (!modelPath || !vectorsPath) {
  console.error("usage: node check_vectors.mjs MODEL.onnx VECTORS.json");
  process.exit(2);
}
ort.env.wasm.numThreads = 1;
const session = await ort.InferenceSession.create(await readFile(modelPath));
const vectors = JSON.parse(await readFile(vectorsPath, "utf8"));
const tolerance = vectors.tolerance.absolute;
const failures = [];
for (const testCase of vectors.cases) {
  const { grades, college } = testCase.inputs;
  const width = grades[0].length;
  const flat = Float32Array.from(grades.flat(), (g) => (g === null ? NaN : g));
  // JSON.parse reads codes as doubles: exact below 2**53 and for the powers of two the cases use (2**62).
  const out = await session.run({
    grades: new ort.Tensor("float32", flat, [grades.length, width]),
    college: new ort.Tensor("int64", BigInt64Array.from(college, (c) => BigInt(c)), [college.length]),
  });
  for (const name of ["prediction", "low", "high"]) {
    const got = Array.from(out[name].data);
    const bad = testCase.outputs[name].some((expected, i) => (expected === null
      ? !Number.isNaN(got[i]) : Number.isNaN(got[i]) || Math.abs(got[i] - expected) > tolerance));
    if (bad) failures.push(`${testCase.name}: ${name} expected ${JSON.stringify(testCase.outputs[name])}, got ${JSON.stringify(got)}`);
  }
}
console.log(JSON.stringify({ cases: vectors.cases.length, failures }));
process.exit(failures.length ? 1 : 0);
