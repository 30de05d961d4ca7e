// The model as a graph of taps (GET /api/models/{name}/architecture: every tap names its parents, "input" being
// the model input), and which cells of the shown taps below a cell depends on, found by walking the parents back
// through the taps that are not shown. Kernels, strides and padding of conv and pool taps narrow the field;
// linear layers and flattening widen it to everything; a concat picks its parent by channel.

const MAX_VISITS = 10_000; // a bound on the walk, for graphs with very many paths between shown taps
const MAX_CELLS = 20_000; // lines drawn for one hovered cell, at most

// name -> tap, the input included as a tap without parents.
export function tapsOf(architecture) {
  const taps = new Map([["input", { name: "input", kind: "input", output_shape: architecture.input_shape,
    parents: [] }]]);
  for (const layer of architecture.layers) taps.set(layer.name, layer);
  return taps;
}

// A field is the part of one tap's output a cell depends on: {channels: Set | null (all), y, x: [lo, hi] | null
// (all)}. Spatial outputs are (C, H, W); flat ones (N), where `channels` holds the units.
const ALL = { channels: null, y: null, x: null };

function mapChannels(channels, fn) {
  if (channels === null) return null;
  const mapped = new Set();
  for (const c of channels) {
    const d = fn(c);
    if (d !== null) mapped.add(d);
  }
  return mapped;
}

function through(range, size, stride, padding) {
  return range && [range[0] * stride - padding, range[1] * stride - padding + size - 1];
}

// A concat's parent `j` holds channels offset .. offset + its own count of the concat's output.
function concatChannels(tap, field, j, taps) {
  let offset = 0;
  for (const name of tap.parents.slice(0, j)) offset += taps.get(name)?.output_shape[0] ?? 0;
  const count = taps.get(tap.parents[j]).output_shape[0];
  return mapChannels(field.channels, (c) => (c >= offset && c < offset + count ? c - offset : null));
}

// The field of tap's parent `j` that `field` (of tap's output) depends on; null: none of it.
function toParent(tap, field, j, taps) {
  const from = tap.output_shape;
  const to = taps.get(tap.parents[j]).output_shape;
  if (tap.kind === "linear" || from.length !== to.length) return ALL; // dense, or flattened: everything below
  const channels = tap.kind === "concat" ? concatChannels(tap, field, j, taps)
    : tap.kind === "conv" || from[0] !== to[0] ? null : field.channels;
  if (channels !== null && channels.size === 0) return null;
  if (from.length !== 3) return { channels, y: null, x: null };
  if (tap.kernel) {
    const extent = (i) => (tap.kernel[i] - 1) * (tap.dilation?.[i] ?? 1) + 1; // a dilated kernel's reach
    return { channels, y: through(field.y, extent(0), tap.stride[0], tap.padding[0]),
      x: through(field.x, extent(1), tap.stride[1], tap.padding[1]) };
  }
  if (from[1] === to[1] && from[2] === to[2]) return { channels, y: field.y, x: field.x }; // element-wise
  return { channels, y: null, x: null }; // resized without a kernel we know (adaptive pooling): the whole map
}

function clip(range, size) {
  const [lo, hi] = range ?? [0, size - 1];
  return [Math.max(0, lo), Math.min(size - 1, hi)];
}

// The cells {c, y, x} of a tap of `shape` inside `fields` (each cell once).
function cellsIn(shape, fields, out) {
  const [channels, height, width] = shape.length === 3 ? shape : [shape[0], 1, 1];
  const seen = new Set();
  for (const field of fields) {
    const [y0, y1] = clip(field.y, height);
    const [x0, x1] = clip(field.x, width);
    for (const c of field.channels ?? Array.from({ length: channels }, (_, i) => i)) {
      if (c < 0 || c >= channels) continue;
      for (let y = y0; y <= y1; y++) {
        for (let x = x0; x <= x1; x++) {
          const key = (c * height + y) * width + x;
          if (seen.has(key)) continue;
          if (out.length >= MAX_CELLS) return;
          seen.add(key);
          out.push({ c, y, x });
        }
      }
    }
  }
}

// For cell {c, y, x} of tap `name`: Map(shown tap name -> its cells that the cell depends on). `shown` is the set
// of tap names drawn (the walk stops at them; "input" should be one).
export function dependsOn(taps, shown, name, { c, y, x }) {
  const spatial = taps.get(name).output_shape.length === 3;
  const fields = new Map();
  let visits = 0;
  const visit = (tapName, field) => {
    const tap = taps.get(tapName);
    tap.parents.forEach((parent, j) => {
      if (!taps.has(parent) || ++visits > MAX_VISITS) return;
      const next = toParent(tap, field, j, taps);
      if (next === null) return;
      if (shown.has(parent)) fields.set(parent, [...(fields.get(parent) || []), next]);
      else visit(parent, next);
    });
  };
  visit(name, { channels: new Set([c]), y: spatial ? [y, y] : null, x: spatial ? [x, x] : null });
  const cells = new Map();
  let total = 0;
  for (const [source, list] of fields) {
    const out = [];
    cellsIn(taps.get(source).output_shape, list, out);
    cells.set(source, out.slice(0, Math.max(0, MAX_CELLS - total)));
    total += out.length;
  }
  return cells;
}
