// The supervisor's map (网格监督员): the grid, click to locate, report an incident.
"use strict";
(function () {
  const map = GC.makeMap("map");
  const info = document.getElementById("cell-info");
  const status = document.getElementById("status");
  let cellsLayer = null, streetsLayer = null, marker = null, picked = null;

  GC.api("/grid/divisions.geojson?level=street&basemap=" + GC.basemap).then(fc => {
    streetsLayer = L.geoJSON(fc, {
      style: {color: "#1f4e9c", weight: 2, fill: false},
      interactive: false,
    }).addTo(map);
    document.body.dataset.streetsDrawn = fc.features.length;
  }).catch(e => { status.textContent = "街道图层加载失败: " + e.message; });

  function loadCells() {
    if (map.getZoom() < 15) {
      if (cellsLayer) { map.removeLayer(cellsLayer); cellsLayer = null; }
      status.textContent = "放大到 15 级以上显示单元网格";
      document.body.dataset.cellsDrawn = 0;
      return;
    }
    const b = map.getBounds();
    const bbox = [b.getWest(), b.getSouth(), b.getEast(), b.getNorth()].map(v => v.toFixed(6)).join(",");
    GC.api("/grid/cells.geojson?bbox=" + bbox + "&basemap=" + GC.basemap).then(fc => {
      if (cellsLayer) map.removeLayer(cellsLayer);
      cellsLayer = L.geoJSON(fc, {
        style: {color: "#555", weight: 1, fillColor: "#ffcc00", fillOpacity: 0.05},
        interactive: false,
      }).addTo(map);
      status.textContent = "单元网格 " + fc.features.length + " 个";
      document.body.dataset.cellsDrawn = fc.features.length;
    }).catch(e => { status.textContent = "网格图层加载失败: " + e.message; });
  }
  map.on("moveend", loadCells);
  // The cell under a click comes from the server's exact lookup, not from the browser's
  // hit test on simplified, pixel-rounded SVG paths (wrong within a pixel of an edge).
  let selected = null;
  map.on("click", ev => {
    const q = "lon=" + ev.latlng.lng + "&lat=" + ev.latlng.lat + "&basemap=" + GC.basemap;
    GC.api("/grid/cell.geojson?" + q).then(f => {
      if (selected) map.removeLayer(selected);
      selected = L.geoJSON(f, {style: {color: "#c00", weight: 3, fill: false},
                               interactive: false}).addTo(map);
      showCell(f.properties, ev.latlng);
    }).catch(e => {
      document.getElementById("cell-code").textContent = "(不在网格内)";
      info.textContent = e.message;
    });
  });
  loadCells();

  function showCell(p, latlng) {
    picked = {lon: latlng.lng, lat: latlng.lat};
    document.body.dataset.picked = JSON.stringify([latlng.lng, latlng.lat, GC.crs]);
    if (marker) map.removeLayer(marker);
    marker = L.circleMarker(latlng, {radius: 6, color: "#c00"}).addTo(map);
    document.getElementById("cell-code").textContent = p.code;
    info.innerHTML =
      "<div>社区: " + GC.esc(p.community_name) + " (" + GC.esc(p.community_code) + ")</div>" +
      "<div>街道: " + GC.esc(p.street_name) + " (" + GC.esc(p.street_code) + ")</div>" +
      "<div>区: " + GC.esc(p.district_name) + " (" + GC.esc(p.district_code) + ")</div>" +
      "<div>面积: " + GC.esc(p.area_m2) + " m²</div>" +
      "<div>位置 (" + GC.crs + "): " + latlng.lng.toFixed(6) + ", " + latlng.lat.toFixed(6) + "</div>";
    document.getElementById("report").hidden = false;
    const near = document.getElementById("nearest");
    near.innerHTML = "";
    if (!GC.token()) { near.textContent = "输入令牌后可查看最近部件并上报"; return; }
    GC.api("/v1/locate?lon=" + latlng.lng + "&lat=" + latlng.lat + "&crs=" + GC.crs)
      .then(loc => {
        const items = (loc.nearest_components || []).map(c =>
          "<li>" + GC.esc(c.class_name) + " " + GC.esc(c.code) + " · " +
          Math.round(c.distance_m) + " m · " + GC.esc(c.dept_name) + "</li>");
        near.innerHTML = "<div>最近部件:</div><ul>" + items.join("") + "</ul>";
      })
      .catch(e => { near.textContent = "定位失败: " + e.message; });
  }

  const tokenInput = document.getElementById("token");
  tokenInput.value = GC.token();
  tokenInput.addEventListener("change", () => { GC.setToken(tokenInput.value); loadClasses(); });

  function loadClasses() {
    if (!GC.token()) return;
    GC.api("/v1/event-classes").then(list => {
      const sel = document.getElementById("event-class");
      sel.innerHTML = list.map(c => "<option value='" + GC.esc(c.code) + "'>" +
        GC.esc(c.code + " " + c.name) + "</option>").join("");
    }).catch(() => {});
  }
  loadClasses();

  document.getElementById("report").addEventListener("submit", ev => {
    ev.preventDefault();
    const out = document.getElementById("report-result");
    if (!picked) { out.textContent = "请先在地图上点选位置"; return; }
    GC.api("/v1/cases", {method: "POST", body: {
      lon: picked.lon, lat: picked.lat, crs: GC.crs,
      event_class: document.getElementById("event-class").value,
      description: document.getElementById("description").value,
      photo_ref: document.getElementById("photo").value || null,
    }}).then(c => { out.textContent = "已上报, 案卷编号 " + c.id; })
      .catch(e => { out.textContent = "上报失败: " + e.message; });
  });
  document.body.dataset.ready = "1";
})();
