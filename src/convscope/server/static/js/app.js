// The web app: one navigation, one shared store, one view mounted at a time. Each view is
// `createXView(root, store) -> {dispose}` and owns its DOM and resources.

import { h, messageBox } from "./dom.js";
import { createStore } from "./store.js";
import { createArchitectureView } from "./views/architecture.js";
import { createCompareView } from "./views/compare.js";
import { createDashboardView } from "./views/dashboard.js";
import { createDrawView } from "./views/draw.js";
import { createEvaluateView } from "./views/evaluate.js";
import { createExplainView } from "./views/explain.js";
import { createFeaturesView } from "./views/features.js";
import { createPhotoView } from "./views/photo.js";
import { createTrainView } from "./views/train.js";
import { modelLabel } from "./weightsstate.js";

// The 3D view loads three.js, so it is imported when first opened: without three.js the rest still works.
async function createNetworkView(root, store) {
  try {
    return (await import("./views/network3d.js")).createNetworkView(root, store);
  } catch (error) {
    globalMessage.error(`The 3D view could not load three.js (${error.message}). Run make setup.`);
    return { dispose() {} };
  }
}

const VIEWS = { draw: createDrawView, photo: createPhotoView, explain: createExplainView,
  features: createFeaturesView, compare: createCompareView, architecture: createArchitectureView,
  dashboard: createDashboardView, train: createTrainView, evaluate: createEvaluateView, network: createNetworkView };

const store = createStore();
const select = document.getElementById("model-select");
const globalMessage = messageBox(document.getElementById("global-message"));

function fillModelSelect() {
  const current = `${store.model}@${store.version ?? ""}`;
  select.replaceChildren(...store.models.flatMap((model) => [
    h("option", { value: `${model.name}@`, text: model.active_version == null ? modelLabel(model)
      : `${model.name} (active: v${model.active_version})` }),
    ...model.versions.filter((v) => !v.active).map((v) =>
      h("option", { value: `${model.name}@${v.version}`,
        text: `${model.name} v${v.version}${v.test_accuracy ? ` (${(v.test_accuracy * 100).toFixed(2)}%)` : ""}` })),
  ]));
  select.value = [...select.options].some((o) => o.value === current) ? current : `${store.model}@`;
}

store.onSelect(fillModelSelect); // a view may choose the model too (the photo view's picker)
store.onModels(fillModelSelect);
select.addEventListener("change", () => {
  const [model, version] = select.value.split("@");
  store.select(model, version ? Number(version) : null);
});

let mounted = null;
let routing = 0;

async function route() {
  const name = location.hash.replace(/^#\/?/, "").split("/")[0] || "draw";
  const create = VIEWS[name] || VIEWS.draw;
  const turn = ++routing;
  (await mounted)?.dispose();
  globalMessage.clear();
  const root = document.getElementById("view");
  root.replaceChildren();
  for (const link of document.querySelectorAll("nav a")) {
    link.toggleAttribute("aria-current", link.dataset.view === name);
  }
  if (turn === routing) mounted = Promise.resolve(create(root, store));
}

async function start() {
  // Read by the browser tests and benchmarks: stroke end -> views updated (ms), training event -> chart (ms).
  window.__convscope = { timings: [], eventLatencies: [] };
  try {
    await store.reloadModels();
  } catch (error) {
    globalMessage.error(error.message);
    return;
  }
  window.addEventListener("hashchange", route);
  route();
}

start();
