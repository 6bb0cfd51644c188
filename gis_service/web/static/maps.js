/* gis_service map helpers: the offline basemap, the case tiles, drill-down, timelines.
   Served by our own server; needs Leaflet and Leaflet.VectorGrid (also served by us). */
(function () {
  "use strict";
  var stats = (window.gisStats = { tilesLoaded: 0, tileErrors: 0, features: 0, ready: false,
                                    firstPaint: null });
  /* when the map first shows data: the page's own figure for "time to first map paint" */
  function painted() {
    if (stats.firstPaint === null) { stats.firstPaint = performance.now(); }
  }

  function pick(styles, value) {
    return (styles && (styles[value] || styles["default"])) || { weight: 1, color: "#999" };
  }

  /* The basemap on a page's own map: fetch /tiles/style.json, then gisBasemap. A promise
     (rejected when the style cannot be had: the page's own layers still show). */
  window.gisAddBasemap = function (map) {
    return fetch("/tiles/style.json", { credentials: "same-origin" })
      .then(function (r) { return r.json(); })
      .then(function (style) { window.gisBasemap(map, style); });
  };
  /* The basemap from /tiles/basemap, styled by /tiles/style.json (both ours). */
  window.gisBasemap = function (map, style) {
    map.getContainer().style.background = style.background || "#f4f1ea";
    var layerStyles = {};
    Object.keys(style.layers).forEach(function (name) {
      var spec = style.layers[name];
      layerStyles[name] = function (props) {
        var s = Object.assign({}, pick(spec.styles, spec.by ? props[spec.by] : "default"));
        s.fill = !!s.fill;
        return s;
      };
    });
    var layer = L.vectorGrid.protobuf("/tiles/basemap/{z}/{x}/{y}.pbf", {
      vectorTileLayerStyles: layerStyles, maxNativeZoom: 18, minZoom: 3, pane: "tilePane",
      rendererFactory: L.canvas.tile, attribution: style.attribution || "gis_service"
    });
    layer.on("tileload", function () { stats.tilesLoaded += 1; painted(); });
    layer.on("tileerror", function () { stats.tileErrors += 1; });
    return layer.addTo(map);
  };

  var STATUS_COLOURS = {
    reported: "#e6550d", accepted: "#fd8d3c", dispatched: "#fdae6b", in_progress: "#6baed6",
    handled: "#3182bd", closed: "#31a354", rejected: "#969696", duplicate: "#bdbdbd"
  };
  window.gisStatusColours = STATUS_COLOURS;

  /* Cases from /tiles/cases: single cases coloured by status (overdue ringed red), or,
     where a tile holds too many, counts per cell drawn as labelled circles. */
  window.gisCases = function (map, query, labels, onCase) {
    var url = "/tiles/cases/{z}/{x}/{y}.pbf" + (query ? "?" + query : "");
    var layer = L.vectorGrid.protobuf(url, {
      rendererFactory: L.svg.tile, interactive: true, maxNativeZoom: 18,
      vectorTileLayerStyles: {
        meta: function () { return []; },
        cases: function (p) {
          stats.features += 1;
          if (p.aggregated) {
            var r = Math.min(22, 5 + Math.sqrt(p.count));
            return { radius: r, weight: 1, color: p.overdue ? "#a50f15" : "#636363",
                     fill: true, fillColor: p.open ? "#fd8d3c" : "#74c476", fillOpacity: 0.6 };
          }
          return { radius: 5, weight: p.overdue ? 3 : 1, color: p.overdue ? "#a50f15" : "#fff",
                   fill: true, fillColor: STATUS_COLOURS[p.status] || "#444", fillOpacity: 0.9 };
        }
      }
    });
    layer.on("tileload", function () { stats.tilesLoaded += 1; });
    layer.on("tileerror", function () { stats.tileErrors += 1; });
    /* Clicks are resolved by the server (the case index), not by the tile's paths:
       Leaflet.VectorGrid's own feature events do not fire under Leaflet 1.9. */
    map.on("click", function (e) {
      var q = "lon=" + e.latlng.lng + "&lat=" + e.latlng.lat + "&z=" + map.getZoom() +
        (query ? "&" + query : "");
      fetch("/tiles/cases/pick?" + q, { credentials: "same-origin" })
        .then(function (r) { return r.ok ? r.json() : null; })
        .then(function (hit) {
          if (!hit || hit.id === null) { return; }
          if (map.getZoom() < 14) { map.setView(e.latlng, Math.min(map.getZoom() + 2, 18)); }
          else if (onCase) { onCase(hit.id, e.latlng); }
        })
        .catch(function () { /* the page moved on (a drill-down click): nothing to show */ });
    });
    return layer.addTo(map);
  };

  /* A case's timeline in a popup, fetched from the API with the page's sign-in. */
  window.gisTimeline = function (map, labels) {
    return function (id, latlng) {
      fetch("/api/v1/cases/" + id, { credentials: "same-origin" })
        .then(function (r) { return r.json(); })
        .then(function (c) {
          var rows = (c.timeline || []).map(function (e) {
            return "<li><b>" + (labels["status." + e.to_status] || e.action) + "</b> " +
              (e.at || "").slice(0, 16).replace("T", " ") + " " + (e.actor_name || "") +
              (e.note ? "：" + e.note : "") + "</li>";
          }).join("");
          L.popup({ maxWidth: 360 }).setLatLng(latlng).setContent(
            "<div class='gis-case' data-case='" + id + "'><b>" + (c.case_no || id) + "</b> " +
            (labels["status." + c.status] || c.status) + "<br>" + (c.description || "") +
            "<h4>" + labels.timeline + "</h4><ol>" + rows + "</ol></div>").openOn(map);
        })
        .catch(function () { /* navigated away while loading */ });
    };
  };

  /* Clicking a unit opens the same page one level down, inside it. */
  window.gisDrill = function (layer, makeUrl) {
    layer.eachLayer(function (l) {
      var url = makeUrl(l.feature.properties);
      if (!url) { return; }
      l.on("click", function () { window.location.href = url; });
    });
  };

  window.gisReady = function () {
    stats.ready = true;
    if (document.querySelector(".leaflet-overlay-pane path")) { painted(); }
  };
})();

