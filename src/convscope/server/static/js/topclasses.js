// The most likely classes as a list of bars: `rows` are [{index, class, probability}], most likely first; the
// row of class `target` (the one explained) is marked.

import { h, percent } from "./dom.js";

export function topClasses(rows, target = null) {
  return h("ol", { class: "top-classes", "data-testid": "top-classes" }, ...rows.map((row) =>
    h("li", { class: row.index === target ? "target" : "" },
      h("span", { class: "class-name", text: row.class }),
      h("span", { class: "bar" }, h("span", { style: `width: ${(row.probability * 100).toFixed(1)}%` })),
      h("span", { class: "probability", text: percent(row.probability) }))));
}

// The k most likely of a full probability list.
export function mostLikely(probabilities, classNames, k = 5) {
  return probabilities.map((probability, index) => ({ index, class: classNames[index], probability }))
    .sort((a, b) => b.probability - a.probability).slice(0, k);
}
