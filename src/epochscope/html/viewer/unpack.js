// Decoding the packed arrays of the payload (see epochscope/html/encode.py): base64, deflate, byte planes, deltas.
const CTORS = { uint8: Uint8Array, uint16: Uint16Array, int32: Int32Array, uint32: Uint32Array, float32: Float32Array };

function b64bytes(s) {
  const bin = atob(s);
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out;
}

async function inflate(bytes) {
  const stream = new Blob([bytes]).stream().pipeThrough(new DecompressionStream("deflate"));
  return new Uint8Array(await new Response(stream).arrayBuffer());
}

async function unpack(spec) {
  const raw = await inflate(b64bytes(spec.b64));
  const T = CTORS[spec.dtype];
  const size = T.BYTES_PER_ELEMENT;
  const n = raw.length / size;
  let bytes = raw;
  if (size > 1) {  // undo the byte-plane shuffle
    bytes = new Uint8Array(raw.length);
    for (let b = 0; b < size; b++) {
      const off = b * n;
      for (let i = 0; i < n; i++) bytes[i * size + b] = raw[off + i];
    }
  }
  const arr = new T(bytes.buffer);
  if (spec.delta && spec.shape[0] > 1) {  // undo the per-epoch difference; typed arrays wrap like numpy
    const row = n / spec.shape[0];
    for (let i = row; i < n; i++) arr[i] = arr[i] + arr[i - row];
  }
  return arr;
}

// A plain (not deflated) array of the payload, decoded synchronously: the first view (encode.raw_array).
function rawArray(spec) {
  const bytes = b64bytes(spec.b64), T = CTORS[spec.dtype];
  return new T(bytes.buffer, 0, bytes.length / T.BYTES_PER_ELEMENT);
}

// The first view's point set: one epoch of positions, enough to draw before anything is inflated.
function firstSet(spec, full) {
  if (!spec) return null;
  const coords = rawArray(spec.coords), labels = rawArray(spec.labels), n = labels.length;
  return { n, coords, labels, index: null, predictions: null, forgetting: null, unknown: full.unknownClass,
           outside: full.outsideClass,
           mostForgotten: [], oneEpoch: true, texts: full.texts || null,
           sx: new Float32Array(n).fill(NaN), sy: new Float32Array(n).fill(NaN) };
}

async function unpackSet(set) {
  if (!set) return null;
  const [index, coords, labels, predictions, forgetting, placement, neighbourClass, neighbourCount] = await Promise.all(
    [set.index, set.coords, set.labels, set.predictions, set.forgetting, set.placement, set.neighbourClass,
     set.neighbourCount].map((s) => (s ? unpack(s) : null)));
  const n = set.count;
  return { n, index, coords, labels, predictions, forgetting, unknown: set.unknownClass, outside: set.outsideClass,
           placement, neighbourClass, neighbourCount, neighbours: set.neighbours || 0,
           mostForgotten: set.mostForgotten || [], oneEpoch: false, texts: set.texts || null,
           sx: new Float32Array(n).fill(NaN), sy: new Float32Array(n).fill(NaN) };
}
