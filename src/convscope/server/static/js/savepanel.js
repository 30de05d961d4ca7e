// Saving an answer and reporting it wrong, for any model: the right class from a searchable list of the model's
// classes, or none of them.

import { api } from "./api.js";
import { h } from "./dom.js";

// Save the answer (POST /api/predictions: the server runs the input again and keeps it) and report it wrong with
// the right class from a searchable list (`classList`: the id of a datalist of the classes), or none of the model's
// classes (then a reason is needed). `now()` -> {current: {url}, answer, classes}.
export function savePanel(now, classList) {
  const status = h("p", { class: "muted", "aria-live": "polite" });
  const save = h("button", { type: "button", text: "Save" });
  const open = h("button", { type: "button", text: "Report wrong", disabled: true });
  const correct = h("input", { type: "search", list: classList, "aria-label": "Correct class",
    placeholder: "the right class" });
  const none = h("input", { type: "checkbox", "aria-label": "None of these classes" });
  const reason = h("input", { type: "text", maxlength: 2000, "aria-label": "Reason", placeholder: "why (optional)" });
  const send = h("button", { type: "submit", text: "Send report" });
  const form = h("form", { class: "report-form", hidden: true }, h("label", {}, "Correct class ", correct),
    h("label", {}, none, " none of these"), h("label", {}, "Reason ", reason), send);
  let savedId = null;

  let answered = 0; // bumped by reset(): a save that finishes after a newer answer is not offered for reporting

  save.addEventListener("click", async () => {
    const { current, answer } = now();
    const mine = answered;
    save.disabled = true;
    try {
      const saved = await api("/api/predictions", { method: "POST",
        body: { image: current.url, model: answer.model, version: answer.version } });
      if (mine !== answered) return;
      savedId = saved.id;
      status.textContent = `Saved as #${saved.id} (see the dashboard).`;
      open.disabled = false;
    } catch (error) {
      if (mine !== answered) return;
      status.textContent = error.message;
      save.disabled = false;
    }
  });
  open.addEventListener("click", () => {
    form.hidden = false;
    correct.focus();
  });
  none.addEventListener("change", () => { correct.disabled = none.checked; });
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const { answer, classes } = now();
    const label = none.checked ? null : classes.indexOf(correct.value.trim());
    if (label === -1) {
      status.textContent = `“${correct.value}” is not one of the model's classes: pick one from the list.`;
      return;
    }
    if (label === answer.predicted) {
      status.textContent = "That is what the model answered: choose the class it should have said.";
      return;
    }
    if (label === null && !reason.value.trim()) {
      status.textContent = "Say what the photo shows in the reason when it is none of these classes.";
      reason.focus();
      return;
    }
    try {
      await api(`/api/predictions/${savedId}/reports`, { method: "POST",
        body: { correct_label: label, reason: reason.value } });
      status.textContent = `Reported: ${label === null ? "none of these" : classes[label]}.`;
      form.hidden = true;
      open.disabled = true;
      open.focus();
    } catch (error) {
      status.textContent = error.message;
    }
  });
  return {
    element: h("div", { class: "save-panel" }, h("div", { class: "toolbar" }, save, open), form, status),
    reset() { // a new answer: nothing of it is saved yet
      answered += 1;
      savedId = null;
      save.disabled = false;
      open.disabled = true;
      form.hidden = true;
      form.reset();
      correct.disabled = false;
      status.textContent = "";
    },
  };
}
