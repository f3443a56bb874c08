// The street-and-alley chief's map (街巷长): my cells, their components, my open cases.
"use strict";
(function () {
  const map = GC.makeMap("map");
  const status = document.getElementById("status");
  const colours = {green: "#2e7d32", yellow: "#f9a825", red: "#c62828"};
  const words = {green: "未超时", yellow: "将超时", red: "已超时"};
  let layer = null;

  async function load() {
    if (!GC.token()) { status.textContent = "请输入街巷长令牌"; return; }
    try {
      const me = await GC.api("/v1/chiefs/me/view");
      document.getElementById("chief-name").textContent = me.chief.name;
      const fc = await GC.api("/v1/chiefs/" + encodeURIComponent(me.chief.id) +
                              "/view.geojson?basemap=" + GC.basemap);
      if (layer) map.removeLayer(layer);
      layer = L.geoJSON(fc, {
        style: f => ({color: "#1f4e9c", weight: 2, fillOpacity: 0.08}),
        pointToLayer: (f, latlng) => {
          const p = f.properties;
          if (p.kind === "case") {
            return L.circleMarker(latlng, {radius: 9, color: "#000", weight: 1,
              fillColor: colours[p.deadline_status], fillOpacity: 0.9, className: "case-marker"});
          }
          return L.circleMarker(latlng, {radius: 3, color: "#1565c0", weight: 1,
            fillOpacity: 0.7, className: "component-marker"});
        },
        onEachFeature: (f, l) => {
          const p = f.properties;
          if (p.kind === "cell") l.bindPopup("单元网格 " + GC.esc(p.code));
          else if (p.kind === "component") l.bindPopup("部件 " + GC.esc(p.name) + " " +
            GC.esc(p.code) + "<br>状态: " + GC.esc(p.status) + "<br>主管部门: " + GC.esc(p.dept_name));
          else l.bindPopup("案卷 #" + p.id + " " + GC.esc(p.event_class_name) + "<br>" +
            words[p.deadline_status] + " · 时限 " + GC.esc(p.deadline));
        },
      }).addTo(map);
      const kinds = {cell: 0, component: 0, case: 0};
      fc.features.forEach(f => { kinds[f.properties.kind] += 1; });
      document.getElementById("chief-summary").textContent =
        "街巷 " + me.alleys.length + " 条 · 网格 " + kinds.cell + " 个 · 部件 " +
        kinds.component + " 个 · 未结案件 " + kinds.case + " 件";
      document.getElementById("case-list").innerHTML = me.open_cases.map(c =>
        "<li style='color:" + colours[c.deadline_status] + "'>#" + c.id + " " +
        GC.esc(c.event_class_name) + " · " + words[c.deadline_status] + "</li>").join("");
      if (kinds.cell) map.fitBounds(layer.getBounds());
      document.body.dataset.cellsDrawn = kinds.cell;
      document.body.dataset.casesDrawn = kinds.case;
      document.body.dataset.componentsDrawn = kinds.component;
      status.textContent = "";
    } catch (e) {
      status.textContent = "加载失败: " + e.message;
      document.body.dataset.error = String(e.status || "");
    }
  }
  const tokenInput = document.getElementById("token");
  tokenInput.value = GC.token();
  tokenInput.addEventListener("change", () => { GC.setToken(tokenInput.value); load(); });
  load();
  document.body.dataset.ready = "1";
})();
