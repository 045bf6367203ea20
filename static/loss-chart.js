// The training run's loss chart: train and eval loss per step, drawn by the vendored
// Chart.js from the figures the page carries (json_script "loss-series"). The page's
// progress section is swapped by HTMX every 2 s while the run is active, so the chart is
// drawn again after each swap, and the log box is kept on its newest line (unless the reader
// scrolled up to read). Without JavaScript the table under it has the same figures.
(function () {
  "use strict";
  let chart = null;

  function points(pairs) {
    return (pairs || []).map(function (p) { return { x: p[0], y: p[1] }; });
  }

  function draw() {
    const canvas = document.querySelector("#run-progress canvas.loss-canvas");
    const data = document.getElementById("loss-series");
    if (!canvas || !data || !window.Chart) return;
    if (chart) { chart.destroy(); chart = null; }
    const series = JSON.parse(data.textContent);
    chart = new window.Chart(canvas, {
      type: "line",
      data: {
        datasets: [
          { label: "train loss", data: points(series.train), borderColor: "#3b6ea5",
            backgroundColor: "#3b6ea5", pointRadius: 0, borderWidth: 1.5 },
          { label: "eval loss (held-out split)", data: points(series.eval),
            borderColor: "#e0a030", backgroundColor: "#e0a030", pointRadius: 3,
            borderWidth: 2 },
        ],
      },
      options: {
        animation: false,
        maintainAspectRatio: false,
        parsing: false,
        interaction: { mode: "nearest", intersect: false },
        scales: {
          x: { type: "linear", title: { display: true, text: "step (optimiser updates)" },
               ticks: { precision: 0 } },
          y: { title: { display: true, text: "loss (unitless, lower is better)" } },
        },
        plugins: { legend: { display: true, position: "bottom" } },
      },
    });
  }

  // The log follows its newest line while the reader is at its end (or has not scrolled it).
  let followLog = true;

  function logBox() {
    return document.querySelector("#run-progress pre.log");
  }

  function atEnd(log) {
    return log.scrollTop + log.clientHeight >= log.scrollHeight - 4;
  }

  function showNewestLine() {
    const log = logBox();
    if (log && followLog) log.scrollTop = log.scrollHeight;
  }

  function refresh() {
    draw();
    showNewestLine();
  }

  // An outerHTML swap replaces the element htmx fired afterSwap on, so that event never
  // reaches the document: afterSettle fires on the new section, which is in the page.
  document.addEventListener("htmx:beforeSwap", function () {
    const log = logBox();
    followLog = !log || atEnd(log);
  });
  document.addEventListener("DOMContentLoaded", refresh);
  document.addEventListener("htmx:afterSettle", function (ev) {
    if (ev.target && ev.target.id === "run-progress") refresh();
  });
})();
