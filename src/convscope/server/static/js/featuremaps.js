// One layer's activation as a picture: a conv/pool output as a grid of all its channels, a dense output as a grid
// of units (128 as 8x16, 32 as 2x16, 10 as 1x10), a class output's units named by the model's class names. One
// canvas per layer, updated in place; hover (or arrow keys) reads a channel's range or a unit's value, click (or
// Enter) enlarges a channel.

import { h } from "./dom.js";
import { VIRIDIS, legend, paint } from "./colors.js";

const GAP = 1;
const UNIT = 6; // pixels per dense unit

export function denseGrid(count) {
  if (count <= 10) return [1, count];
  for (const columns of [16, 8]) if (count % columns === 0) return [count / columns, columns];
  return [Math.ceil(count / 16), 16];
}

function spatialGrid(channels) {
  const columns = 2 ** Math.ceil(Math.log2(Math.sqrt(channels))); // 32 -> 8x4, 64 -> 8x8
  return [Math.ceil(channels / columns), columns];
}

function range(values, from, to) {
  let min = Infinity;
  let max = -Infinity;
  for (let i = from; i < to; i++) {
    if (values[i] < min) min = values[i];
    if (values[i] > max) max = values[i];
  }
  return [min, max];
}

const fixed = (v) => (Math.abs(v) >= 100 ? v.toFixed(0) : v.toFixed(2));

export function createLayerView(name, kind, shape, { labels = null, onEnlarge = () => {} } = {}) {
  const spatial = shape.length === 3;
  const [channels, height, width] = spatial ? shape : [shape[0], UNIT, UNIT];
  const [rows, columns] = spatial ? spatialGrid(channels) : denseGrid(channels);
  const canvas = h("canvas", {
    class: `maps ${spatial ? "spatial" : "dense"}`, tabindex: "0",
    width: columns * (width + GAP) - GAP, height: rows * (height + GAP) - GAP,
    "aria-label": `${name}: ${spatial ? `${channels} feature maps of ${height}x${width}` : `${channels} units`}`,
  });
  const context = canvas.getContext("2d");
  const readout = h("p", { class: "readout", "aria-live": "polite", text: " " });
  const legendSlot = h("div");
  // Names under the units when they fit in one row; otherwise the readout names the hovered class.
  const labelRow = labels && rows === 1 ? h("div", { class: "unit-labels" },
    labels.map((l) => h("span", { text: l, title: l }))) : null;
  if (labelRow) labelRow.style.gridTemplateColumns = `repeat(${channels}, 1fr)`;
  const element = h("section", { class: `layer layer-${kind}`, "data-layer": name },
    h("h4", {}, h("span", { class: `kind kind-${kind}`, text: kind }), ` ${name} `,
      h("small", { text: shape.join("×") })),
    canvas, labelRow, legendSlot, readout);
  let tensor = null;
  let selected = -1;

  function cellAt(event) {
    const box = canvas.getBoundingClientRect();
    const x = ((event.clientX - box.left) / box.width) * canvas.width;
    const y = ((event.clientY - box.top) / box.height) * canvas.height;
    const column = Math.floor(x / (width + GAP));
    const row = Math.floor(y / (height + GAP));
    const index = row * columns + column;
    return index >= 0 && index < channels && column < columns ? index : -1;
  }

  function describe(index) {
    if (!tensor || index < 0) return " ";
    if (!spatial) return `${labels ? `class ${labels[index]}` : `unit ${index}`}: ${fixed(tensor.values[index])}`;
    const [min, max] = range(tensor.values, index * height * width, (index + 1) * height * width);
    return `channel ${index}: ${fixed(min)} to ${fixed(max)}`;
  }

  function select(index) {
    selected = index;
    readout.textContent = describe(index);
  }

  canvas.addEventListener("mousemove", (event) => select(cellAt(event)));
  canvas.addEventListener("mouseleave", () => select(-1));
  canvas.addEventListener("click", (event) => {
    const index = cellAt(event);
    if (spatial && index >= 0 && tensor) onEnlarge(name, index, channelOf(tensor, index, height, width));
  });
  canvas.addEventListener("keydown", (event) => {
    const step = { ArrowRight: 1, ArrowLeft: -1, ArrowDown: columns, ArrowUp: -columns }[event.key];
    if (step) {
      select(Math.max(0, Math.min(channels - 1, (selected < 0 ? 0 : selected + step))));
      event.preventDefault();
    } else if (event.key === "Enter" && spatial && tensor) {
      // The dialog takes the focus; without preventDefault the same Enter would press its Close button.
      event.preventDefault();
      if (selected < 0) select(0);
      onEnlarge(name, selected, channelOf(tensor, selected, height, width));
    }
  });

  return {
    element,
    clear() {
      tensor = null;
      context.clearRect(0, 0, canvas.width, canvas.height);
      legendSlot.replaceChildren();
      readout.textContent = " ";
    },
    update(next, winner = -1) {
      tensor = next;
      const image = context.createImageData(canvas.width, canvas.height);
      for (let c = 0; c < channels; c++) {
        const x0 = (c % columns) * (width + GAP);
        const y0 = Math.floor(c / columns) * (height + GAP);
        if (spatial) {
          paint(image, next.values, c * height * width, width, height, x0, y0, next.min, next.max, VIRIDIS);
        } else {
          const cell = new Float32Array(width * height).fill(next.values[c]);
          paint(image, cell, 0, width, height, x0, y0, next.min, next.max, VIRIDIS);
        }
      }
      context.putImageData(image, 0, 0);
      if (winner >= 0) {
        context.strokeStyle = "#e4572e";
        context.lineWidth = 1;
        context.strokeRect((winner % columns) * (width + GAP) + 0.5,
          Math.floor(winner / columns) * (height + GAP) + 0.5, width - 1, height - 1);
      }
      legendSlot.replaceChildren(legend(VIRIDIS, fixed(next.min), fixed(next.max), "activation"));
      readout.textContent = describe(selected);
    },
  };
}

function channelOf(tensor, index, height, width) {
  const values = tensor.values.slice(index * height * width, (index + 1) * height * width);
  const [min, max] = range(values, 0, values.length);
  return { values, height, width, min, max };
}

// Draw one channel big, on its own scale, into a canvas.
export function drawChannel(canvas, channel) {
  canvas.width = channel.width;
  canvas.height = channel.height;
  const context = canvas.getContext("2d");
  const image = context.createImageData(channel.width, channel.height);
  paint(image, channel.values, 0, channel.width, channel.height, 0, 0, channel.min, channel.max, VIRIDIS);
  context.putImageData(image, 0, 0);
}
