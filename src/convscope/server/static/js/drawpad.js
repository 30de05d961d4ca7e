// A square drawing canvas: pen and eraser, undo, clear; mouse, pen and touch through pointer events.
// The pad is white with dark ink, like paper; the server's preprocessing finds the ink either way.

import { h } from "./dom.js";

export const PAD_SIZE = 280; // canvas pixels; 10x the 28x28 model input

export function createDrawpad({ onStroke, onStrokeEnd }) {
  const canvas = h("canvas", { class: "pad", width: PAD_SIZE, height: PAD_SIZE, "aria-label": "Drawing area" });
  const overlay = h("canvas", { class: "pad-overlay", width: PAD_SIZE, height: PAD_SIZE, "aria-hidden": "true" });
  const context = canvas.getContext("2d", { willReadFrequently: true });
  const history = [];
  let tool = "pen";
  let width = 22; // on the 280-pixel pad: about 2 pixels at 28x28, near MNIST's stroke
  let drawing = false;
  let last = null;
  let inked = false;

  function reset() {
    context.fillStyle = "#fff";
    context.fillRect(0, 0, PAD_SIZE, PAD_SIZE);
    inked = false;
  }
  reset();

  function point(event) {
    const box = canvas.getBoundingClientRect();
    return [(event.clientX - box.left) * (PAD_SIZE / box.width), (event.clientY - box.top) * (PAD_SIZE / box.height)];
  }

  function segment(from, to) {
    context.strokeStyle = tool === "pen" ? "#000" : "#fff";
    context.lineWidth = tool === "pen" ? width : width * 2;
    context.lineCap = "round";
    context.lineJoin = "round";
    context.beginPath();
    context.moveTo(...from);
    context.lineTo(...to);
    context.stroke();
  }

  canvas.addEventListener("pointerdown", (event) => {
    if (event.button !== 0) return;
    canvas.setPointerCapture(event.pointerId);
    history.push(context.getImageData(0, 0, PAD_SIZE, PAD_SIZE));
    if (history.length > 30) history.shift();
    drawing = true;
    last = point(event);
    segment(last, last);
    inked = inked || tool === "pen";
    event.preventDefault();
  });
  canvas.addEventListener("pointermove", (event) => {
    if (!drawing) return;
    const events = event.getCoalescedEvents ? event.getCoalescedEvents() : [event];
    for (const e of events.length ? events : [event]) {
      const next = point(e);
      segment(last, next);
      last = next;
    }
    onStroke();
  });
  const end = () => {
    if (!drawing) return;
    drawing = false;
    onStrokeEnd();
  };
  canvas.addEventListener("pointerup", end);
  canvas.addEventListener("pointercancel", end);

  return {
    canvas,
    overlay,
    get inked() { return inked; },
    // Whether the pad is all white (erased or undone down to nothing); stops at the first mark, so a drawing
    // costs a few pixels' reading and an empty pad one pass (about 0.1 ms).
    blank() {
      const pixels = context.getImageData(0, 0, PAD_SIZE, PAD_SIZE).data;
      for (let i = 0; i < pixels.length; i += 4) if (pixels[i] < 250) return false;
      return true;
    },
    setTool(name) { tool = name; },
    setWidth(pixels) { width = pixels; },
    undo() {
      const previous = history.pop();
      if (previous) context.putImageData(previous, 0, 0);
      return Boolean(previous);
    },
    clear() {
      history.push(context.getImageData(0, 0, PAD_SIZE, PAD_SIZE));
      reset();
    },
    // Show an image (a sample or an upload) on the pad, fitted and centred; returns how it was placed.
    show(image) {
      reset();
      const scale = PAD_SIZE / Math.max(image.width, image.height);
      const w = image.width * scale;
      const hgt = image.height * scale;
      const placement = { scale, dx: (PAD_SIZE - w) / 2, dy: (PAD_SIZE - hgt) / 2 };
      context.imageSmoothingEnabled = true;
      context.drawImage(image, placement.dx, placement.dy, w, hgt);
      inked = true;
      return placement;
    },
    dataUrl() { return canvas.toDataURL("image/png"); },
  };
}

// The pad's tools: pen and eraser, pen width, undo and clear. `onUndo()` after an undo that changed the pad,
// `onClear()` after clearing it.
export function padToolbar(pad, { onUndo, onClear }) {
  const tools = {};
  const setTool = (name) => {
    pad.setTool(name);
    for (const [tool, button] of Object.entries(tools)) button.setAttribute("aria-pressed", String(tool === name));
  };
  tools.pen = h("button", { type: "button", "aria-pressed": "true", text: "Pen", onclick: () => setTool("pen") });
  tools.eraser = h("button", { type: "button", "aria-pressed": "false", text: "Eraser",
    onclick: () => setTool("eraser") });
  const width = h("input", { type: "range", min: "8", max: "40", value: "22", "aria-label": "Pen width",
    oninput: () => pad.setWidth(Number(width.value)) });
  return h("div", { class: "toolbar" }, tools.pen, tools.eraser, h("label", {}, "Width ", width),
    h("button", { type: "button", text: "Undo", onclick: () => pad.undo() && onUndo() }),
    h("button", { type: "button", text: "Clear", onclick: () => { pad.clear(); onClear(); } }));
}
