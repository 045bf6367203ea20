// The flywheel dashboard's charts, drawn from the figures the page embeds with
// json_script (#dashboard-data). The same figures are in the page's tables.
(function () {
  "use strict";

  const PALETTE = ["#2f6fde", "#e07b39", "#3a9d5d", "#b8433f", "#7d5ba6", "#8c6d3f",
                   "#d35fb7", "#6b7a8f", "#c9a227", "#2aa198"];

  function color(i) { return PALETTE[i % PALETTE.length]; }

  // A long axis title is drawn centred on its axis and cut at the canvas edge: break it
  // into lines short enough to fit the charts' height (each line is drawn in full).
  const TITLE_LINE = 24;

  function lines(title) {
    const out = [];
    title.split(" ").forEach((word) => {
      const last = out[out.length - 1];
      if (last !== undefined && (last + " " + word).length <= TITLE_LINE) {
        out[out.length - 1] = last + " " + word;
      } else {
        out.push(word);
      }
    });
    return out.length === 1 ? out[0] : out;
  }

  function axis(title, extra) {
    return Object.assign({ title: { display: true, text: lines(title) }, beginAtZero: true },
                         extra || {});
  }

  // Day labels stay level (thinned to those that fit): rotated, a month of them takes the
  // height of the plot, and a y-axis title centred on a short plot runs off the canvas top.
  function dayAxis() {
    return { title: { display: true, text: "day (UTC)" },
             ticks: { maxRotation: 0, autoSkipPadding: 8 } };
  }

  function percentAxis(title) {
    return axis(title, { position: "right", min: 0, max: 100, grid: { drawOnChartArea: false } });
  }

  function keys(days, field) {
    const seen = new Set();
    days.forEach((d) => Object.keys(d[field]).forEach((k) => seen.add(k)));
    return Array.from(seen).sort();
  }

  function stacked(days, field, names) {
    // An empty window still gets one (zero) series, so the chart keeps its axes and legend.
    if (!names.length) {
      return [{ type: "bar", label: "none", stack: field, backgroundColor: color(7),
                data: days.map(() => 0) }];
    }
    return names.map((name, i) => ({
      type: "bar", label: name, stack: field, backgroundColor: color(i),
      data: days.map((d) => d[field][name] || 0),
    }));
  }

  function share(part, whole) { return whole ? Math.round(1000 * part / whole) / 10 : null; }

  function draw(id, config) {
    const canvas = document.getElementById(id);
    if (!canvas) { return; }
    // A point at the top of its scale (a rate of 100%) is drawn whole, in the padding above
    // the plot, rather than cut in half at the plot's edge.
    config.data.datasets.forEach((d) => { d.clip = false; });
    config.options = Object.assign({
      responsive: true, maintainAspectRatio: false, animation: false,
      layout: { padding: { top: 8, right: 4 } },
      plugins: { legend: { display: true, position: "bottom" } },
    }, config.options || {});
    new window.Chart(canvas, config);
  }

  function render() {
    const node = document.getElementById("dashboard-data");
    if (!node || !window.Chart) { return; }
    const m = JSON.parse(node.textContent);
    const days = m.days;
    const labels = days.map((d) => d.date);

    draw("chart-collection", {
      data: {
        labels,
        datasets: [
          { type: "line", label: "interactions", data: days.map((d) => d.interactions),
            borderColor: "#1d2330", backgroundColor: "#1d2330", yAxisID: "y" },
          { type: "line", label: "share with feedback (%)", yAxisID: "y1", borderDash: [4, 3],
            borderColor: "#7d5ba6", backgroundColor: "#7d5ba6",
            data: days.map((d) => share(d.with_feedback, d.interactions)) },
        ].concat(stacked(days, "feedback", keys(days, "feedback")).map((s) =>
          Object.assign(s, { label: "feedback: " + s.label, yAxisID: "y" }))),
      },
      options: { scales: { x: dayAxis(), y: axis("events per day"),
                           y1: percentAxis("interactions with feedback (%)") } },
    });

    draw("chart-candidates", {
      data: {
        labels,
        datasets: stacked(days, "candidates", keys(days, "candidates")).concat([
          { type: "line", label: "pass rate (%)", yAxisID: "y1", borderColor: "#1d2330",
            backgroundColor: "#1d2330", data: days.map((d) => {
              const failed = Object.values(d.failed).reduce((a, b) => a + b, 0);
              return share(d.passed, d.passed + failed);
            }) },
        ]),
      },
      options: { scales: { x: Object.assign(dayAxis(), { stacked: true }),
                           y: axis("candidates per day", { stacked: true }),
                           y1: percentAxis("pass rate (%)") } },
    });

    draw("chart-filters", {
      data: { labels, datasets: stacked(days, "failed", keys(days, "failed")) },
      options: { scales: { x: Object.assign(dayAxis(), { stacked: true }),
                           y: axis("candidates failed per day, by filter", { stacked: true }) } },
    });

    draw("chart-lag", {
      type: "line",
      data: {
        labels,
        datasets: [
          { label: "p50", data: days.map((d) => d.lag_p50_s), borderColor: color(0),
            backgroundColor: color(0) },
          { label: "p95", data: days.map((d) => d.lag_p95_s), borderColor: color(1),
            backgroundColor: color(1) },
        ],
      },
      options: { scales: { x: dayAxis(),
                           y: axis("curation lag (seconds, bucket upper bound)",
                                   { type: "logarithmic", beginAtZero: false }) } },
    });

    draw("chart-reviews", {
      data: { labels, datasets: stacked(days, "reviews_by", keys(days, "reviews_by")) },
      options: { scales: { x: Object.assign(dayAxis(), { stacked: true }),
                           y: axis("reviews per day, by annotator", { stacked: true }) } },
    });

    draw("chart-queue", {
      data: {
        labels,
        datasets: [
          { type: "bar", label: "queued", data: days.map((d) => d.queued), backgroundColor: color(0) },
          { type: "bar", label: "approved", data: days.map((d) => d.approved), backgroundColor: color(2) },
          { type: "bar", label: "rejected", data: days.map((d) => d.rejected), backgroundColor: color(3) },
          { type: "line", label: "approved-outcome rate (%)", yAxisID: "y1", borderColor: "#1d2330",
            backgroundColor: "#1d2330",
            data: days.map((d) => share(d.approved, d.approved + d.rejected)) },
        ],
      },
      options: { scales: { x: dayAxis(), y: axis("items per day"),
                           y1: percentAxis("approved-outcome rate (%)") } },
    });

    draw("chart-alpha", {
      type: "line",
      data: {
        labels,
        datasets: [{ label: "α (decision)", data: days.map((d) => d.alpha), spanGaps: true,
                     borderColor: color(4), backgroundColor: color(4) }],
      },
      options: { scales: { x: dayAxis(),
                           y: axis("Krippendorff's α", { min: -1, max: 1, beginAtZero: false }) } },
    });

    draw("chart-gold", {
      type: "bar",
      data: {
        labels,
        datasets: [
          { label: "gold pairs", data: days.map((d) => d.gold), backgroundColor: color(2) },
          { label: "dataset versions frozen", data: days.map((d) => d.versions),
            backgroundColor: color(4) },
        ],
      },
      options: { scales: { x: dayAxis(), y: axis("count per day") } },
    });

    const cycles = m.cycles;
    draw("chart-cycles", {
      data: {
        labels: cycles.map((c) => c.model + " (" + c.dataset_version + ")"),
        datasets: [
          { type: "bar", label: "interval of the delta", backgroundColor: "rgba(47,111,222,0.35)",
            maxBarThickness: 48,
            data: cycles.map((c) => (c.delta_ci[0] === null ? null : [c.delta_ci[0], c.delta_ci[1]])) },
          { type: "line", label: "delta (candidate − predecessor)", showLine: false,
            pointRadius: 5, borderColor: "#1d2330", backgroundColor: cycles.map((c) =>
              (c.status === "promoted" || c.promoted_at ? "#3a9d5d" : "#b8433f")),
            data: cycles.map((c) => c.delta) },
        ],
      },
      options: { scales: { x: { title: { display: true, text: "model (dataset version)" } },
                           y: axis("gate metric delta", { beginAtZero: false }) } },
    });
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", render);
  } else {
    render();
  }
})();
