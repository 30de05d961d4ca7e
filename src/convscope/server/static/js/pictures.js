// Decoded tensors as pictures on canvases: a map [H, W] through a colour table, and a model input as the model saw
// it ([H, W] for one channel, [3, H, W] as colour), with a CAM laid over it.

import { HEAT, levelOf, paint } from "./colors.js";

export const CAM_ALPHA = (level) => Math.round(40 + (level / 255) * 170); // hot parts opaque, cold parts faint

// [H, W] or [1, H, W] -> [height, width]; anything else is not one map.
function mapSize(shape) {
  if (shape.length === 2) return shape;
  if (shape.length === 3 && shape[0] === 1) return shape.slice(1);
  throw new Error(`a map of shape ${shape.join("×")} cannot be drawn as one picture`);
}

// `range`: the values drawn as the table's two ends (default: the map's own min and max).
export function paintMap(canvas, tensor, lut, { alpha = 255, range = [tensor.min, tensor.max] } = {}) {
  const [height, width] = mapSize(tensor.shape);
  canvas.width = width;
  canvas.height = height;
  const context = canvas.getContext("2d");
  const image = context.createImageData(width, height);
  paint(image, tensor.values, 0, width, height, 0, 0, range[0], range[1], lut, alpha);
  context.putImageData(image, 0, 0);
}

// Three channels as red, green and blue on one scale (the input's min to max), so colours keep their balance.
function paintColour(canvas, tensor) {
  const [, height, width] = tensor.shape;
  canvas.width = width;
  canvas.height = height;
  const context = canvas.getContext("2d");
  const image = context.createImageData(width, height);
  const plane = height * width;
  for (let i = 0; i < plane; i++) {
    for (let c = 0; c < 3; c++) image.data[i * 4 + c] = levelOf(tensor.values[c * plane + i], tensor.min, tensor.max);
    image.data[i * 4 + 3] = 255;
  }
  context.putImageData(image, 0, 0);
}

export function paintInput(canvas, tensor, lut) {
  if (tensor.shape.length === 3 && tensor.shape[0] === 3) paintColour(canvas, tensor);
  else paintMap(canvas, tensor, lut);
}

// A CAM or saliency map (0 to 1) in heat colours; with `alpha`, transparent enough to lay over something else.
export function paintHeat(canvas, tensor, alpha = 255) {
  paintMap(canvas, tensor, HEAT, { alpha, range: [0, 1] });
}

export function heatPicture(tensor, alpha = CAM_ALPHA) {
  const canvas = document.createElement("canvas");
  paintHeat(canvas, tensor, alpha);
  return canvas;
}

// The model input with the CAM over it (the CAM is stretched to the input's size if it differs).
export function paintCamOver(canvas, input, cam, lut, alpha = CAM_ALPHA) {
  paintInput(canvas, input, lut);
  const heat = heatPicture(cam, alpha);
  canvas.getContext("2d").drawImage(heat, 0, 0, canvas.width, canvas.height);
  return heat;
}

// An <img> for a URL (a data URL of a drawing or a sample), once it has loaded.
export function loadImage(source) {
  return new Promise((resolve, reject) => {
    const image = new Image();
    image.onload = () => resolve(image);
    image.onerror = () => reject(new Error("the image could not be shown"));
    image.src = source;
  });
}
