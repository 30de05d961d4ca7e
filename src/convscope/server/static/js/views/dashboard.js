// Dashboard: saved predictions (filters, paging, a detail view that re-runs one), reports (resolve them), and
// summary statistics with the confusion matrix of reported corrections. Classes are shown by name.

import { api, query } from "../api.js";
import { h, messageBox, percent, when } from "../dom.js";
import { GREY } from "../colors.js";
import { probabilityBars } from "../charts.js";
import { paintCamOver } from "../pictures.js";
import { decodeTensor } from "../tensors.js";
import { classesByIndex, statsPanel } from "./stats.js";

const PAGE = 12;
const option = (value, text) => h("option", { value, text });
const COLUMNS = ["", "#", "predicted", "confidence", "model", "reported", "when"];
// Cells that carry their column's name: a phone shows each row as a block of "name: value" lines (style.css).
const labelled = (labels, values) => values.map((value, i) => h("td", { "data-label": labels[i], text: value }));

function rerunItem(rerun) {
  return h("li", { text: `${when(rerun.created_at)}: ${rerun.model} v${rerun.version} → ${rerun.predicted_class} ` +
    `(${percent(rerun.confidence)})` });
}

function reportItem(report, onResolve) {
  return h("li", { class: "report" },
    h("span", {}, `#${report.prediction_id}: correct class `,
      h("strong", { text: report.correct_class ?? "none of these" })), // null: none of the model's classes
    h("q", { class: "reason", text: report.reason || "(no reason given)" }),
    h("span", { class: "muted", text: when(report.created_at) }),
    h("button", { type: "button", text: report.resolved ? "Reopen" : "Resolve",
      onclick: () => onResolve(report.id, !report.resolved) }));
}

