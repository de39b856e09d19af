/* The dashboard's charts (api/routes/dashboard.py): each element with data-chart is drawn by ECharts from the JSON
   block #charts; the same figures are in the table beside it. No inline script: the page's CSP allows this file. */
(function () {
  "use strict";
  var block = document.getElementById("charts");
  if (!block || typeof echarts === "undefined") { return; }
  var specs = JSON.parse(block.textContent);
  var colours = ["#2f6fb3", "#e0a526", "#c8372d", "#3a9d5d", "#7d5ba6"];
  var lightColours = ["#3a9d5d", "#e0a526", "#c8372d"];

  function option(spec) {
    var unit = spec.unit || "";
    var base = { animation: false, tooltip: { trigger: spec.type === "pie" ? "item" : "axis" },
                 legend: { top: 0 }, color: spec.type === "pie" ? lightColours : colours };
    if (spec.type === "pie") {
      base.series = [{ type: "pie", radius: ["35%", "65%"], top: 30,
                       label: { formatter: "{b}: {c}" + unit },
                       data: spec.categories.map(function (name, i) {
                         return { name: name, value: spec.series[0].values[i] };
                       }) }];
      return base;
    }
    base.grid = { left: 48, right: 16, top: 40, bottom: 8, containLabel: true };
    base.xAxis = { type: "category", data: spec.categories,
                   axisLabel: { interval: 0, rotate: spec.categories.length > 6 ? 35 : 0, width: 120,
                                overflow: "truncate" } };
    base.yAxis = { type: "value", name: unit, max: unit === "%" ? 100 : null };
    base.series = spec.series.map(function (s) {
      return { type: spec.type, name: s.name, data: s.values, connectNulls: true,
               label: { show: spec.categories.length <= 12, position: "top" } };
    });
    return base;
  }

  var charts = [];
  Array.prototype.forEach.call(document.querySelectorAll("[data-chart]"), function (el) {
    var spec = specs[el.getAttribute("data-chart")];
    if (!spec) { return; }
    var chart = echarts.init(el, null, { renderer: "canvas" });
    chart.on("finished", function () { el.setAttribute("data-drawn", "true"); });
    chart.setOption(option(spec));
    charts.push(chart);
  });
  window.addEventListener("resize", function () {
    charts.forEach(function (chart) { chart.resize(); });
  });
})();
