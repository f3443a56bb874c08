// Shared by gridcore's map pages: basemap, token, fetch with problem+json errors.
"use strict";
const GC = (function () {
  const cfg = JSON.parse(document.getElementById("gc-config").textContent);
  const params = new URLSearchParams(location.search);
  const basemap = params.get("basemap") || cfg.basemap;
  const crs = basemap === "gaode" ? "gcj02" : "wgs84";
  const tiles = {
    osm: ["https://tile.openstreetmap.org/{z}/{x}/{y}.png", "© OpenStreetMap contributors", "abc"],
    gaode: ["https://webrd0{s}.is.autonavi.com/appmaptile?lang=zh_cn&size=1&scale=1&style=8&x={x}&y={y}&z={z}",
            "© 高德地图 AutoNavi", "1234"],
  };
  function makeMap(id) {
    const center = cfg.centers[basemap] || cfg.centers.osm;
    const map = L.map(id, {zoomControl: true}).setView([center[1], center[0]], cfg.zoom);
    const t = tiles[basemap] || tiles.osm;
    L.tileLayer(t[0], {attribution: t[1], subdomains: t[2], maxZoom: 19}).addTo(map);
    L.control.scale({imperial: false}).addTo(map);
    return map;
  }
  function token() { return localStorage.getItem("gridcore-token") || ""; }
  function setToken(v) { localStorage.setItem("gridcore-token", v.trim()); }
  async function api(path, options) {
    options = options || {};
    const headers = Object.assign({"Accept": "application/json"}, options.headers || {});
    if (token()) headers["Authorization"] = "Bearer " + token();
    if (options.body && typeof options.body !== "string") {
      headers["Content-Type"] = "application/json";
      options.body = JSON.stringify(options.body);
    }
    const r = await fetch(path, Object.assign({}, options, {headers: headers}));
    const body = await r.json().catch(() => ({}));
    if (!r.ok) {
      const err = new Error(body.detail || body.title || ("HTTP " + r.status));
      err.status = r.status;
      throw err;
    }
    return body;
  }
  function esc(s) {
    return String(s == null ? "" : s).replace(/[&<>"']/g,
      c => ({"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;"}[c]));
  }
  return {cfg, basemap, crs, makeMap, token, setToken, api, esc};
})();
