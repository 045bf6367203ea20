// The calibration page's charts: approved-outcome rate by filter score bin.
// Data comes from json_script elements (the CSP forbids inline scripts); the
// same figures are in the table under each chart.
(function () {
  "use strict";
  function draw() {
    if (typeof Chart === "undefined") return;
    document.querySelectorAll("canvas[data-calibration-chart]").forEach(function (canvas) {
      var source = document.getElementById(canvas.dataset.calibrationChart);
      if (!source || canvas.dataset.drawn) return;
      var data = JSON.parse(source.textContent);
      canvas.dataset.drawn = "1";
      new Chart(canvas, {
        type: "bar",
        data: {
          labels: data.labels,
          datasets: [{
            label: "Approved-outcome rate (%)",
            data: data.rates,
            backgroundColor: "rgba(46, 110, 180, 0.7)",
          }],
        },
        options: {
          animation: false,
          scales: {
            x: { title: { display: true, text: data.filter + " score (bin)" } },
            y: { min: 0, max: 100, title: { display: true, text: "approved by reviewers (%)" } },
          },
          plugins: {
            legend: { display: true },
            tooltip: {
              callbacks: {
                afterLabel: function (ctx) { return "n = " + data.counts[ctx.dataIndex] + " reviewed"; },
              },
            },
          },
        },
      });
    });
  }
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", draw);
  } else {
    draw();
  }
})();
