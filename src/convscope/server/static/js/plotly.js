// plotly.js (4.8 MB) is loaded the first time a view needs it, not with every page.

let loading = null;

export function loadPlotly() {
  loading ??= new Promise((resolve, reject) => {
    const script = document.createElement("script");
    script.src = "/vendor/plotly.min.js";
    script.onload = () => resolve(window.Plotly);
    script.onerror = () => {
      loading = null;
      reject(new Error("plotly.js could not be loaded from /vendor/plotly.min.js"));
    };
    document.head.append(script);
  });
  return loading;
}
