// Dashboard: saved predictions (filters, paging, a detail view that re-runs one), reports (resolve them), and
// summary statistics with the confusion matrix of reported corrections.

import { api, query } from "../api.js";
import { h, messageBox, percent, when } from "../dom.js";
import { GREY, HEAT, paint } from "../colors.js";
import { probabilityBars } from "../charts.js";
import { decodeTensor } from "../tensors.js";

const PAGE = 12;
const DIGITS = [...Array(10).keys()];
const option = (value, text) => h("option", { value, text });

function statsPanel(stats) {
  const max = Math.max(1, ...stats.confusion.matrix.flat());
  const matrix = h("table", { class: "confusion" },
    h("caption", { text: "Reported corrections: predicted digit (rows) → correct digit (columns)" }),
    h("thead", {}, h("tr", {}, h("th", { text: "" }), ...DIGITS.map((d) => h("th", { scope: "col", text: d })))),
    h("tbody", {}, ...stats.confusion.matrix.map((row, p) => h("tr", {}, h("th", { scope: "row", text: p }),
      ...row.map((n) => h("td", { text: n || "", style: n ? `background: rgba(228, 87, 46, ${0.15 + 0.85 * n / max})`
        : "" }))))));
  const perDigit = h("table", { class: "per-digit" },
    h("thead", {}, h("tr", {}, ...["digit", "saved", "reported", "reported rate"].map((t) =>
      h("th", { scope: "col", text: t })))),
    h("tbody", {}, ...stats.per_digit.map((row) => h("tr", {}, h("td", { text: row.digit }),
      h("td", { text: row.saved }), h("td", { text: row.reported }),
      h("td", { text: row.reported_error_rate === null ? "–" : percent(row.reported_error_rate) })))));
  return [h("div", { class: "cards" },
      h("div", { class: "card" }, h("strong", { text: stats.predictions }), " saved predictions"),
      h("div", { class: "card" }, h("strong", { text: stats.reported_predictions }), " reported wrong"),
      h("div", { class: "card" }, h("strong", { text: stats.reported_error_rate === null ? "–"
        : percent(stats.reported_error_rate) }), " reported error rate"),
      h("div", { class: "card" }, h("strong", { text: stats.reports.open }), " open reports")),
    h("div", { class: "stats-tables" }, perDigit, matrix)];
}

function rerunItem(rerun) {
  return h("li", { text: `${when(rerun.created_at)}: ${rerun.model} v${rerun.version} → ${rerun.predicted} ` +
    `(${percent(rerun.confidence)})` });
}

function reportItem(report, onResolve) {
  return h("li", { class: "report" },
    h("span", {}, `#${report.prediction_id}: correct digit `, h("strong", { text: report.correct_label })),
    h("q", { class: "reason", text: report.reason || "(no reason given)" }),
    h("span", { class: "muted", text: when(report.created_at) }),
    h("button", { type: "button", text: report.resolved ? "Reopen" : "Resolve",
      onclick: () => onResolve(report.id, !report.resolved) }));
}

export function createDashboardView(root, store) {
  const message = messageBox(h("p", { class: "message", role: "alert", hidden: true }));
  const cardsSlot = h("div");
  const tablesSlot = h("section", { "aria-label": "Statistics" });
  const digit = h("select", { "aria-label": "Filter by predicted digit", onchange: () => loadList(0) },
    option("", "any digit"), ...DIGITS.map((d) => option(String(d), `predicted ${d}`)));
  const model = h("select", { "aria-label": "Filter by model", onchange: () => loadList(0) },
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
        h("div", { class: "toolbar" }, digit, model, reported),
        h("table", { class: "saved" }, h("thead", {}, h("tr", {}, ...["", "#", "predicted", "confidence", "model",
          "reported", "when"].map((t) => h("th", { scope: "col", text: t })))), rows),
        h("div", { class: "toolbar" }, previous, pageInfo, next)),
      detail),
    h("section", { "aria-label": "Reports" }, h("h3", { text: "Open reports" }), reports), tablesSlot));
  let offset = 0;
  let alive = true;

  const fail = (error) => alive && message.error(error.message);

  async function loadStats() {
    const [stats, open] = await Promise.all([api("/api/stats"), api("/api/reports?resolved=false&limit=50")]);
    if (!alive) return;
    const [cards, tables] = statsPanel(stats);
    cardsSlot.replaceChildren(cards);
    tablesSlot.replaceChildren(h("h3", { text: "Statistics" }), tables);
    reports.replaceChildren(...(open.items.length ? open.items.map((r) => reportItem(r, resolve))
      : [h("li", { class: "muted", text: "No open reports." })]));
  }

  async function loadList(start) {
    try {
      offset = Math.max(0, start);
      const page = await api(`/api/predictions${query({ digit: digit.value, model: model.value,
        reported: reported.value, limit: PAGE, offset })}`);
      if (!alive) return;
      rows.replaceChildren(...page.items.map((p) => h("tr", { tabindex: "0", class: "row",
        onclick: () => openDetail(p.id), onkeydown: (e) => e.key === "Enter" && openDetail(p.id) },
      h("td", {}, h("img", { src: p.image_url, alt: `input of #${p.id}`, class: "thumb", width: "28", height: "28" })),
      h("td", { text: p.id }), h("td", { text: p.predicted }), h("td", { text: percent(p.confidence) }),
      h("td", { text: `${p.model} v${p.version}` }), h("td", { text: p.reported ? "yes" : "no" }),
      h("td", { text: when(p.created_at) }))));
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
      const original = probabilityBars(DIGITS.map(String));
      original.update(saved.probabilities, saved.predicted);
      const fresh = probabilityBars(DIGITS.map(String));
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
            `${answer.model} v${answer.version}: ${answer.predicted} (${percent(answer.confidence)})`;
          freshBox.hidden = false;
          reruns.append(rerunItem(result.rerun));
          rerunCount.textContent = `Re-runs (${result.original.reruns.length})`;
          const [input, cam] = await Promise.all([decodeTensor(answer.input),
            decodeTensor((answer.cam || { map: answer.saliency }).map)]);
          const context = heat.getContext("2d");
          const pixels = context.createImageData(28, 28);
          paint(pixels, input.values, 0, 28, 28, 0, 0, 0, 1, GREY);
          context.putImageData(pixels, 0, 0);
          const layer = document.createElement("canvas");
          layer.width = layer.height = 28;
          const layerContext = layer.getContext("2d");
          const hot = layerContext.createImageData(28, 28);
          paint(hot, cam.values, 0, 28, 28, 0, 0, 0, 1, HEAT, (level) => Math.round(40 + level * 0.7));
          layerContext.putImageData(hot, 0, 0);
          context.drawImage(layer, 0, 0);
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
            `${saved.predicted} (${percent(saved.confidence)}), ${when(saved.created_at)}` }), original.element),
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
