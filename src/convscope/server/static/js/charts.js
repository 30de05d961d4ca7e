// Small SVG charts: the probability bars and histograms. Labels are text nodes.

const SVG = "http://www.w3.org/2000/svg";

function svg(tag, attributes = {}) {
  const element = document.createElementNS(SVG, tag);
  for (const [key, value] of Object.entries(attributes)) element.setAttribute(key, value);
  return element;
}

function text(x, y, content, attributes = {}) {
  const element = svg("text", { x, y, ...attributes });
  element.textContent = content;
  return element;
}

const MOST_BARS = 10; // beyond this many classes, the most probable ten are shown, best first

// The class names that fit in a band of `width` px at 11 px text; the whole name is the label's tooltip.
function fitted(name, width) {
  const room = Math.max(3, Math.floor(width / 6.5));
  return name.length <= room ? name : `${name.slice(0, room - 1)}…`;
}

function topIndices(probabilities, count) {
  return [...probabilities.keys()].sort((a, b) => probabilities[b] - probabilities[a]).slice(0, count);
}

// One bar per class (or per most probable class, for many classes); the winner is highlighted.
// Returns {element, update(probabilities, winner)}.
export function probabilityBars(labels) {
  const width = 300;
  const height = 150;
  const count = Math.min(labels.length, MOST_BARS);
  const ranked = labels.length > count;
  const band = width / Math.max(count, 1);
  const root = svg("svg", { viewBox: `0 0 ${width} ${height}`, class: "bars", role: "img",
    "aria-label": ranked ? `Probability of the ${count} most probable classes` : "Probability of each class" });
  const bars = [...Array(count).keys()].map((i) => {
    const bar = svg("rect", { x: i * band + 4, width: band - 8, y: height - 20, height: 0, class: "bar" });
    const value = text(i * band + band / 2, height - 24, "", { class: "bar-value", "text-anchor": "middle" });
    const label = text(i * band + band / 2, height - 5, "", { class: "bar-label", "text-anchor": "middle" });
    const caption = document.createTextNode("");
    const title = svg("title"); // the whole name, when the caption is cut short
    label.append(caption, title);
    root.append(bar, value, label);
    return { bar, value, caption, title };
  });
  function name(bar, k) {
    bar.caption.textContent = fitted(labels[k] ?? String(k), band);
    bar.title.textContent = labels[k] ?? String(k);
  }
  if (!ranked) bars.forEach((bar, k) => name(bar, k));
  return {
    element: root,
    update(probabilities, winner) {
      const shown = ranked ? topIndices(probabilities, count) : [...bars.keys()];
      shown.forEach((k, i) => {
        const p = probabilities[k];
        const barHeight = Math.max(1, p * (height - 40));
        bars[i].bar.setAttribute("y", height - 20 - barHeight);
        bars[i].bar.setAttribute("height", barHeight);
        bars[i].bar.classList.toggle("winner", k === winner);
        bars[i].value.setAttribute("y", height - 24 - barHeight);
        bars[i].value.textContent = p >= 0.01 ? `${Math.round(p * 100)}` : "";
        if (ranked) name(bars[i], k);
      });
      root.setAttribute("aria-label", `Probabilities: ${shown.map((k) =>
        `${labels[k]} ${(probabilities[k] * 100).toFixed(1)}%`).join(", ")}`);
    },
  };
}

// A histogram from the API ({counts, edges}).
export function histogram({ counts, edges }, label) {
  const width = 240;
  const height = 90;
  const top = Math.max(...counts, 1);
  const band = width / counts.length;
  const root = svg("svg", { viewBox: `0 0 ${width} ${height + 16}`, class: "histogram", role: "img",
    "aria-label": `${label} histogram from ${edges[0].toPrecision(3)} to ${edges[edges.length - 1].toPrecision(3)}` });
  counts.forEach((count, i) => {
    const barHeight = (count / top) * height;
    const rect = svg("rect", { x: i * band, y: height - barHeight, width: Math.max(band - 1, 1), height: barHeight,
      class: "bar" });
    const title = svg("title");
    title.textContent = `${edges[i].toPrecision(3)} to ${edges[i + 1].toPrecision(3)}: ${count}`;
    rect.append(title);
    root.append(rect);
  });
  root.append(text(0, height + 13, edges[0].toPrecision(2)),
    text(width, height + 13, edges[edges.length - 1].toPrecision(2), { "text-anchor": "end" }));
  return root;
}
