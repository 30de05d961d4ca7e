// Draw and explain (the home page): draw, sample or upload an image; everything updates while you draw. The
// class selects list the current model's class names.

import { api, query } from "../api.js";
import { h, messageBox } from "../dom.js";
import { PAD_SIZE, createDrawpad } from "../drawpad.js";
import { predict as requestPrediction, savePrediction } from "../predict.js";
import { loadImage } from "../pictures.js";
import { digitSelect, fetchSample, pixelsToDataUrl } from "../samples.js";
import { createResults } from "./results.js";

const NONE_OF_THESE = "none";
const THROTTLE_MS = 75; // at most one prediction per 75 ms while a stroke goes on (and one at its end)
const METHODS = [["gradcam", "Grad-CAM"], ["gradcam++", "Grad-CAM++"], ["hirescam", "HiResCAM"],
  ["saliency", "Saliency"]];

function option(value, text) {
  return h("option", { value, text });
}

// One option per class: the value is the class index the API takes, the text its name.
function classOptions(names) {
  return names.map((name, index) => option(String(index), name));
}

export function createDrawView(root, store) {
  const message = messageBox(h("p", { class: "message", role: "alert", hidden: true }));
  const results = createResults({ methodTitles: Object.fromEntries(METHODS) });
  const pad = createDrawpad({ onStroke: strokeMoved, onStrokeEnd: strokeEnded });
  const overlayContext = pad.overlay.getContext("2d");

  // --- controls ------------------------------------------------------------------------------------------
  const penButton = h("button", { type: "button", "aria-pressed": "true", text: "Pen",
    onclick: () => setTool("pen") });
  const eraserButton = h("button", { type: "button", "aria-pressed": "false", text: "Eraser",
    onclick: () => setTool("eraser") });
  const width = h("input", { type: "range", min: "8", max: "40", value: "22", "aria-label": "Pen width",
    oninput: () => pad.setWidth(Number(width.value)) });
  const digitChoice = digitSelect();
  const upload = h("input", { type: "file", accept: "image/png,image/jpeg,image/webp",
    "aria-label": "Upload an image", onchange: uploadChosen });
  const method = h("select", { "aria-label": "CAM method", onchange: () => { layerMenuFits(); refresh(); } },
    ...METHODS.map(([value, text]) => option(value, text)));
  const camLayer = h("select", { "aria-label": "CAM layer", onchange: refresh });
  const target = h("select", { "aria-label": "Class to explain", onchange: refresh }, option("", "predicted class"));
  const showOverlay = h("input", { type: "checkbox", checked: true, "aria-label": "Show the CAM over the drawing",
    onchange: () => { pad.overlay.hidden = !showOverlay.checked; } });
  const saveButton = h("button", { type: "button", text: "Save", onclick: save, disabled: true });
  const reportButton = h("button", { type: "button", text: "Report wrong", onclick: openReport, disabled: true });
  const saved = h("span", { class: "muted", "aria-live": "polite", tabindex: "-1" });
  const reportLabel = h("select", { "aria-label": "Correct class", required: true });
  const reportSend = h("button", { type: "submit", text: "Send report" });
  const reportReason = h("textarea", { rows: "2", maxlength: "2000", "aria-label": "Reason",
    placeholder: "Why is it wrong? (optional)" });
  const reportForm = h("form", { class: "report-form", hidden: true, onsubmit: sendReport },
    h("label", {}, "Correct class ", reportLabel), h("label", {}, "Reason ", reportReason),
    reportSend,
    h("button", { type: "button", text: "Cancel", onclick: closeReport }));

  // The pad and the other input controls are two sections in one column; on a phone the column dissolves and the
  // prediction comes right under the pad (style.css).
  root.append(h("div", { class: "draw-view" },
    h("div", { class: "input-column" },
      h("section", { class: "input-panel", "aria-label": "Input" },
        h("div", { class: "pad-wrap", style: `--pad-size:${PAD_SIZE}px` }, pad.canvas, pad.overlay),
        h("div", { class: "toolbar" }, penButton, eraserButton, h("label", {}, "Width ", width),
          h("button", { type: "button", text: "Undo", onclick: () => pad.undo() && inputChanged() }),
          h("button", { type: "button", text: "Clear", onclick: clearPad })),
        message.element),
      h("section", { class: "input-options", "aria-label": "Samples, uploads and explanations" },
        h("div", { class: "toolbar" }, digitChoice, h("button", { type: "button", text: "Random sample",
          onclick: sample }), h("label", { class: "upload" }, "Upload ", upload)),
        h("div", { class: "toolbar" }, h("label", {}, "Explain with ", method), h("label", {}, "at ", camLayer),
          h("label", {}, "for ", target), h("label", {}, showOverlay, " overlay")))),
    h("section", { class: "result-panel", "aria-label": "Prediction" }, results.element,
      h("div", { class: "toolbar" }, saveButton, reportButton, saved), reportForm),
    h("section", { class: "layers-panel", "aria-label": "Every layer" }, h("h3", { text: "Inside the network" }),
      results.layersElement)));

  // --- the current input ----------------------------------------------------------------------------------
  // {kind: "drawing"} (the pad), {kind: "sample", pixels}, or {kind: "upload", file}; `placement` maps input
  // pixels onto the pad, so the CAM can be laid over what is shown.
  let input = null;
  let placement = { scale: 1, dx: 0, dy: 0 };
  let savedId = null;
  let savedPredicted = null; // the class index the saved record predicted
  let inflight = false;
  let again = false;
  let lastSent = 0;
  let strokeEndedAt = null;
  let keepInput = false;
  let alive = true;

  function setTool(name) {
    pad.setTool(name);
    penButton.setAttribute("aria-pressed", String(name === "pen"));
    eraserButton.setAttribute("aria-pressed", String(name === "eraser"));
  }

  function strokeMoved() {
    if (input?.kind !== "drawing") { // what was said about a sample or an upload no longer holds
      message.clear();
      results.setTruth(null);
    }
    input = { kind: "drawing" };
    placement = { scale: 1, dx: 0, dy: 0 };
    if (performance.now() - lastSent >= THROTTLE_MS) predict();
  }

  function strokeEnded() {
    strokeEndedAt = performance.now();
    inputChanged();
  }

  function inputChanged() {
    savedId = null;
    saved.textContent = "";
    reportForm.hidden = true;
    keepInput = true; // the next request's input becomes the one other views show
    predict();
  }

  function clearPad() {
    pad.clear();
    message.clear();
    input = null;
    store.input = null;
    clearResults();
  }

  // Nothing is shown that no longer belongs to the input: no prediction, no CAM, nothing to save or report.
  function clearResults() {
    overlayContext.clearRect(0, 0, PAD_SIZE, PAD_SIZE);
    results.reset();
    saveButton.disabled = reportButton.disabled = true;
    savedId = null;
    saved.textContent = "";
    reportForm.hidden = true;
  }

  function refresh() {
    if (input) predict();
  }

  function options() {
    return { model: store.model, version: store.version ?? undefined, cam_method: method.value,
      cam_layer: camLayer.value || undefined, target: target.value === "" ? undefined : Number(target.value) };
  }

  // The input as it is now (a drawing is read off the pad at the moment of asking).
  function current() {
    return input.kind === "drawing" ? { ...input, dataUrl: pad.dataUrl() } : input;
  }

  // One request at a time; a change made meanwhile is sent as soon as the answer is in (latest wins).
  async function predict() {
    if (!input) return;
    if (input.kind === "drawing" && pad.blank()) { // erased (or undone) down to nothing
      store.input = null;
      keepInput = false;
      if (inflight) again = true; // cleared once the answer in flight is in
      else clearResults();
      return;
    }
    if (inflight) {
      again = true;
      return;
    }
    inflight = true;
    lastSent = performance.now();
    const measuring = strokeEndedAt;
    strokeEndedAt = null;
    const sent = current(); // a drawing is encoded as PNG once per request
    if (keepInput) {
      store.input = { ...sent, placement };
      keepInput = false;
    }
    try {
      const answer = await requestPrediction(sent, options());
      if (!alive) return;
      await results.show(answer, (heat) => overlay(heat, answer.framing));
      message.clearError(); // the sample's description stays
      saveButton.disabled = reportButton.disabled = false;
      if (measuring !== null) {
        await new Promise((resolve) => requestAnimationFrame(resolve)); // until the update is painted
        window.__convscope.timings.push(performance.now() - measuring);
      }
    } catch (error) {
      if (alive) {
        clearResults(); // what was shown answered another input
        message.error(error.message);
      }
    } finally {
      inflight = false;
      if (again && alive) {
        again = false;
        predict();
      }
    }
  }

  // The CAM (the size of the model input) laid over the drawing through the preprocessing's framing.
  function overlay(heat, framing) {
    overlayContext.clearRect(0, 0, PAD_SIZE, PAD_SIZE);
    const [x0, y0, x1, y1] = framing.source;
    const [left, top, fieldWidth, fieldHeight] = framing.field;
    const { scale, dx, dy } = placement;
    overlayContext.imageSmoothingEnabled = true;
    overlayContext.drawImage(heat, left, top, fieldWidth, fieldHeight,
      dx + x0 * scale, dy + y0 * scale, (x1 - x0) * scale, (y1 - y0) * scale);
  }

  async function sample() {
    try {
      const found = await fetchSample(digitChoice);
      placement = pad.show(await loadImage(pixelsToDataUrl(found.pixels)));
      input = { kind: "sample", pixels: found.pixels, label: found.label };
      results.setTruth(found.label);
      message.info(`MNIST test image ${found.index}, labelled ${found.label}`);
      inputChanged();
    } catch (error) {
      message.error(error.message);
    }
  }

  function uploadChosen() {
    const file = upload.files[0];
    upload.value = ""; // choosing the same file again is a change too
    if (file) useUpload(file);
  }

  async function useUpload(file) {
    message.clear();
    results.setTruth(null);
    try {
      placement = pad.show(await createImageBitmap(file));
    } catch {
      pad.clear(); // the browser cannot show it either; the server's answer says what is wrong with it
      placement = { scale: 1, dx: 0, dy: 0 };
    }
    overlayContext.clearRect(0, 0, PAD_SIZE, PAD_SIZE);
    input = { kind: "upload", file };
    inputChanged();
  }

  async function ensureSaved() {
    if (savedId !== null) return savedId;
    const fields = { model: store.model, version: store.version ?? undefined };
    const record = await savePrediction(current(), fields);
    savedId = record.id;
    savedPredicted = record.predicted;
    saved.replaceChildren("Saved as ", h("a", { href: "#/dashboard", text: `#${record.id}` }),
      ` (${record.model} v${record.version} predicted ${record.predicted_class})`);
    return savedId;
  }

  async function save() {
    try {
      await ensureSaved();
    } catch (error) {
      message.error(error.message);
    }
  }

  async function openReport() {
    try {
      await ensureSaved();
      reportChoices(savedPredicted);
      reportForm.hidden = false;
      reportLabel.focus();
    } catch (error) {
      message.error(error.message);
    }
  }

  function closeReport() {
    reportForm.hidden = true;
    reportButton.focus(); // where the form was opened from
  }

  // No class chosen at first; the predicted class is no correction; "none of these" needs a reason.
  function reportChoices(predicted) {
    reportLabel.replaceChildren(h("option", { value: "", text: "choose…", disabled: true, selected: true }),
      ...classOptions(store.classes()).map((o) => {
        if (Number(o.value) === predicted) Object.assign(o, { disabled: true, text: `${o.text} (predicted)` });
        return o;
      }), option(NONE_OF_THESE, "none of these"));
    reportLabel.value = "";
  }

  async function sendReport(event) {
    event.preventDefault();
    const none = reportLabel.value === NONE_OF_THESE;
    if (none && !reportReason.value.trim()) {
      reportReason.setCustomValidity("say what it is, when it is none of these classes");
      reportReason.reportValidity();
      return;
    }
    reportReason.setCustomValidity("");
    try {
      const report = await api(`/api/predictions/${savedId}/reports`, { method: "POST",
        body: { correct_label: none ? null : Number(reportLabel.value), reason: reportReason.value } });
      reportForm.hidden = true;
      reportReason.value = "";
      saved.textContent = `Reported #${report.prediction_id}: ${report.correct_class === null
        ? "none of these classes" : `the correct class is ${report.correct_class}`}. Thank you.`;
      saved.focus(); // the focus stays with the report's outcome, not lost to the page
    } catch (error) {
      message.error(error.message);
      reportSend.focus();
    }
  }

  // --- the model: its layers decide the layer views and the CAM layers, its classes the class selects ----------
  function setClasses(names) {
    target.replaceChildren(option("", "predicted class"), ...classOptions(names));
  }

  // A CAM is taken at a layer with a spatial map bigger than 1x1 (a conv, its activation, a pooling or a merge);
  // saliency takes none. A model with no such layer (an MLP) explains by saliency only.
  function setCamChoices(architecture) {
    const spatial = architecture.layers.filter((l) => l.output_shape.length === 3
      && l.output_shape[1] * l.output_shape[2] > 1);
    const fallback = architecture.default_cam_layer;
    camLayer.replaceChildren(option("", fallback ? `default (${fallback})` : "default layer"),
      ...spatial.map((l) => option(l.name, l.name)));
    for (const choice of method.options) choice.disabled = choice.value !== "saliency" && spatial.length === 0;
    if (method.selectedOptions[0]?.disabled) method.value = "saliency";
    layerMenuFits();
  }

  function layerMenuFits() {
    camLayer.disabled = method.value === "saliency" || camLayer.options.length <= 1;
    if (camLayer.disabled) camLayer.value = "";
  }

  async function loadModel() {
    try {
      const architecture = await api(`/api/models/${store.model}/architecture${query({ version: store.version })}`);
      if (!alive) return;
      results.setModel(architecture, store.classes());
      setClasses(store.classes());
      setCamChoices(architecture);
      refresh();
    } catch (error) {
      message.error(error.message);
    }
  }

  // Restore the input kept from another view.
  async function restore(kept) {
    if (kept.kind === "drawing" && kept.dataUrl) {
      pad.show(await loadImage(kept.dataUrl));
      placement = { scale: 1, dx: 0, dy: 0 };
    } else if (kept.kind === "sample") {
      placement = pad.show(await loadImage(pixelsToDataUrl(kept.pixels)));
    } else if (kept.kind === "upload") {
      placement = pad.show(await createImageBitmap(kept.file));
    }
    input = { kind: kept.kind, pixels: kept.pixels, file: kept.file, label: kept.label };
    results.setTruth(kept.kind === "sample" ? kept.label : null);
  }

  // Another model: what was saved or reported was about the previous one's answer.
  function modelChanged() {
    savedId = null;
    saved.textContent = "";
    reportForm.hidden = true;
    loadModel();
  }

  const unsubscribe = store.onSelect(modelChanged);
  (async () => {
    if (store.input) await restore(store.input).catch(() => {});
    await loadModel();
  })();

  return {
    dispose() {
      alive = false;
      unsubscribe();
    },
  };
}
