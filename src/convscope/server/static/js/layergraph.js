// The architecture as a graph, laid out by ELK (elkjs from npm, its layered algorithm): every tap a node with its
// kind, output shape and kernel/stride; residual skips and Inception's branches are edges; blocks (module paths
// such as layer1.0 or Mixed_5b.branch3x3dbl) collapse into one node and expand again.

import { h } from "./dom.js";

const SVG = "http://www.w3.org/2000/svg";
const NODE = { width: 176, height: 44 };
const GROUP_HEADER = 22;
const COLLAPSE_ABOVE = 40; // taps: bigger models open with their inner blocks collapsed

let elk = null;

// elkjs ships as a script that defines window.ELK; loaded once, on first use.
function loadElk() {
  elk ??= new Promise((resolve, reject) => {
    const script = document.createElement("script");
    script.src = "/vendor/elk/elk.bundled.js";
    script.onload = () => resolve(new window.ELK());
    script.onerror = () => {
      elk = null;
      reject(new Error("the graph layout library (elkjs) is missing: run make setup"));
    };
    document.head.append(script);
  });
  return elk;
}

export function shapeText(shape) {
  return shape.length ? shape.join("×") : "scalar";
}

function kernelText(layer) {
  if (!layer.kernel) return "";
  const stride = layer.stride.every((s) => s === layer.stride[0]) ? layer.stride[0] : layer.stride.join("×");
  return ` ${layer.kernel.join("×")}${stride !== 1 ? ` /${stride}` : ""}`;
}

// "layer1.0.conv1" -> ["layer1", "layer1.0"]: the blocks a tap sits in, outermost first.
function blocksOf(name) {
  const parts = name.replace(/:\d+$/, "").split(".");
  return parts.slice(0, -1).map((_, i) => parts.slice(0, i + 1).join("."));
}

// Blocks with at least two taps: path -> {path, taps: [layer], depth}.
function findBlocks(layers) {
  const blocks = new Map();
  for (const layer of layers) {
    for (const path of blocksOf(layer.name)) {
      if (!blocks.has(path)) blocks.set(path, { path, taps: [], depth: path.split(".").length });
      blocks.get(path).taps.push(layer);
    }
  }
  for (const [path, block] of blocks) if (block.taps.length < 2) blocks.delete(path);
  return blocks;
}

function sum(layers, key) {
  return layers.reduce((total, layer) => total + (layer[key] || 0), 0);
}

export function compact(n) {
  if (n >= 1e9) return `${(n / 1e9).toFixed(2)} G`;
  if (n >= 1e6) return `${(n / 1e6).toFixed(2)} M`;
  if (n >= 1e3) return `${(n / 1e3).toFixed(1)} k`;
  return String(n);
}

// The ELK graph of what is visible now: expanded blocks as compound nodes, collapsed ones as single nodes.
function elkGraph(architecture, blocks, collapsed) {
  const visible = (name) => {
    const closed = blocksOf(name).find((path) => blocks.has(path) && collapsed.has(path));
    return closed ? `block:${closed}` : name;
  };
  const root = { id: "root", children: [], edges: [] };
  const containers = new Map([["", root]]);
  const container = (name) => { // the innermost expanded block a visible node sits in
    let parent = root;
    for (const path of blocksOf(name)) {
      if (!blocks.has(path)) continue;
      if (collapsed.has(path)) break;
      if (!containers.has(path)) {
        const node = { id: `open:${path}`, children: [], labels: [{ text: path }],
          layoutOptions: { "elk.padding": `[top=${GROUP_HEADER + 6},left=8,bottom=8,right=8]` } };
        parent.children.push(node);
        containers.set(path, node);
      }
      parent = containers.get(path);
    }
    return parent;
  };
  root.children.push({ id: "input", ...NODE });
  const placed = new Set(["input"]);
  for (const layer of architecture.layers) {
    const id = visible(layer.name);
    if (!placed.has(id)) {
      placed.add(id);
      const holder = id.startsWith("block:") ? container(id.slice(6) + ".x") : container(layer.name);
      holder.children.push({ id, ...NODE });
    }
  }
  const edges = new Set();
  for (const layer of architecture.layers) {
    for (const parent of layer.parents) {
      const from = parent === "input" ? "input" : visible(parent);
      const to = visible(layer.name);
      if (from !== to) edges.add(`${from}\u0000${to}`);
    }
  }
  root.edges = [...edges].map((key, i) => {
    const [source, target] = key.split("\u0000");
    return { id: `e${i}`, sources: [source], targets: [target] };
  });
  root.layoutOptions = { "elk.algorithm": "layered", "elk.direction": "DOWN",
    "elk.hierarchyHandling": "INCLUDE_CHILDREN", "elk.json.shapeCoords": "ROOT", "elk.json.edgeCoords": "ROOT",
    "elk.layered.spacing.nodeNodeBetweenLayers": "26", "elk.spacing.nodeNode": "18",
    "elk.edgeRouting": "ORTHOGONAL" };
  return root;
}

function svg(tag, attributes = {}, ...children) {
  const element = document.createElementNS(SVG, tag);
  for (const [key, value] of Object.entries(attributes)) element.setAttribute(key, value);
  element.append(...children);
  return element;
}

function text(x, y, content, className) {
  const element = svg("text", { x, y, class: className });
  element.textContent = content;
  return element;
}

