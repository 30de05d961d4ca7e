// Asking the server to predict and explain an input: a drawing or a photo (data URL), a sample (28x28 pixels) or
// an uploaded file. `input` is the shape the store keeps: {kind, dataUrl?, pixels?, file?}.

import { api } from "./api.js";
import { readAsDataUrl } from "./dom.js";

function uploadForm(file, fields) {
  const form = new FormData();
  form.append("file", file);
  for (const [key, value] of Object.entries(fields)) if (value !== undefined) form.append(key, String(value));
  return form;
}

function inputBody(input) {
  return input.kind === "sample" ? { pixels: input.pixels } : { image: input.dataUrl };
}

// The input as JSON fields ({image} or {pixels}) for the endpoints that take JSON only (/api/layers/...).
export async function inputFields(input) {
  return input.kind === "upload" ? { image: await readAsDataUrl(input.file) } : inputBody(input);
}

export function predict(input, options) {
  return input.kind === "upload"
    ? api("/api/predict/upload", { method: "POST", form: uploadForm(input.file, options) })
    : api("/api/predict", { method: "POST", body: { ...inputBody(input), ...options } });
}

export function savePrediction(input, fields) {
  return input.kind === "upload"
    ? api("/api/predictions/upload", { method: "POST", form: uploadForm(input.file, fields) })
    : api("/api/predictions", { method: "POST", body: { ...inputBody(input), ...fields } });
}
