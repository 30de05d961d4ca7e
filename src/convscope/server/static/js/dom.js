// Building DOM safely: text is always set as text (never parsed as HTML), so user-supplied strings stay data.

export function h(tag, attributes = {}, ...children) {
  const element = document.createElement(tag);
  for (const [key, value] of Object.entries(attributes)) {
    if (value === undefined || value === null || value === false) continue;
    if (key === "class") element.className = value;
    else if (key === "text") element.textContent = value;
    else if (key.startsWith("on") && typeof value === "function") element.addEventListener(key.slice(2), value);
    else if (key in element && typeof value !== "string") element[key] = value;
    else element.setAttribute(key, value === true ? "" : value);
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    element.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return element;
}

export function clear(element) {
  element.replaceChildren();
  return element;
}

export function percent(value, digits = 1) {
  return `${(value * 100).toFixed(digits)}%`;
}

export function when(iso) {
  return new Date(iso).toLocaleString(undefined, { dateStyle: "short", timeStyle: "short" });
}

// An inline message area: errors are shown here, never as alert() or a blank page.
export function messageBox(element) {
  return {
    element,
    error(text) { element.textContent = text; element.className = "message error"; element.hidden = false; },
    info(text) { element.textContent = text; element.className = "message info"; element.hidden = false; },
    clear() { element.textContent = ""; element.hidden = true; },
    // After a success: an error about an earlier attempt goes, information stays.
    clearError() { if (element.classList.contains("error")) this.clear(); },
  };
}

// A file or blob as a data URL (what the JSON endpoints take as an image).
export function readAsDataUrl(blob) {
  return new Promise((resolve, reject) => {
    const reader = new FileReader();
    reader.onload = () => resolve(reader.result);
    reader.onerror = () => reject(new Error("the file could not be read"));
    reader.readAsDataURL(blob);
  });
}
