// The dashboard's statistics (GET /api/stats): cards with the totals, saved and reported predictions per class, and
// the confusion matrix of reported corrections, all by the class names the API gives.

import { h, percent } from "../dom.js";

const ALL_UP_TO = 20; // with more classes than this, only the classes that occur get a row or column

const rate = (value) => (value === null ? "–" : percent(value));

function cards(stats) {
  return h("div", { class: "cards" },
    h("div", { class: "card" }, h("strong", { text: stats.predictions }), " saved predictions"),
    h("div", { class: "card" }, h("strong", { text: stats.reported_predictions }), " reported wrong"),
    h("div", { class: "card" }, h("strong", { text: rate(stats.reported_error_rate) }), " reported error rate"),
    h("div", { class: "card" }, h("strong", { text: stats.reports.open }), " open reports"));
}

function perClassTable(perClass) {
  const rows = perClass.length > ALL_UP_TO ? perClass.filter((row) => row.saved || row.reported) : perClass;
  return h("table", { class: "per-class" },
    h("thead", {}, h("tr", {}, ...["class", "saved", "reported", "reported rate"].map((t) =>
      h("th", { scope: "col", text: t })))),
    h("tbody", {}, ...rows.map((row) => h("tr", {}, h("th", { scope: "row", text: row.class }),
      h("td", { text: row.saved }), h("td", { text: row.reported }),
      h("td", { text: rate(row.reported_error_rate) })))));
}

function confusionTable({ labels, matrix }) {
  const all = [...labels.keys()];
  const kept = labels.length > ALL_UP_TO ? all.filter((i) => matrix[i].some(Boolean) || matrix.some((row) => row[i]))
    : all;
  const max = Math.max(1, ...matrix.flat());
  const cell = (n) => h("td", { text: n || "",
    style: n ? `background: rgba(228, 87, 46, ${0.15 + 0.85 * n / max})` : "" });
  return h("table", { class: "confusion" },
    h("caption", { text: "Reported corrections: predicted class (rows) → correct class (columns)" +
      (kept.length < labels.length ? ", classes with corrections only" : "") }),
    h("thead", {}, h("tr", {}, h("th", { text: "" }), ...kept.map((i) => h("th", { scope: "col", text: labels[i] })))),
    h("tbody", {}, ...kept.map((p) => h("tr", {}, h("th", { scope: "row", text: labels[p] }),
      ...kept.map((c) => cell(matrix[p][c]))))));
}

// -> [the cards, the tables]
export function statsPanel(stats) {
  return [cards(stats), h("div", { class: "stats-tables" }, perClassTable(stats.per_class),
    confusionTable(stats.confusion))];
}

// Class options for a filter when no one model is chosen: one per class index, named by every class name the
// stats saw at that index (models with other classes share indices).
export function classesByIndex(perClass) {
  const names = new Map();
  for (const row of perClass) names.set(row.index, [...(names.get(row.index) || []), row.class]);
  return [...names].sort(([a], [b]) => a - b).map(([index, list]) => [index, list.join(" / ")]);
}
