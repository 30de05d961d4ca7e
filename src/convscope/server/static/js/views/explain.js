// Explain: one input (the current drawing or photo, an MNIST test digit, a photo chosen here, or a mistake opened
// from the evaluation report) through any set of attribution methods, side by side, for one class or two (the
// predicted and the true one); each map on its own colour scale or all on one, with the raw range shown. Slow
// methods show their progress and can be cancelled. Beside each method: whether it passes the sanity checks
// (weights randomised; labels shuffled, where such a version exists) and its deletion/insertion areas. Every map
// saves as PNG (legend and caption included), .npy and .json.

import { api, streamed } from "../api.js";
import { DIVERGING, GREY, HEAT, legend } from "../colors.js";
import { h, messageBox } from "../dom.js";
import { decodeExact, figuresPng, jsonBlob, npyBlob, save } from "../exports.js";
import { photoInput } from "../photoinput.js";
import { paintInput, paintMap } from "../pictures.js";
import { inputFields } from "../predict.js";
import { digitSelect, fetchSample } from "../samples.js";
import { decodeTensor } from "../tensors.js";
import { isReady } from "../weightsstate.js";

const FIRST_CHOICE = ["gradcam", "guided_backprop", "saliency", "integrated_gradients"];

// Three significant digits: raw attributions run from 1e-6 (a gradient) to hundreds (a CAM of logits).
function formatValue(value) {
  const size = Math.abs(value);
  if (size === 0) return "0";
  return size >= 1e-3 && size < 1e4 ? value.toPrecision(3) : value.toExponential(2);
}

// A map's colour table and the values at its two ends: signed maps diverge around zero (blue against the class,
// red for it), the others run from zero up. `peak`: the largest magnitude the scale shows.
function scaleOf(signed, peak) {
  return signed ? { lut: DIVERGING, range: [-peak, peak] } : { lut: HEAT, range: [0, peak] };
}

function peakOf(values) {
  return values.reduce((most, v) => Math.max(most, Math.abs(v)), 0) || 1;
}