// `onSelect(layer)` when a tap is clicked (or Enter / Space on it). -> {element, ready, select(name), dispose()}
export function createLayerGraph(architecture, { onSelect } = {}) {
  const byName = new Map(architecture.layers.map((layer) => [layer.name, layer]));
  const blocks = findBlocks(architecture.layers);
  const collapsed = new Set(architecture.layers.length > COLLAPSE_ABOVE
    ? [...blocks.values()].filter((block) => block.depth >= 2).map((block) => block.path) : []);
  let selected = null;
  let turn = 0;
  const element = h("div", { class: "layer-graph", "data-testid": "layer-graph" });

  function toggle(path) {
    if (collapsed.has(path)) collapsed.delete(path);
    else collapsed.add(path);
    return draw();
  }

  function nodeFor(node) {
    const group = svg("g", { class: "gnode", tabindex: "0", role: "button", "data-node": node.id,
      transform: `translate(${node.x},${node.y})` });
    group.append(svg("rect", { width: node.width, height: node.height, rx: 5 }));
    let title;
    let activate;
    if (node.id === "input") {
      group.classList.add("input");
      group.append(text(8, 17, "input", "name"), text(8, 34, shapeText(architecture.input_shape), "detail"));
      title = "the model input";
    } else if (node.id.startsWith("block:")) {
      const block = blocks.get(node.id.slice(6));
      const last = block.taps.at(-1);
      group.classList.add("block");
      group.append(text(8, 17, `▸ ${block.path}`, "name"),
        text(8, 34, `${block.taps.length} layers · ${shapeText(last.output_shape)}`, "detail"));
      title = `${block.path}: ${block.taps.length} layers, ${compact(sum(block.taps, "parameters"))} parameters, `
        + `${compact(sum(block.taps, "macs"))} MACs; click to expand`;
      activate = () => toggle(block.path);
    } else {
      const layer = byName.get(node.id);
      group.classList.add(`kind-${layer.kind}`);
      group.classList.toggle("selected", layer.name === selected);
      group.dataset.layer = layer.name;
      group.append(text(8, 17, layer.name, "name"),
        text(8, 34, `${layer.kind}${kernelText(layer)} · ${shapeText(layer.output_shape)}`, "detail"));
      title = `${layer.name} (${layer.op}): output ${shapeText(layer.output_shape)}, `
        + `${compact(layer.parameters)} parameters, ${compact(layer.macs)} MACs`;
      activate = () => select(layer.name);
    }
    group.setAttribute("aria-label", title);
    group.append(svg("title", {}, title));
    if (activate) {
      group.addEventListener("click", activate);
      group.addEventListener("keydown", (event) => {
        if (event.key === "Enter" || event.key === " ") {
          event.preventDefault();
          activate();
        }
      });
    }
    return group;
  }

  function groupFor(node) {
    const path = node.id.slice(5);
    const box = svg("g", { class: "ggroup", transform: `translate(${node.x},${node.y})` });
    const header = svg("g", { class: "group-header", tabindex: "0", role: "button", "data-node": node.id,
      "aria-label": `collapse ${path}` });
    header.append(svg("rect", { width: node.width, height: GROUP_HEADER, rx: 5 }),
      text(8, 15, `▾ ${path}`, "name"));
    header.addEventListener("click", () => toggle(path));
    header.addEventListener("keydown", (event) => {
      if (event.key === "Enter" || event.key === " ") {
        event.preventDefault();
        toggle(path);
      }
    });
    box.append(svg("rect", { width: node.width, height: node.height, rx: 6, class: "group-box" }), header);
    return box;
  }

  function edgePath(edge) {
    return (edge.sections || []).map((section) => {
      const points = [section.startPoint, ...(section.bendPoints || []), section.endPoint];
      return `M${points.map((p) => `${p.x},${p.y}`).join("L")}`;
    }).join("");
  }

  async function draw() {
    const mine = ++turn;
    const layout = await (await loadElk()).layout(elkGraph(architecture, blocks, collapsed));
    if (mine !== turn) return;
    const groups = [];
    const nodes = [];
    (function walk(children) {
      for (const node of children) {
        if (node.id.startsWith("open:")) {
          groups.push(groupFor(node));
          walk(node.children);
        } else {
          nodes.push(nodeFor(node));
        }
      }
    })(layout.children);
    const width = Math.ceil(layout.width) + 4;
    const height = Math.ceil(layout.height) + 4;
    const arrow = svg("marker", { id: "arrow", viewBox: "0 0 8 8", refX: 8, refY: 4, markerWidth: 7,
      markerHeight: 7, orient: "auto-start-reverse" }, svg("path", { d: "M0,0L8,4L0,8z" }));
    const edges = layout.edges.map((edge) => svg("path", { class: "edge", d: edgePath(edge),
      "marker-end": "url(#arrow)", "data-edge": `${edge.sources[0]}→${edge.targets[0]}` }));
    element.replaceChildren(svg("svg", { width, height, viewBox: `-2 -2 ${width} ${height}`, role: "group",
      "aria-label": `${architecture.model ?? "model"} graph` }, svg("defs", {}, arrow), ...groups, ...edges, ...nodes));
  }

  function select(name, notify = true) {
    selected = name;
    for (const node of element.querySelectorAll("[data-layer]")) {
      node.classList.toggle("selected", node.dataset.layer === name);
    }
    if (notify) onSelect?.(byName.get(name));
  }

  // Expand the blocks around a layer so that it shows, then select it.
  async function reveal(name, notify = true) {
    for (const path of blocksOf(name)) collapsed.delete(path);
    await draw();
    select(name, notify);
  }

  return { element, ready: draw(), select, reveal, dispose() { turn += 1; } };
}
