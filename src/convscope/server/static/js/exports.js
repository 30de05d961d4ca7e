// Saving what a view shows: a tensor as NumPy .npy (float32, its shape) or JSON ({shape, values} nested), and a
// figure as PNG with its legend and caption drawn in, so the picture explains itself outside the app.

// The API's exact values ("float32-le-base64") -> Float32Array.
export function decodeExact(encoded) {
  const bytes = Uint8Array.from(atob(encoded.data), (c) => c.charCodeAt(0));
  return new Float32Array(bytes.buffer);
}

export function save(blob, filename) {
  const link = document.createElement("a");
  link.href = URL.createObjectURL(blob);
  link.download = filename;
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(link.href), 1000);
}

// NPY format 1.0: magic, version, a little-endian header length, a Python dict literal padded with spaces to a
// multiple of 64 bytes in all, then the raw little-endian float32 values in C order.
export function npyBlob(values, shape) {
  const dims = shape.length === 1 ? `${shape[0]},` : shape.join(", ");
  let header = `{'descr': '<f4', 'fortran_order': False, 'shape': (${dims}), }`;
  const unpadded = 10 + header.length + 1;
  header += " ".repeat((64 - (unpadded % 64)) % 64) + "\n";
  const preamble = new Uint8Array(10);
  preamble.set([0x93, ..."NUMPY"].map((c) => (typeof c === "string" ? c.charCodeAt(0) : c)));
  preamble.set([1, 0, header.length & 0xff, header.length >> 8], 6);
  return new Blob([preamble, header, values], { type: "application/octet-stream" });
}

// [H, W] values as nested rows.
function nested(values, shape) {
  const [height, width] = shape;
  return Array.from({ length: height }, (_, y) => Array.from(values.subarray(y * width, (y + 1) * width)));
}

export function jsonBlob(values, shape, about) {
  return new Blob([JSON.stringify({ ...about, shape, values: nested(values, shape) })], { type: "application/json" });
}

const SIDE = 280; // px a map is drawn at in an exported figure (nearest neighbour: a 28x28 map stays crisp)
const PAD = 12;

// The figure (a map's canvas, its legend's colour bar and end values, and a caption of one or more lines) as a
// PNG blob.
export function figurePng(mapCanvas, legendBar, [low, label, high], captionLines) {
  const lineHeight = 18;
  const canvas = document.createElement("canvas");
  canvas.width = SIDE + 2 * PAD;
  canvas.height = PAD + SIDE + 10 + 14 + lineHeight + captionLines.length * lineHeight + PAD;
  const context = canvas.getContext("2d");
  context.fillStyle = "#fff";
  context.fillRect(0, 0, canvas.width, canvas.height);
  context.imageSmoothingEnabled = false;
  context.drawImage(mapCanvas, PAD, PAD, SIDE, SIDE);
  let y = PAD + SIDE + 10;
  context.drawImage(legendBar, PAD, y, SIDE, 14);
  y += 14 + lineHeight - 4;
  context.fillStyle = "#222";
  context.font = "12px sans-serif";
  context.textAlign = "left";
  context.fillText(low, PAD, y);
  context.textAlign = "center";
  context.fillText(label, PAD + SIDE / 2, y);
  context.textAlign = "right";
  context.fillText(high, PAD + SIDE, y);
  context.textAlign = "left";
  context.font = "13px sans-serif";
  for (const line of captionLines) {
    y += lineHeight;
    context.fillText(line, PAD, y, SIDE);
  }
  return new Promise((resolve) => { canvas.toBlob(resolve, "image/png"); });
}
