// The fine-tuning form of the train view: a base model, a folder dataset the server was given (one sub-folder of
// images per class), the new model's name, how many of the base's last blocks learn, at most how many epochs.
// Defaults and limits come from the server's FineTuneRequest schema.

import { api, applySchema, requestSchema } from "./api.js";
import { h } from "./dom.js";
import { folderUpload } from "./folderupload.js";
import { isReady } from "./weightsstate.js";

function field(label, input) {
  return h("label", { class: "field" }, h("span", { text: label }), input);
}

// {element, ready}: `start(body)` is called with the request body when the form is sent; `message` shows errors.
export function finetuneForm(models, start, message) {
  const inputs = {
    base: h("select", {}, ...models.filter((m) => ["mnist", "imagenet", "user"].includes(m.dataset) && isReady(m))
      .map((m) => h("option", { value: m.name, text: m.name }))),
    dataset: h("select", {}),
    name: h("input", { type: "text", required: true, pattern: "[A-Za-z0-9_.\\-]+", maxlength: 64 }),
    train_blocks: h("input", { type: "number", step: "1" }),
    epochs: h("input", { type: "number", step: "1" }),
  };
  const button = h("button", { type: "submit", text: "Fine-tune" });
  const note = h("p", { class: "muted" });
  const form = h("form", { class: "finetune-form", "aria-label": "Fine-tune a model",
    onsubmit: async (event) => {
      event.preventDefault();
      button.disabled = true; // one request at a time: a second click would only meet a 409
      try {
        await start({ base: inputs.base.value, dataset: inputs.dataset.value, name: inputs.name.value,
          train_blocks: Number(inputs.train_blocks.value), epochs: Number(inputs.epochs.value) });
      } finally {
        button.disabled = false;
      }
    } },
  // labels that share no words with the train form's, so that each names one control
  field("Start from", inputs.base), field("Image folder", inputs.dataset),
  h("div", { class: "toolbar" }, folderUpload((name) => loadFolders(name), message).element),
  field("Name of the result", inputs.name),
  field("Blocks that learn", inputs.train_blocks), field("Epoch limit", inputs.epochs),
  h("div", { class: "toolbar" }, button), note);

  const suggestName = () => {
    const folder = inputs.dataset.value.replace(/^folder:/, "");
    if (folder && !inputs.name.dataset.edited) inputs.name.value = `${folder}-${inputs.base.value}`;
  };
  inputs.name.addEventListener("input", () => { inputs.name.dataset.edited = "1"; });
  inputs.base.addEventListener("change", suggestName);
  inputs.dataset.addEventListener("change", suggestName);

  async function loadFolders(chosen = null) {
    const datasets = await api("/api/datasets");
    const folders = datasets.items.filter((d) => d.kind === "folder" && !d.problem);
    inputs.dataset.replaceChildren(...folders.map((d) => h("option", { value: d.name,
      text: `${d.name} (${Object.keys(d.classes).length} classes, ${d.count} images)` })));
    button.disabled = folders.length === 0;
    note.textContent = folders.length ? "0 blocks: the base is frozen and its features are computed once, so each "
      + "epoch takes milliseconds; the new model is registered and active when the run ends."
      : "No image folder on this server yet: upload one (one sub-folder of images per class), or start the "
        + "server with --datasets-dir DIR.";
    if (chosen) inputs.dataset.value = chosen;
    suggestName();
  }

  const ready = requestSchema("FineTuneRequest").then(async (schema) => {
    applySchema(schema, inputs);
    inputs.base.value = schema.properties.base.default;
    await loadFolders();
  });
  return { element: form, ready, button };
}