export function createExplainView(root, store) {
  const message = messageBox(h("p", { class: "message", role: "alert", hidden: true }));
  const digit = digitSelect();
  const sampleButton = h("button", { type: "button", text: "Random test digit", onclick: () => sample() });
  const photos = photoInput((photo) => use({ image: photo.url }, photo.name), (text) => message.error(text));
  const inputCanvas = h("canvas", { class: "explain-input", "aria-label": "The model input" });
  const inputCaption = h("figcaption", { class: "muted", text: "No input yet: draw one, or pick one above." });
  const methodBoxes = h("fieldset", { class: "method-choice" }, h("legend", { text: "Methods" }));
  const target = h("select", { "aria-label": "Class to explain" });
  const second = h("select", { "aria-label": "Second class to explain" });
  const layer = h("select", { "aria-label": "CAM layer" });
  const scale = h("select", { "aria-label": "Colour scale" },
    h("option", { value: "own", text: "each map on its own scale" }),
    h("option", { value: "shared", text: "one scale for all maps (raw values)" }));
  const explainButton = h("button", { type: "button", text: "Explain", onclick: () => explain() });
  const checkButton = h("button", { type: "button", text: "Check these methods", onclick: () => check(),
    title: "Sanity checks (randomised weights; shuffled labels where such a version exists) and deletion/insertion "
      + "curves, over test inputs; kept once computed" });
  const cancelButton = h("button", { type: "button", text: "Cancel", hidden: true, onclick: () => running?.abort() });
  const progress = h("progress", { max: 1, value: 0, hidden: true, "aria-label": "Progress" });
  const progressText = h("span", { class: "muted", "aria-live": "polite", "data-testid": "explain-progress" });
  const rows = h("div", { class: "attribution-rows", "data-testid": "attribution-rows" });
  root.append(h("div", { class: "explain-view" },
    h("h2", { text: "Explain with several methods" }),
    h("details", { class: "explain-inputs" }, h("summary", { text: "Choose an input" }),
      h("div", { class: "toolbar" }, digit, sampleButton), photos.element),
    h("div", { class: "explain-top" }, h("figure", {}, inputCanvas, inputCaption),
      h("div", {}, methodBoxes,
        h("div", { class: "toolbar" }, h("label", {}, "Explain ", target), h("label", {}, "and ", second),
          h("label", {}, "CAM layer ", layer), h("label", {}, "Scale ", scale)),
        h("div", { class: "toolbar" }, explainButton, checkButton, cancelButton, progress, progressText))),
    h("p", { class: "muted", text: "The checks describe a method on this model, not one map: each runs over eight "
      + "test inputs (MNIST test digits; the four sample photos for an image model), each explained for its "
      + "predicted class. A method passes a randomisation check when its maps change (rank correlation below 0.5) "
      + "once what the model learned is gone." }),
    message.element, rows));

  let methods = []; // GET /api/attributions
  let input = null; // {fields: {pixels} | {image}, name}
  let shown = []; // one answer per class explained, its maps gathered one method at a time (with exactValues)
  let checks = new Map(); // "method|layer asked" -> {sanity, data, faithfulness, problems} for the model shown
  let running = null; // the AbortController of the work in progress
  let alive = true;

  const spec = () => store.spec(store.model);
  const modelFields = () => ({ model: store.model, version: store.version ?? undefined });
  const chosenMethods = () => [...methodBoxes.querySelectorAll("input:checked")].map((box) => box.value);

  function fillMethods() {
    methodBoxes.replaceChildren(h("legend", { text: "Methods" }), ...methods.map((m) => h("label", {
      class: "method", title: `${m.paper}. Cost: ${m.cost}.` },
    h("input", { type: "checkbox", value: m.name, checked: FIRST_CHOICE.includes(m.name) }),
    ` ${m.title} `, h("small", { class: "muted", text: m.slow ? "(slow)" : "" }))));
  }

  async function fillModel() {
    const model = spec();
    const classes = model.class_names.map((name, i) => h("option", { value: String(i), text: `${i}: ${name}` }));
    target.replaceChildren(h("option", { value: "", text: "the predicted class" }), ...classes);
    second.replaceChildren(h("option", { value: "", text: "no second class" }),
      ...classes.map((o) => o.cloneNode(true)));
    layer.replaceChildren(h("option", { value: "", text: "default" }));
    sampleButton.disabled = digit.disabled = model.input_shape[0] !== 1;
    checks = new Map();
    if (!isReady(model)) {
      message.error(`${model.name} has no weights on this server yet: get them in the Photos view.`);
      return;
    }
    const architecture = await api(`/api/models/${model.name}/architecture`);
    const spatial = architecture.layers.filter((l) => l.output_shape.length === 3
      && l.output_shape[1] * l.output_shape[2] > 1);
    layer.replaceChildren(h("option", { value: "", text: `default (${architecture.default_cam_layer ?? "none"})` }),
      ...spatial.map((l) => h("option", { value: l.name, text: l.name })));
  }

  function use(fields, name, targets = {}) {
    input = { fields, name };
    target.value = targets.first ?? "";
    second.value = targets.second ?? "";
    explain();
  }

  async function sample() {
    try {
      const found = await fetchSample(digit);
      use({ pixels: found.pixels }, `MNIST ${found.split} #${found.index} (a ${found.label})`);
    } catch (error) {
      message.error(error.message);
    }
  }

  // Run `work(signal, report)` as the one piece of work in progress, with Cancel and a progress bar.
  async function withProgress(work) {
    running?.abort();
    const controller = new AbortController();
    running = controller;
    cancelButton.hidden = progress.hidden = false;
    explainButton.disabled = checkButton.disabled = true;
    const report = (text, done = 0, total = 1) => {
      progressText.textContent = text;
      progress.max = total;
      progress.value = done;
    };
    try {
      await work(controller.signal, report);
      progressText.textContent = "";
    } catch (error) {
      if (error.name === "AbortError") progressText.textContent = "Cancelled: what was done before is kept.";
      else message.error(error.message);
    } finally {
      if (running === controller) {
        running = null;
        cancelButton.hidden = progress.hidden = true;
        explainButton.disabled = checkButton.disabled = false;
      }
    }
  }

  // Each chosen method, one request at a time (so each map appears when done and slow ones show progress), for
  // the class asked (or the predicted one) and then for the second class, if any.
  function explain() {
    if (!input) return;
    const names = chosenMethods();
    if (!names.length) {
      message.error("Tick at least one method.");
      return;
    }
    message.clear();
    const targets = [target.value === "" ? undefined : Number(target.value)];
    if (second.value !== "") targets.push(Number(second.value));
    shown = [];
    rows.replaceChildren();
    return withProgress(async (signal, report) => {
      for (const [row, asked] of targets.entries()) {
        let answer = null;
        for (const [k, name] of names.entries()) {
          const title = methods.find((m) => m.name === name).title;
          report(`${title} (${k + 1} of ${names.length})…`);
          const body = await streamed("/api/attributions", { signal,
            body: { ...input.fields, ...modelFields(), methods: [name], target: answer?.target ?? asked,
              layer: layer.value || undefined, exact: true },
            onProgress: (done, total) => report(`${title} (${k + 1} of ${names.length}): ${done} of ${total} `
              + "inputs", done, total) });
          if (!alive) return;
          if (!answer) {
            answer = { ...body, maps: [], askedLayer: layer.value }; // "": the model's default CAM layer
            shown[row] = answer;
            if (row === 0) await showInput(answer);
          }
          answer.maps.push({ ...body.maps[0], exactValues: decodeExact(body.maps[0].exact) });
          draw();
        }
      }
    });
  }

  async function showInput(answer) {
    paintInput(inputCanvas, await decodeTensor(answer.input), GREY);
    inputCaption.textContent = `${input.name}, through ${answer.model} v${answer.version}`;
  }

  function draw() {
    const everything = shown.flatMap((answer) => answer.maps);
    const sharedPeak = Math.max(...everything.map((m) => peakOf(m.exactValues)));
    rows.replaceChildren(...shown.map((answer) => {
      const figures = answer.maps.map((map) => figure(answer, map,
        scale.value === "shared" ? sharedPeak : peakOf(map.exactValues)));
      const title = `Why “${answer.target_class}”`;
      const scaleNote = scale.value === "shared" ? "one scale for all maps" : "each map on its own scale";
      const saveRow = async () => save(await figuresPng(figures.map((f) => f.picture),
        `${input.name}: ${title}, ${answer.model} v${answer.version} (${scaleNote})`),
      `${answer.model}-v${answer.version}-class${answer.target}-methods.png`);
      return h("section", { class: "attribution-row" },
        h("div", { class: "toolbar" }, h("h3", { text: title }),
          h("button", { type: "button", text: "Save the row as PNG", onclick: saveRow })),
        h("div", { class: "attribution-maps" }, ...figures.map((f) => f.element)));
    }));
  }

  function figure(answer, map, peak) {
    const [height, width] = map.exact.shape;
    const canvas = h("canvas", { class: "attribution-map", "aria-label": `${map.title} for ${answer.target_class}` });
    const { lut, range } = scaleOf(map.signed, peak);
    paintMap(canvas, { shape: [height, width], values: map.exactValues }, lut, { range });
    const ends = [formatValue(range[0]), map.signed ? "against · for" : "attribution", formatValue(range[1])];
    const key = legend(lut, ends[0], ends[2], ends[1]);
    const caption = [`${map.title}${map.layer ? ` at ${map.layer}` : ""}`,
      `class “${answer.target_class}”, ${answer.model} v${answer.version}`,
      `${(map.seconds * 1000).toFixed(map.seconds < 0.1 ? 1 : 0)} ms, ${map.forward_passes} input(s) evaluated`];
    const about = { method: map.name, target: answer.target, target_class: answer.target_class,
      model: answer.model, version: answer.version, layer: map.layer };
    const stem = `${answer.model}-v${answer.version}-${map.name}-class${answer.target}`;
    const verdicts = checkLines(map.name, answer.askedLayer);
    const picture = { map: canvas, bar: key.querySelector("canvas"), ends,
      caption: [...caption, ...verdicts.map((v) => v.text)] };
    const element = h("figure", { class: "attribution", "data-method": map.name },
      canvas, key, h("figcaption", {}, ...caption.map((line) => h("div", { text: line }))),
      h("ul", { class: "checks", "data-testid": `checks-${map.name}` }, ...verdicts.map((v) => h("li", {
        class: v.outcome ?? "", text: v.text }))),
      h("div", { class: "toolbar exports" },
        h("button", { type: "button", text: "PNG", title: "The map with its legend and caption",
          onclick: async () => save(await figuresPng([picture]), `${stem}.png`) }),
        h("button", { type: "button", text: ".npy", title: "The raw values, float32",
          onclick: () => save(npyBlob(map.exactValues, [height, width]), `${stem}.npy`) }),
        h("button", { type: "button", text: ".json", title: "The raw values with their shape",
          onclick: () => save(jsonBlob(map.exactValues, [height, width], about), `${stem}.json`) })));
    return { element, picture };
  }

  // What the checks found for `method` (at the CAM layer asked), one line each; none yet: a hint.
  function checkLines(method, askedLayer) {
    const found = checks.get(`${method}|${askedLayer}`);
    if (!found) return [{ text: "Not checked yet: “Check these methods”." }];
    const lines = [];
    if (found.sanity) lines.push({ outcome: found.sanity.outcome, text: `Weights randomised: ${found.sanity.verdict}` });
    if (found.data) lines.push({ outcome: found.data.outcome, text: `Labels shuffled: ${found.data.verdict}` });
    if (found.faithfulness) {
      const f = found.faithfulness;
      lines.push({ outcome: f.deletion_beats_random ? "passes" : "fails", text: `Deletion AUC `
        + `${f.deletion.auc.toFixed(3)} (random order ${f.random.deletion.auc.toFixed(3)}; lower is better)` });
      lines.push({ outcome: f.insertion_beats_random ? "passes" : "fails", text: `Insertion AUC `
        + `${f.insertion.auc.toFixed(3)} (random order ${f.random.insertion.auc.toFixed(3)}; higher is better)` });
    }
    for (const problem of found.problems ?? []) lines.push({ text: problem });
    return lines;
  }

  // The sanity checks and faithfulness curves of every method shown, one request at a time; the server keeps
  // each answer, so asking again is instant.
  function check() {
    const names = chosenMethods();
    const shuffled = spec().versions.filter((v) => v.shuffled_labels).at(-1);
    const common = { ...modelFields(), layer: layer.value || undefined };
    const asks = names.flatMap((method) => [
      ["sanity", "/api/sanity", { ...common, method }, "weights randomised"],
      ...(shuffled ? [["data", "/api/sanity", { ...common, method, against_version: shuffled.version },
        `against v${shuffled.version} (shuffled labels)`]] : []),
      ["faithfulness", "/api/faithfulness", { ...common, method }, "deletion and insertion"],
    ].map((ask) => [method, ...ask]));
    for (const method of names) checks.set(`${method}|${layer.value}`, {}); // this time's answers only
    return withProgress(async (signal, report) => {
      for (const [k, [method, kind, path, body, what]] of asks.entries()) {
        const title = methods.find((m) => m.name === method).title;
        const label = `Checking ${title}: ${what} (${k + 1} of ${asks.length})`;
        report(`${label}…`);
        const found = checks.get(`${method}|${common.layer ?? ""}`);
        if (!found) return; // another model was chosen meanwhile
        try {
          found[kind] = await streamed(path, { body, signal,
            onProgress: (done, total) => report(`${label}: ${done} of ${total}`, done, total) });
        } catch (error) {
          if (error.name === "AbortError") throw error;
          found.problems = [...(found.problems ?? []), `${what}: ${error.message}`];
        }
        if (!alive) return;
        draw();
      }
    });
  }

  scale.addEventListener("change", () => draw());
  const unsubscribe = store.onSelect(() => {
    running?.abort(); // the model before's work: its answers would land among the new model's
    fillModel().then(() => explain()).catch((error) => message.error(error.message));
  });

  (async () => {
    try {
      methods = (await api("/api/attributions")).methods;
      fillMethods();
      await fillModel();
      const handed = store.explain; // a mistake from the evaluation report: its classes come with it
      store.explain = null;
      if (handed) use(handed.fields, handed.name, handed.targets);
      else if (store.input) use(await inputFields(store.input), store.input.name ?? `the ${store.input.kind}`);
    } catch (error) {
      message.error(error.message);
    }
  })();

  return {
    dispose() {
      alive = false;
      running?.abort();
      unsubscribe();
      photos.dispose();
    },
  };
}
