// Decoding the API's compact tensors: 8-bit levels between min and max, zlib-compressed, base64
// ("uint8-zlib-base64"); a ReLU or flatten may come as a reference to the layer it is computed from.

async function inflate(base64) {
  const bytes = Uint8Array.from(atob(base64), (c) => c.charCodeAt(0));
  const stream = new Blob([bytes]).stream().pipeThrough(new DecompressionStream("deflate"));
  return new Uint8Array(await new Response(stream).arrayBuffer());
}

// -> {shape, values: Float32Array, min, max}. With a range per channel ("uint8-zlib-base64-channels"), min and
// max are arrays, one per channel (the first dimension).
export async function decodeTensor(encoded) {
  const levels = await inflate(encoded.data);
  const values = new Float32Array(levels.length);
  if (Array.isArray(encoded.min)) {
    const plane = levels.length / encoded.min.length;
    encoded.min.forEach((low, c) => {
      const step = (encoded.max[c] - low) / 255;
      for (let i = c * plane; i < (c + 1) * plane; i++) values[i] = low + levels[i] * step;
    });
  } else {
    const step = (encoded.max - encoded.min) / 255;
    for (let i = 0; i < levels.length; i++) values[i] = encoded.min + levels[i] * step;
  }
  return { shape: encoded.shape, values, min: encoded.min, max: encoded.max };
}

function derive(encoded, source) {
  if (encoded.encoding === "reshape") return { ...source, shape: encoded.shape };
  const values = source.values.map((v) => (v > 0 ? v : 0));
  return { shape: encoded.shape, values, min: Math.max(0, source.min), max: Math.max(0, source.max) };
}

// Every layer of a predict answer, in order, each with its decoded `tensor`.
export async function decodeLayers(layers) {
  const decoded = new Map();
  await Promise.all(layers.filter((l) => !l.activation.of)
    .map(async (l) => decoded.set(l.name, await decodeTensor(l.activation))));
  for (const layer of layers) {
    if (layer.activation.of) decoded.set(layer.name, derive(layer.activation, decoded.get(layer.activation.of)));
  }
  return layers.map((layer) => ({ ...layer, tensor: decoded.get(layer.name) }));
}
