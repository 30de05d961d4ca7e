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

// Ten bars, one per class; the winner is highlighted. Returns {element, update(probabilities, winner)}.
export function probabilityBars(labels) {
  const width = 300;
  const height = 150;
  const band = width / labels.length;
  const root = svg("svg", { viewBox: `0 0 ${width} ${height}`, class: "bars", role: "img",
    "aria-label": "Probability of each class" });
  const bars = labels.map((label, i) => {
    const bar = svg("rect", { x: i * band + 4, width: band - 8, y: height - 20, height: 0, class: "bar" });
    const value = text(i * band + band / 2, height - 24, "", { class: "bar-value", "text-anchor": "middle" });
    root.append(bar, value, text(i * band + band / 2, height - 5, label, { "text-anchor": "middle" }));
    return { bar, value };
  });
  return {
    element: root,
    update(probabilities, winner) {
      probabilities.forEach((p, i) => {
        const barHeight = Math.max(1, p * (height - 40));
        bars[i].bar.setAttribute("y", height - 20 - barHeight);
        bars[i].bar.setAttribute("height", barHeight);
        bars[i].bar.classList.toggle("winner", i === winner);
        bars[i].value.setAttribute("y", height - 24 - barHeight);
        bars[i].value.textContent = p >= 0.01 ? `${Math.round(p * 100)}` : "";
      });
      root.setAttribute("aria-label", `Probabilities: ${probabilities.map((p, i) =>
        `${labels[i]} ${(p * 100).toFixed(1)}%`).join(", ")}`);
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
