// Upload a folder from this computer as a dataset (POST /api/datasets/folder:<name>/images): the folder's name
// names the dataset, its sub-folders are the classes. Images go in requests of a few megabytes (the server's body
// limit), each named class/file; the server decodes each one and names those it refused.

import { api } from "./api.js";
import { h } from "./dom.js";

const BATCH_BYTES = 3_500_000; // under the server's 5 MB body limit, with room for the multipart framing

function datasetName(folder) {
  return folder.replace(/[^A-Za-z0-9_.-]+/g, "-").replace(/^[^A-Za-z0-9]+/, "").slice(0, 64) || "uploaded";
}

// {element}: `uploaded(name)` is called with the dataset's name (folder:<name>) once every image is sent.
export function folderUpload(uploaded, message) {
  const input = h("input", { type: "file", webkitdirectory: true, multiple: true, hidden: true,
    "aria-label": "Folder of images to upload" });
  const button = h("button", { type: "button", text: "Upload a folder…", onclick: () => input.click() });
  const status = h("span", { class: "muted", "aria-live": "polite", "data-testid": "upload-status" });

  input.addEventListener("change", async () => {
    // folder/class/file.jpg (deeper files keep their sub-folders in their name); hidden files are left out
    const files = [...input.files].map((file) => ({ file, parts: file.webkitRelativePath.split("/") }))
      .filter(({ parts }) => parts.length >= 3 && !parts.some((p) => p.startsWith(".")));
    input.value = "";
    if (!files.length) {
      message.error("Choose a folder with one sub-folder of images per class.");
      return;
    }
    const name = datasetName(files[0].parts[0]);
    const batches = [[]];
    let bytes = 0;
    for (const entry of files) {
      if (bytes + entry.file.size > BATCH_BYTES && batches.at(-1).length) {
        batches.push([]);
        bytes = 0;
      }
      batches.at(-1).push(entry);
      bytes += entry.file.size;
    }
    button.disabled = true;
    let added = 0;
    const refused = [];
    try {
      for (const batch of batches) {
        const form = new FormData();
        for (const { file, parts } of batch) form.append("files", file, `${parts[1]}/${parts.slice(2).join("_")}`);
        const answer = await api(`/api/datasets/folder:${name}/images`, { method: "POST", form });
        added += answer.added;
        refused.push(...answer.refused);
        status.textContent = `Uploading to folder:${name}: ${added + refused.length} of ${files.length} images`;
      }
      status.textContent = `Uploaded ${added} images to folder:${name}` + (refused.length
        ? `; ${refused.length} refused (${refused[0].file}: ${refused[0].reason})` : "");
      await uploaded(`folder:${name}`);
    } catch (error) {
      message.error(`The upload stopped: ${error.message}`);
    } finally {
      button.disabled = false;
    }
  });
  return { element: h("span", { class: "folder-upload" }, button, input, status) };
}
