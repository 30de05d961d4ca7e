// Compare: one photo through 2-4 models side by side (POST /api/compare): each one's top five, its CAM at its
// default layer over what it saw, its time, parameters and MACs, and whether they agree; then one chosen layer's
// feature maps from each.

import { api, requestSchema } from "../api.js";
import { GREY } from "../colors.js";
import { h, messageBox, percent } from "../dom.js";
import { compact } from "../layergraph.js";
import { featureMaps } from "../layerpanel.js";
import { photoInput } from "../photoinput.js";
import { paintCamOver } from "../pictures.js";
import { decodeTensor } from "../tensors.js";
import { topClasses } from "../topclasses.js";
import { isReady, modelLabel } from "../weightsstate.js";


function column(answer, photo) {
  if (answer.error) {
    return h("section", { class: "compare-column", "data-model": answer.model },
      h("h3", { text: answer.model }), h("p", { class: "message error", text: answer.error }));
  }
  const canvas = h("canvas", { class: "compare-cam", "aria-label": `${answer.model}: CAM over its input` });
  const layerChoice = h("select", { "aria-label": `${answer.model}: layer for feature maps` });
  const maps = h("div", { class: "compare-maps" });
  const element = h("section", { class: "compare-column", "data-model": answer.model },
    h("h3", { text: `${answer.model} v${answer.version}` }),
    h("p", { class: "compare-top1" }, h("strong", { text: answer.predicted_class }), ` ${percent(answer.confidence)}`),
    canvas,
    h("p", { class: "muted", text: answer.cam ? `${answer.cam.method} at ${answer.cam.layer}` : "no CAM" }),
    topClasses(answer.top, answer.predicted),
    h("table", { class: "stats" }, h("tbody", {},
      h("tr", {}, h("th", { scope: "row", text: "time" }), h("td", { text: `${answer.time_ms.toFixed(0)} ms` })),
      h("tr", {}, h("th", { scope: "row", text: "parameters" }), h("td", { text: compact(answer.parameters) })),
      h("tr", {}, h("th", { scope: "row", text: "MACs" }), h("td", { text: compact(answer.macs) })))),
    h("label", {}, "Feature maps of ", layerChoice), maps);
  const ready = (async () => {
    const input = await decodeTensor(answer.input);
    if (answer.cam) paintCamOver(canvas, input, await decodeTensor(answer.cam.map), GREY);
    const architecture = await api(`/api/models/${answer.model}/architecture`);
    const spatial = architecture.layers.filter((l) => l.output_shape.length === 3);
    layerChoice.replaceChildren(h("option", { value: "", text: "choose a layer" }),
      ...spatial.map((l) => h("option", { value: l.name, text: `${l.name} ${l.output_shape.join("×")}` })));
    layerChoice.addEventListener("change", () => {
      const chosen = spatial.find((l) => l.name === layerChoice.value);
      if (!chosen) return maps.replaceChildren();
      const panel = featureMaps(chosen, (extra) => api("/api/layers/activations", { method: "POST",
        body: { image: photo.url, model: answer.model, version: answer.version, ...extra } }));
      maps.replaceChildren(panel.element);
      return panel.load();
    });
  })();
  return { element, ready };
}

export function createCompareView(root, store) {
  const message = messageBox(h("p", { class: "message", role: "alert", hidden: true }));
  const legendText = h("legend", { text: "Models" });
  const choices = h("fieldset", { class: "compare-models" }, legendText);
  let most = Infinity; // how many models one comparison takes: the server's CompareRequest says
  let fewest = 2;
  requestSchema("CompareRequest").then((schema) => {
    ({ minItems: fewest, maxItems: most } = schema.properties.models);
    legendText.textContent = `Models (${fewest}-${most})`;
  }).catch((error) => message.error(error.message));
  const verdict = h("p", { class: "compare-verdict", "data-testid": "compare-verdict" });
  const columns = h("div", { class: "compare-columns" });
  let photo = null;
  let turn = 0;
  const input = photoInput((chosen) => {
    photo = chosen;
    run();
  }, (text) => message.error(text));
  root.append(h("div", { class: "compare-view" }, h("h2", { text: "Compare models on one photo" }), choices,
    input.element, message.element, verdict, columns));

  const ready = store.models.filter(isReady);
  const preferred = [...ready.filter((m) => m.input_shape[0] === 3), ...ready.filter((m) => m.input_shape[0] !== 3)]
    .slice(0, 2).map((m) => m.name); // image models first
  for (const spec of store.models) {
    const box = h("input", { type: "checkbox", value: spec.name, disabled: !isReady(spec),
      checked: preferred.includes(spec.name) });
    box.addEventListener("change", run);
    choices.append(h("label", {}, box, ` ${modelLabel(spec)}`));
  }
  const chosen = () => [...choices.querySelectorAll("input:checked")].map((box) => box.value);

  async function run() {
    const names = chosen();
    for (const box of choices.querySelectorAll("input")) {
      box.disabled = !isReady(store.spec(box.value)) || (!box.checked && names.length >= most);
    }
    if (!photo) return;
    if (names.length < fewest) {
      message.info(`Choose at least ${fewest} models.`);
      return;
    }
    const mine = ++turn;
    const started = performance.now();
    message.info("Running the models…");
    try {
      const body = await api("/api/compare", { method: "POST",
        body: { image: photo.url, models: names.map((model) => ({ model })) } });
      if (mine !== turn) return;
      const built = body.models.map((answer) => column(answer, photo));
      columns.replaceChildren(...built.map((c) => c.element));
      const answered = body.models.filter((a) => !a.error);
      verdict.textContent = body.agree ? `They agree: ${answered[0].predicted_class}.`
        : answered.length < 2 ? "Fewer than two models could answer: see why in their columns."
          : `They disagree: ${answered.map((a) => `${a.model} says ${a.predicted_class}`).join(", ")}.`;
      await Promise.all(built.map((c) => c.ready));
      if (mine !== turn) return;
      window.__convscope.timings.push(performance.now() - started);
      message.clear();
    } catch (error) {
      if (mine === turn) message.error(error.message);
    }
  }

  return { dispose() { turn += 1; input.dispose(); } };
}
