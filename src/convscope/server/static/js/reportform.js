// Save and "Report wrong" for the draw view: save the current input's prediction (the server computes it again),
// then report it with the correct class from a select of the model's classes (the predicted one marked and
// refused) or "none of these" (then a reason is needed); the focus stays with the outcome.

import { api } from "./api.js";
import { h } from "./dom.js";
import { savePrediction } from "./predict.js";

const NONE_OF_THESE = "none";

export function option(value, text) {
  return h("option", { value, text });
}

// One option per class: the value is the class index the API takes, the text its name.
export function classOptions(names) {
  return names.map((name, index) => option(String(index), name));
}

// `current()`: the input as predict.js takes it; `onError(text)` shows a failure.
export function createReportForm(store, current, onError) {
  const saveButton = h("button", { type: "button", text: "Save", onclick: save, disabled: true });
  const reportButton = h("button", { type: "button", text: "Report wrong", onclick: openReport, disabled: true });
  const saved = h("span", { class: "muted", "aria-live": "polite", tabindex: "-1" });
  const label = h("select", { "aria-label": "Correct class", required: true });
  const send = h("button", { type: "submit", text: "Send report" });
  const reason = h("textarea", { rows: "2", maxlength: "2000", "aria-label": "Reason",
    placeholder: "Why is it wrong? (optional)" });
  const form = h("form", { class: "report-form", hidden: true, onsubmit: sendReport },
    h("label", {}, "Correct class ", label), h("label", {}, "Reason ", reason), send,
    h("button", { type: "button", text: "Cancel", onclick: closeReport }));
  let savedId = null;
  let savedPredicted = null; // the class index the saved record predicted

  async function ensureSaved() {
    if (savedId !== null) return savedId;
    const record = await savePrediction(current(), { model: store.model, version: store.version ?? undefined });
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
      onError(error.message);
    }
  }

  async function openReport() {
    try {
      await ensureSaved();
      choices(savedPredicted);
      form.hidden = false;
      label.focus();
    } catch (error) {
      onError(error.message);
    }
  }

  function closeReport() {
    form.hidden = true;
    reportButton.focus(); // where the form was opened from
  }

  // No class chosen at first; the predicted class is no correction; "none of these" needs a reason.
  function choices(predicted) {
    label.replaceChildren(h("option", { value: "", text: "choose…", disabled: true, selected: true }),
      ...classOptions(store.classes()).map((o) => {
        if (Number(o.value) === predicted) Object.assign(o, { disabled: true, text: `${o.text} (predicted)` });
        return o;
      }), option(NONE_OF_THESE, "none of these"));
    label.value = "";
  }

  async function sendReport(event) {
    event.preventDefault();
    const none = label.value === NONE_OF_THESE;
    if (none && !reason.value.trim()) {
      reason.setCustomValidity("say what it is, when it is none of these classes");
      reason.reportValidity();
      return;
    }
    reason.setCustomValidity("");
    try {
      const report = await api(`/api/predictions/${savedId}/reports`, { method: "POST",
        body: { correct_label: none ? null : Number(label.value), reason: reason.value } });
      form.hidden = true;
      reason.value = "";
      saved.textContent = `Reported #${report.prediction_id}: ${report.correct_class === null
        ? "none of these classes" : `the correct class is ${report.correct_class}`}. Thank you.`;
      saved.focus(); // the focus stays with the report's outcome, not lost to the page
    } catch (error) {
      onError(error.message);
      send.focus();
    }
  }

  return {
    element: h("div", {}, h("div", { class: "toolbar" }, saveButton, reportButton, saved), form),
    // Whether there is an answer to save or report.
    enable(on) { saveButton.disabled = reportButton.disabled = !on; },
    // A new input or model: nothing of it is saved or reported yet.
    reset() {
      savedId = null;
      saved.textContent = "";
      form.hidden = true;
    },
  };
}