/* Exported pages (gis-service maps export) carry their data inline: no server behind them. */
(function () {
  "use strict";
  function pick(styles, value) {
    return (styles && (styles[value] || styles["default"])) || { weight: 1, color: "#999" };
  }
  window.gisBasemapInline = function (map, layers, style) {
    map.getContainer().style.background = style.background || "#f4f1ea";
    Object.keys(layers).forEach(function (name) {
      var spec = style.layers[name] || {};
      L.geoJSON(layers[name], {
        interactive: false,
        style: function (f) { return pick(spec.styles, spec.by ? f.properties[spec.by] : "default"); }
      }).addTo(map);
    });
    window.gisStats.tilesLoaded += 1;
    if (window.gisStats.firstPaint === null) { window.gisStats.firstPaint = performance.now(); }
  };
  window.gisCasesInline = function (map, fc, labels) {
    var colours = window.gisStatusColours || {};
    return L.geoJSON(fc, {
      pointToLayer: function (f, latlng) {
        var p = f.properties;
        window.gisStats.features += 1;
        if (p.aggregated) {
          return L.circleMarker(latlng, { radius: Math.min(22, 5 + Math.sqrt(p.count)),
            weight: 1, color: p.overdue ? "#a50f15" : "#636363", fillColor: p.open ? "#fd8d3c" : "#74c476",
            fillOpacity: 0.6 }).bindTooltip(String(p.count));
        }
        return L.circleMarker(latlng, { radius: 5, weight: p.overdue ? 3 : 1,
          color: p.overdue ? "#a50f15" : "#fff", fillColor: colours[p.status] || "#444",
          fillOpacity: 0.9 }).bindTooltip((labels["status." + p.status] || p.status) + " " + (p.reported || ""));
      }
    }).addTo(map);
  };
})();
