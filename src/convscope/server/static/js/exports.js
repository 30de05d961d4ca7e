// Saving what a view shows: a tensor as NumPy .npy (float32, its shape) or JSON ({shape, values} nested), and
// figures as PNG with their legends and captions drawn in, so the picture explains itself outside the app.

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
const LINE = 18;

function figureHeight(figure) {
  return SIDE + 10 + 14 + LINE + figure.caption.length * LINE;
}

// One figure with its top left corner at (x, y): the map, its legend's colour bar and end values, its caption.
function drawFigure(context, x, y, { map, bar, ends: [low, label, high], caption }) {
  context.imageSmoothingEnabled = false;
  context.drawImage(map, x, y, SIDE, SIDE);
  y += SIDE + 10;
  context.drawImage(bar, x, y, SIDE, 14);
  y += 14 + LINE - 4;
  context.fillStyle = "#222";
  context.font = "12px sans-serif";
  for (const [text, align, at] of [[low, "left", x], [label, "center", x + SIDE / 2], [high, "right", x + SIDE]]) {
    context.textAlign = align;
    context.fillText(text, at, y);
  }
  context.textAlign = "left";
  context.font = "13px sans-serif";
  for (const line of caption) {
    y += LINE;
    context.fillText(line, x, y, SIDE);
  }
}

// Figures side by side, under a title if given, as a PNG blob. Each figure: {map: canvas, bar: its legend's
// colour bar (a canvas), ends: [low, label, high] texts, caption: lines}.
export function figuresPng(figures, title = null) {
  const top = title ? PAD + LINE + 6 : PAD;
  const canvas = document.createElement("canvas");
  canvas.width = figures.length * (SIDE + PAD) + PAD;
  canvas.height = top + Math.max(...figures.map(figureHeight)) + PAD;
  const context = canvas.getContext("2d");
  context.fillStyle = "#fff";
  context.fillRect(0, 0, canvas.width, canvas.height);
  if (title) {
    context.fillStyle = "#111";
    context.font = "bold 15px sans-serif";
    context.fillText(title, PAD, PAD + LINE - 4, canvas.width - 2 * PAD);
  }
  figures.forEach((figure, k) => drawFigure(context, PAD + k * (SIDE + PAD), top, figure));
  return new Promise((resolve) => { canvas.toBlob(resolve, "image/png"); });
}
