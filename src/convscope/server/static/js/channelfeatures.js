// What a channel looks for: the dataset images that drive it hardest, as the receptive-field patches around their
// strongest place (POST /api/features/top), and an image optimised to drive it (POST /api/features/visualize,
// streamed: the image shown as it improves). Both are kept by the server, so a second look is instant.

import { streamed } from "./api.js";
import { h } from "./dom.js";

// The k patches of one channel as a row of pictures, each titled with its source and value.
export function patchRow(answer, limit = answer.examples.length) {
  return h("div", { class: "patches", "data-testid": "patches" }, ...answer.examples.slice(0, limit).map((e) =>
    h("img", { src: e.patch, alt: `${e.source}: ${e.value.toPrecision(3)}`,
      title: `${e.source}: ${e.value.toPrecision(3)} at (${e.position?.join(", ") ?? "-"})` })));
}

// An <img> that shows the visualization as it improves; `run({signal, onProgress})` asks for it.
export function visualization(body) {
  // no alt text until there is a picture: an empty box, not a broken image's words
  const image = h("img", { class: "visualization", alt: "" });
  const show = (url) => {
    image.src = url;
    image.alt = body.logit == null ? `what ${body.layer} channel ${body.channel} looks for`
      : `what class ${body.logit} looks like to the model`;
  };
  async function run({ signal, onProgress = () => {}, onlyCached = false }) {
    const answer = await streamed("/api/features/visualize", { body: { ...body, only_cached: onlyCached },
      signal, onProgress: (done, total, shown) => {
        if (shown?.images) show(shown.images[0]);
        onProgress(done, total);
      } });
    if (answer.images.length) show(answer.images[0]);
    return answer;
  }
  return { image, run };
}

// The section the enlarged channel shows: its top patches (loaded at once) and a Visualize button with progress
// and Cancel. -> {element, dispose()}
export function channelLooksFor({ model, version, layer, channel }) {
  const status = h("p", { class: "muted", "aria-live": "polite", text: "Finding the images that drive it hardest…" });
  const patches = h("div");
  const shown = visualization({ model, version, layer, channel });
  const visualizeButton = h("button", { type: "button", text: "Visualize (optimise an image)" });
  const cancelButton = h("button", { type: "button", text: "Cancel", hidden: true });
  const progress = h("progress", { max: 1, value: 0, hidden: true, "aria-label": "Visualization progress" });
  const element = h("section", { class: "channel-looks-for", "data-testid": "channel-looks-for" },
    h("h4", { text: `What channel ${channel} looks for` }), status, patches,
    h("div", { class: "toolbar" }, visualizeButton, cancelButton, progress), shown.image);
  const reading = new AbortController(); // the patches and the look for an image made before
  let controller = new AbortController(); // Visualize: Cancel aborts it, and a new one is made for the next try

  streamed("/api/features/top", { body: { model, version, layer, channel, k: 9 }, signal: reading.signal,
    onProgress: (done, total) => { status.textContent = `Reading the dataset: ${done} of ${total} images…`; } })
    .then((answer) => {
      const count = answer.examples.length;
      status.textContent = (count < answer.images
        ? `The ${count} of ${answer.images.toLocaleString()} images of ${answer.dataset} that drive it hardest`
        : `All ${count} images of ${answer.dataset}, the strongest first`) + (answer.receptive_field
        ? `, each cut to what the channel sees (${answer.receptive_field.size.join("×")} px)` : "");
      patches.replaceChildren(patchRow(answer));
    })
    .catch((error) => { if (error.name !== "AbortError") status.textContent = error.message; });
  shown.run({ signal: reading.signal, onlyCached: true }).catch(() => {}); // one made before shows at once

  visualizeButton.addEventListener("click", async () => {
    visualizeButton.disabled = true;
    cancelButton.hidden = progress.hidden = false;
    try {
      const answer = await shown.run({ signal: controller.signal, onProgress: (done, total) => {
        progress.max = total;
        progress.value = done;
      } });
      status.textContent = `${status.textContent.split(". Optimised")[0]}. Optimised image: ${answer.settings.steps} `
        + `steps, ${answer.cached ? "made before" : `${answer.seconds} s`}.`;
    } catch (error) {
      if (error.name !== "AbortError") status.textContent = error.message;
      controller = new AbortController(); // cancelled: a new one for the next try
    } finally {
      visualizeButton.disabled = false;
      cancelButton.hidden = progress.hidden = true;
    }
  });
  cancelButton.addEventListener("click", () => controller.abort());
  return { element, dispose() { reading.abort(); controller.abort(); } };
}
