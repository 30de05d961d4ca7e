// Colour maps as 256-entry lookup tables, and their legends.

function table(stops) {
  const lut = new Uint8ClampedArray(256 * 3);
  for (let i = 0; i < 256; i++) {
    const t = (i / 255) * (stops.length - 1);
    const k = Math.min(Math.floor(t), stops.length - 2);
    const f = t - k;
    for (let c = 0; c < 3; c++) lut[i * 3 + c] = stops[k][c] + (stops[k + 1][c] - stops[k][c]) * f;
  }
  return lut;
}

// Activations: viridis (perceptually even, readable in grey). CAM: inferno-like heat. Weights: blue-white-red.
export const VIRIDIS = table([[68, 1, 84], [59, 82, 139], [33, 145, 140], [94, 201, 98], [253, 231, 37]]);
export const HEAT = table([[0, 0, 4], [87, 16, 110], [188, 55, 84], [249, 142, 9], [252, 255, 164]]);
export const GREY = table([[0, 0, 0], [255, 255, 255]]);
export const DIVERGING = table([[33, 102, 172], [146, 197, 222], [247, 247, 247], [244, 165, 130], [178, 24, 43]]);

export function levelOf(value, min, max) {
  if (max <= min) return 0;
  return Math.max(0, Math.min(255, Math.round(((value - min) / (max - min)) * 255)));
}

// Paint `values` (row-major height x width) into `image` (an ImageData) at (x0, y0).
export function paint(image, values, offset, width, height, x0, y0, min, max, lut, alpha = 255) {
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const level = levelOf(values[offset + y * width + x], min, max);
      const p = ((y0 + y) * image.width + (x0 + x)) * 4;
      image.data[p] = lut[level * 3];
      image.data[p + 1] = lut[level * 3 + 1];
      image.data[p + 2] = lut[level * 3 + 2];
      image.data[p + 3] = typeof alpha === "function" ? alpha(level) : alpha;
    }
  }
}

export function legend(lut, low, high, label) {
  const canvas = document.createElement("canvas");
  canvas.width = 256;
  canvas.height = 1;
  const context = canvas.getContext("2d");
  const image = context.createImageData(256, 1);
  for (let i = 0; i < 256; i++) {
    image.data.set([lut[i * 3], lut[i * 3 + 1], lut[i * 3 + 2], 255], i * 4);
  }
  context.putImageData(image, 0, 0);
  canvas.className = "legend-bar";
  const box = document.createElement("div");
  box.className = "legend";
  box.setAttribute("role", "img");
  box.setAttribute("aria-label", `${label}: from ${low} to ${high}`);
  const ends = document.createElement("div");
  ends.className = "legend-ends";
  for (const text of [low, label, high]) {
    const span = document.createElement("span");
    span.textContent = text;
    ends.append(span);
  }
  box.append(canvas, ends);
  return box;
}
