// The model's metadata_props, read from the file's own bytes. onnxruntime-web's session does not
// expose them, and the embedder needs two: group_column and group_labels (the ONNX contract:
// text label k of group_labels is fed as the int64 code k + 1; -1 is any label the model lacks).
//
// An ONNX file is a protobuf ModelProto; metadata_props is its field 14, each entry a
// StringStringEntryProto (key: field 1, value: field 2). Reading them needs only varints and
// length-delimited fields; every other field is skipped by its wire type.

const METADATA_PROPS = 14;

function reader(bytes, start, end) {
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
  return {
    done: () => at >= end,
    // [field number, wire type, [from, to) of a length-delimited value or null]
    next() {
      const tag = varint();
      const field = Number(tag >> 3n), wire = Number(tag & 7n);
      if (wire === 0) { varint(); return [field, wire, null]; }
      if (wire === 1 || wire === 5) { at += wire === 1 ? 8 : 4; return [field, wire, null]; }
      if (wire !== 2) throw new Error(`not an ONNX file: wire type ${wire}`);
      const length = Number(varint());
      const from = at;
      at += length;
      if (at > end) throw new Error("not an ONNX file: a field runs past the end");
      return [field, wire, [from, at]];
    },
  };
}

export function readMetadata(bytes) {
  const text = new TextDecoder();
  const metadata = {};
  const model = reader(bytes, 0, bytes.length);
  while (!model.done()) {
    const [field, , span] = model.next();
    if (field !== METADATA_PROPS || !span) continue;
    const entry = reader(bytes, span[0], span[1]);
    let key = "", value = "";
    while (!entry.done()) {
      const [part, , where] = entry.next();
      if (where && part === 1) key = text.decode(bytes.subarray(...where));
      if (where && part === 2) value = text.decode(bytes.subarray(...where));
    }
    metadata[key] = value;
  }
  return metadata;
}