export function createDashboardView(root, store) {
  const message = messageBox(h("p", { class: "message", role: "alert", hidden: true }));
  const cardsSlot = h("div");
  const tablesSlot = h("section", { "aria-label": "Statistics" });
  const predicted = h("select", { "aria-label": "Filter by predicted class", onchange: () => loadList(0) },
    option("", "any class"));
  const model = h("select", { "aria-label": "Filter by model", onchange: modelChosen },
    option("", "any model"), ...store.models.map((m) => option(m.name, m.name)));
  const reported = h("select", { "aria-label": "Filter by reports", onchange: () => loadList(0) },
    option("", "reported or not"), option("true", "reported"), option("false", "not reported"));
  const rows = h("tbody");
  const pageInfo = h("span", { class: "muted" });
  const previous = h("button", { type: "button", text: "Previous", onclick: () => loadList(offset - PAGE) });
  const next = h("button", { type: "button", text: "Next", onclick: () => loadList(offset + PAGE) });
  const detail = h("section", { class: "detail", "aria-label": "Saved prediction", hidden: true });
  const reports = h("ul", { class: "reports" });
  root.append(h("div", { class: "dashboard-view" }, h("h2", { text: "Dashboard" }), message.element, cardsSlot,
    h("div", { class: "dashboard-columns" },
      h("section", { "aria-label": "Saved predictions" }, h("h3", { text: "Saved predictions" }),
        h("div", { class: "toolbar" }, model, predicted, reported),
        h("table", { class: "saved" }, h("thead", {}, h("tr", {}, ...COLUMNS.map((t) => h("th", { scope: "col",
          text: t })))), rows),
        h("div", { class: "toolbar" }, previous, pageInfo, next)),
      detail),
    h("section", { "aria-label": "Reports" }, h("h3", { text: "Open reports" }), reports), tablesSlot));
  let offset = 0;
  let listing = 0;
  let statsLoads = 0;
  let alive = true;

  const fail = (error) => alive && message.error(error.message);

  // The predicted-class filter lists the chosen model's classes, or (any model) the classes the stats saw.
  function fillClasses(stats) {
    const choices = model.value ? store.classes(model.value).map((name, index) => [index, name])
      : classesByIndex(stats.per_class);
    const kept = predicted.value;
    predicted.replaceChildren(option("", "any class"),
      ...choices.map(([index, name]) => option(String(index), `predicted ${name}`)));
    predicted.value = choices.some(([index]) => String(index) === kept) ? kept : "";
  }

  async function modelChosen() {
    try {
      await loadStats();
      await loadList(0);
    } catch (error) {
      fail(error);
    }
  }

  async function loadStats() {
    const turn = ++statsLoads; // the model filter changed while an older answer was on its way: show the latest
    const [stats, open] = await Promise.all([api(`/api/stats${query({ model: model.value })}`),
      api("/api/reports?resolved=false&limit=50")]);
    if (!alive || turn !== statsLoads) return;
    const [cards, tables] = statsPanel(stats);
    fillClasses(stats);
    cardsSlot.replaceChildren(cards);
    tablesSlot.replaceChildren(h("h3", { text: `Statistics: ${stats.model ?? "all models"}` }), tables);
    reports.replaceChildren(...(open.items.length ? open.items.map((r) => reportItem(r, resolve))
      : [h("li", { class: "muted", text: "No open reports." })]));
  }

  async function loadList(start) {
    const turn = ++listing; // filters changed quickly: the latest request's page is the one shown
    try {
      offset = Math.max(0, start);
      const page = await api(`/api/predictions${query({ predicted: predicted.value, model: model.value,
        reported: reported.value, limit: PAGE, offset })}`);
      if (!alive || turn !== listing) return;
      rows.replaceChildren(...page.items.map((p) => h("tr", { tabindex: "0", class: "row",
        onclick: () => openDetail(p.id), onkeydown: (e) => e.key === "Enter" && openDetail(p.id) },
      h("td", {}, h("img", { src: p.image_url, alt: `input of #${p.id}`, class: "thumb", width: "28", height: "28" })),
      ...labelled(COLUMNS.slice(1), [p.id, p.predicted_class, percent(p.confidence), `${p.model} v${p.version}`,
        p.reported ? "yes" : "no", when(p.created_at)]))));
      if (!page.items.length) rows.replaceChildren(h("tr", {}, h("td", { colspan: "7", text: "Nothing saved yet." })));
      pageInfo.textContent = page.total ? `${offset + 1}–${offset + page.items.length} of ${page.total}` : "";
      previous.disabled = offset === 0;
      next.disabled = offset + PAGE >= page.total;
    } catch (error) {
      fail(error);
    }
  }

  async function resolve(id, resolved) {
    try {
      await api(`/api/reports/${id}`, { method: "PUT", body: { resolved } });
      await Promise.all([loadStats(), loadList(offset)]);
    } catch (error) {
      fail(error);
    }
  }

  async function openDetail(id) {
    try {
      const saved = await api(`/api/predictions/${id}`);
      const spec = store.spec(saved.model);
      const image = h("img", { src: saved.image, alt: `saved input #${saved.id}`, class: "detail-image" });
      const heat = h("canvas", { class: "detail-cam", width: 28, height: 28, "aria-label": "CAM of the re-run" });
      const names = store.classes(saved.model);
      const labels = names.length ? names : saved.probabilities.map((_, i) => String(i)); // a model since removed
      const original = probabilityBars(labels);
      original.update(saved.probabilities, saved.predicted);
      const fresh = probabilityBars(labels);
      const freshBox = h("div", { class: "compare-fresh", hidden: true },
        h("h5", { text: "Re-run" }), h("p", { class: "rerun-summary" }), fresh.element);
      const reruns = h("ul", {}, ...saved.reruns.map(rerunItem));
      const rerunCount = h("h5", { text: `Re-runs (${saved.reruns.length})` });
      const version = h("select", { "aria-label": "Version to re-run with" }, option("", "active version"),
        ...(spec?.versions || []).map((v) => option(String(v.version), `v${v.version}`)));
      const rerun = async () => {
        try {
          const result = await api(`/api/predictions/${id}/rerun`, { method: "POST",
            body: { version: version.value ? Number(version.value) : undefined } });
          const answer = result.inspection;
          fresh.update(answer.probabilities, answer.predicted);
          freshBox.querySelector(".rerun-summary").textContent =
            `${answer.model} v${answer.version}: ${answer.predicted_class} (${percent(answer.confidence)})`;
          freshBox.hidden = false;
          reruns.append(rerunItem(result.rerun));
          rerunCount.textContent = `Re-runs (${result.original.reruns.length})`;
          const [input, cam] = await Promise.all([decodeTensor(answer.input),
            decodeTensor((answer.cam || { map: answer.saliency }).map)]);
          paintCamOver(heat, input, cam, GREY, (level) => Math.round(40 + level * 0.7));
          loadList(offset);
        } catch (error) {
          fail(error);
        }
      };
      detail.replaceChildren(h("h3", { text: `Saved prediction #${saved.id}` }),
        h("div", { class: "detail-images" }, h("figure", {}, image, h("figcaption", { text: "input" })),
          h("figure", {}, heat, h("figcaption", { text: "re-run: CAM on the model input" }))),
        h("div", { class: "compare" },
          h("div", {}, h("h5", { text: "Original" }), h("p", { text: `${saved.model} v${saved.version}: ` +
            `${saved.predicted_class} (${percent(saved.confidence)}), ${when(saved.created_at)}` }), original.element),
          freshBox),
        h("div", { class: "toolbar" }, version, h("button", { type: "button", text: "Re-run", onclick: rerun })),
        rerunCount, reruns,
        h("h5", { text: `Reports (${saved.reports.length})` }),
        h("ul", { class: "reports" }, ...saved.reports.map((r) => reportItem(r, async (rid, value) => {
          await resolve(rid, value);
          openDetail(id);
        }))));
      detail.hidden = false;
    } catch (error) {
      fail(error);
    }
  }

  loadStats().catch(fail);
  loadList(0);
  return { dispose() { alive = false; } };
}
