// What onnxruntime-web does not give, read from (or written into) an ONNX file's own bytes: a
// protobuf ModelProto, walked with varints and length-delimited fields, every other field
// skipped by its wire type. No DOM, no runtime: shared by cgpa.js and the Node scripts.
//
// readMetadata(bytes): the model's metadata_props as an object. onnxruntime-web's session does
// not expose them, and an embedder needs two: group_column and group_labels (the ONNX contract:
// text label k of group_labels is fed as the int64 code k + 1; -1 is any label the model lacks).
//
// withInputs(bytes, {below: [7.5]}): explain.onnx's optional inputs (credits, below) are
// initializers that are also graph inputs: onnxruntime in Python, C or Java takes them as feeds,
// but onnxruntime-web lists only the graph's other inputs and refuses a feed of any other name
// ("invalid input 'below'"). So the page and Node set them in a copy of the file, to create a
// session from. The values keep their size (one float per element), so only those bytes change
// and every length in the protobuf stays as it was.
(function (exports) {
  "use strict";

  // The protobuf fields on the way: ModelProto.graph, GraphProto.input and .initializer,
  // ValueInfoProto.name, and TensorProto's element type, name and two ways of holding floats.
  const MODEL_GRAPH = 7, MODEL_METADATA = 14, GRAPH_INPUT = 11, GRAPH_INITIALIZER = 5, VALUE_NAME = 1;
  const TENSOR_TYPE = 2, TENSOR_FLOATS = 4, TENSOR_NAME = 8, TENSOR_RAW = 9, FLOAT = 1;

  // Each field of the message in bytes[start, end): {field, value (a varint), span ([from, to)
  // of a length-delimited value)}; fixed-width values are skipped.
  function* fields(bytes, start, end) {
    let at = start;
    const varint = () => {
      let value = 0n;
      for (let shift = 0n; ; shift += 7n) {
        if (at >= end || shift > 63n) throw new Error("not an ONNX file: a varint runs past its field");
        const byte = bytes[at++];
        value |= BigInt(byte & 0x7f) << shift;
        if (byte < 0x80) return value;
      }
    };
    while (at < end) {
      const tag = varint();
      const field = Number(tag >> 3n), wire = Number(tag & 7n);
      if (wire === 0) { yield { field, value: varint() }; continue; }
      if (wire === 1 || wire === 5) { at += wire === 1 ? 8 : 4; continue; }
      if (wire !== 2) throw new Error(`not an ONNX file: wire type ${wire}`);
      const length = Number(varint()), from = at;
      at += length;
      if (at > end) throw new Error("not an ONNX file: a field runs past the end");
      yield { field, span: [from, at] };
    }
  }

  const text = (bytes, [from, to]) => new TextDecoder().decode(bytes.subarray(from, to));
  const spanOf = (bytes, [from, to], wanted) => {
    for (const f of fields(bytes, from, to)) if (f.field === wanted && f.span) return f.span;
    return null;
  };

  function readMetadata(bytes) {
    const metadata = {};
    for (const f of fields(bytes, 0, bytes.length)) {
      if (f.field !== MODEL_METADATA || !f.span) continue;
      const key = spanOf(bytes, f.span, 1), value = spanOf(bytes, f.span, 2);  // StringStringEntryProto
      metadata[key ? text(bytes, key) : ""] = value ? text(bytes, value) : "";
    }
    return metadata;
  }

  function withInputs(bytes, values) {
    const copy = Uint8Array.from(bytes);
    const graph = spanOf(bytes, [0, bytes.length], MODEL_GRAPH);
    if (!graph) throw new Error("not an ONNX file: no graph");
    const inputs = new Set(), stored = new Map(); // initializer name -> {type, span of its floats}
    for (const f of fields(bytes, ...graph)) {
      if (f.field === GRAPH_INPUT && f.span) inputs.add(text(bytes, spanOf(bytes, f.span, VALUE_NAME) ?? [0, 0]));
      if (f.field !== GRAPH_INITIALIZER || !f.span) continue;
      const tensor = { type: 0, name: "", floats: null };
      for (const t of fields(bytes, ...f.span)) {
        if (t.field === TENSOR_TYPE && t.value !== undefined) tensor.type = Number(t.value);
        if (t.field === TENSOR_NAME && t.span) tensor.name = text(bytes, t.span);
        if ((t.field === TENSOR_RAW || t.field === TENSOR_FLOATS) && t.span) tensor.floats = t.span;
      }
      stored.set(tensor.name, tensor);
    }
    for (const [name, given] of Object.entries(values)) {
      const tensor = stored.get(name);
      if (!tensor || !inputs.has(name)) throw new Error(`the model has no optional input '${name}'`);
      if (tensor.type !== FLOAT || !tensor.floats) throw new Error(`optional input '${name}': not stored as float32 values`);
      const floats = Float32Array.from(given);
      const [from, to] = tensor.floats;
      if (to - from !== floats.byteLength) {
        throw new Error(`optional input '${name}': expected ${(to - from) / 4} values, got ${floats.length}`);
      }
      // Little-endian, as ONNX stores raw data and packed floats alike.
      const view = new DataView(copy.buffer, copy.byteOffset + from, floats.byteLength);
      floats.forEach((v, k) => view.setFloat32(4 * k, v, true));
    }
    return copy;
  }

  Object.assign(exports, { readMetadata, withInputs });
})(typeof window === "undefined" ? globalThis.cgpaOnnxBytes = {} : (window.cgpaOnnxBytes = {}));
