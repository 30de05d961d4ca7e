// The state the views share: the models (GET /api/models), which model and version is chosen, and the current
// input (kept when switching views). Views read it and subscribe to changes; none keeps its own copy.

import { api } from "./api.js";

export function createStore() {
  const selectListeners = new Set();
  const modelListeners = new Set();
  const subscribe = (listeners, listener) => {
    listeners.add(listener);
    return () => listeners.delete(listener);
  };
  return {
    models: [],
    model: "mnist_cnn",
    version: null, // null: the active version
    input: null,
    explain: null, // an input handed to the explain view with the classes to explain: {fields, name, targets}
    select(model, version) {
      this.model = model;
      this.version = version;
      for (const listener of selectListeners) listener();
    },
    // -> unsubscribe(): `listener()` after each select()
    onSelect(listener) {
      return subscribe(selectListeners, listener);
    },
    // -> unsubscribe(): `listener()` after the model list is reloaded (a version trained, weights downloaded)
    onModels(listener) {
      return subscribe(modelListeners, listener);
    },
    spec(name = this.model) {
      return this.models.find((m) => m.name === name);
    },
    // A model's class names, index by index: every class select and label is built from them.
    classes(name = this.model) {
      return this.spec(name)?.class_names ?? [];
    },
    async reloadModels() {
      this.models = await api("/api/models");
      for (const listener of modelListeners) listener();
    },
  };
}
