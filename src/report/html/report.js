// @ts-check
// kacap's HTML report: builds the page from the JSON in #data. No network,
// no libraries. Lanes: one per connection, grouped by server and sorted by
// how they ended (dead and killed first); x is time, zoomed with the wheel
// or +/- and panned by dragging; a click on a row (or #flow-N in the
// address) opens that connection's explanation and sequence diagram.
"use strict";

(function () {
  const dataEl = document.getElementById("data");
  const data = JSON.parse(dataEl ? dataEl.textContent || "{}" : "{}");
  /** @type {Array<any>} */
  const flows = data.flows || [];
  const SVGNS = "http://www.w3.org/2000/svg";
  const LANE = 22;
  const LEFT = 260;
  const AXIS = 24;

  /** @param {string} id @returns {HTMLElement} */
  function byId(id) {
    const el = document.getElementById(id);
    if (!el) throw new Error("no #" + id);
    return el;
  }

  /** Seconds, readably: 2 h, 15 min, 2.00s, 35ms, 52µs. @param {number} s */
  function secs(s) {
    if (s >= 3600 && Math.abs(s / 3600 - Math.round(s / 3600)) < 1 / 3600) return Math.round(s / 3600) + " h";
    if (s >= 600 && Math.abs(s / 60 - Math.round(s / 60)) < 1 / 60) return Math.round(s / 60) + " min";
    if (s >= 100) return s.toFixed(0) + "s";
    if (s >= 1 || s === 0) return s.toFixed(2) + "s";
    if (s >= 0.001) return (s * 1e3).toFixed(0) + "ms";
    return (s * 1e6).toFixed(0) + "µs";
  }

  // Summary.
  byId("span").textContent =
    (data.start ? "From " + data.start + ", " : "") + secs(data.span || 0) + " of capture: " +
    data.frames + " frames, " + data.segments + " TCP segments, " + data.flowsTotal + " connections" +
    (data.omitted ? " (drawn: the " + flows.length + " most telling; left out: " + data.omitted + ")" : "") + ".";
  const counts = byId("counts");
  for (const [verdict, n] of Object.entries(data.counts || {})) {
    const li = document.createElement("li");
    const num = document.createElement("span");
    num.className = "n";
    num.textContent = String(n);
    li.append(num, " " + verdict);
    counts.append(li);
  }
  const notes = byId("notes");
  for (const n of data.notes || []) {
    const li = document.createElement("li");
    li.textContent = n;
    notes.append(li);
  }
  byId("footer").textContent =
    "Made by kacap. Shapes tell marks apart without color: filled circle = probe answered, hollow circle = probe unanswered, cross = probe answered by RST, square = RST, diamond = injected RST, triangle = FIN, plus = application ping.";

  // Lanes: by server, dead and killed first.
  const order = flows.slice().sort((a, b) =>
    a.server < b.server ? -1 : a.server > b.server ? 1 : a.rank - b.rank || a.id - b.id);
  const lanes = /** @type {SVGSVGElement} */ (/** @type {unknown} */ (byId("lanes")));
  const span = Math.max(data.span || 0, 1e-6);
  let view = [0, span * 1.02];
  let chosen = -1;

  /** @param {string} tag @param {Record<string, string|number>} attrs */
  function el(tag, attrs) {
    const e = document.createElementNS(SVGNS, tag);
    for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, String(v));
    return e;
  }

  /** A nice tick step for a view of `width` seconds. @param {number} width */
  function step(width) {
    const raw = width / 8;
    const pow = Math.pow(10, Math.floor(Math.log10(raw)));
    for (const m of [1, 2, 5, 10]) if (pow * m >= raw) return pow * m;
    return pow * 10;
  }

  /** The shape of one mark. @param {string} kind @param {number} x @param {number} y */
  function shape(kind, x, y) {
    switch (kind) {
      case "probe-ok":
      case "probe-lost":
        return el("circle", { cx: x, cy: y, r: 4.5 });
      case "probe-rst":
        return el("path", { d: `M${x - 4} ${y - 4}L${x + 4} ${y + 4}M${x + 4} ${y - 4}L${x - 4} ${y + 4}` });
      case "rst":
        return el("rect", { x: x - 4, y: y - 4, width: 8, height: 8 });
      case "injected":
        return el("path", { d: `M${x} ${y - 5}L${x + 5} ${y}L${x} ${y + 5}L${x - 5} ${y}Z` });
      case "fin":
        return el("path", { d: `M${x - 4} ${y + 4}L${x} ${y - 4}L${x + 4} ${y + 4}Z` });
      case "app":
        return el("path", { d: `M${x} ${y - 5}V${y + 5}M${x - 5} ${y}H${x + 5}` });
      case "ack":
      case "probe-ack":
        return el("path", { d: `M${x} ${y - 2}V${y + 2}` });
      default:
        return el("path", { d: `M${x} ${y - 5}V${y + 5}` });
    }
  }

  function draw() {
    const width = Math.max(lanes.clientWidth || 900, 400);
    const height = AXIS + order.length * LANE + 6;
    lanes.setAttribute("viewBox", `0 0 ${width} ${height}`);
    lanes.setAttribute("height", String(height));
    lanes.replaceChildren();
    const plot = width - LEFT - 12;
    const x = (/** @type {number} */ t) => LEFT + ((t - view[0]) / (view[1] - view[0])) * plot;
    // Axis.
    const axis = el("g", { class: "axis" });
    const st = step(view[1] - view[0]);
    for (let t = Math.ceil(view[0] / st) * st; t <= view[1]; t += st) {
      axis.append(el("line", { x1: x(t), x2: x(t), y1: AXIS - 4, y2: height, class: "tick" }));
      const label = el("text", { x: x(t) + 2, y: AXIS - 8 });
      label.textContent = "+" + secs(Math.max(t, 0));
      axis.append(label);
    }
    lanes.append(axis);
    order.forEach((f, i) => {
      const y = AXIS + i * LANE + LANE / 2;
      const g = el("g", { class: "lane", "data-flow": f.id, id: "lane-" + f.id });
      g.append(el("rect", {
        x: 0, y: y - LANE / 2, width, height: LANE,
        class: "lane-bg" + (i % 2 ? " alt" : "") + (f.id === chosen ? " chosen" : ""),
      }));
      const name = el("text", { x: 4, y: y + 4 });
      name.textContent = `${f.id} ${f.server} ${f.verdict}`;
      g.append(name);
      const marks = f.marks;
      if (marks.length) {
        const a = Math.max(x(marks[0][0]), LEFT), b = Math.min(x(marks[marks.length - 1][0]), width);
        if (b > a) g.append(el("line", { x1: a, x2: b, y1: y, y2: y, class: "life" }));
      }
      // Probes go on top: a RST right after its probe must not hide it.
      /** @type {Element[]} */
      const probes = [];
      for (let j = 0; j < marks.length; j++) {
        const [t, kind, from, n, label] = marks[j];
        const px = x(t);
        // Idle gaps, labeled where there is room; against the server's
        // middlebox bounds, shaded: past the upper bound (long enough to be
        // forgotten), between the bounds (uncertain).
        if (j > 0) {
          const prev = x(marks[j - 1][0]);
          const gap = t - marks[j - 1][0];
          if (f.band && gap > f.band[0]) {
            g.append(el("rect", {
              x: Math.max(prev, LEFT), y: y - LANE / 2 + 2, width: Math.max(Math.min(px, width) - Math.max(prev, LEFT), 0), height: LANE - 4,
              class: gap >= f.band[1] ? "gap-dead" : "gap-risk",
            }));
          }
          if (px - prev > 70 && t - marks[j - 1][0] >= 0.5) {
            const gl = el("text", { x: (prev + px) / 2 - 14, y: y - 4, class: "gap-label" });
            gl.textContent = secs(t - marks[j - 1][0]);
            g.append(gl);
          }
        }
        if (px < LEFT - 6 || px > width + 6) continue;
        const m = shape(kind, px, y);
        m.setAttribute("class", "m mark " + kind);
        m.setAttribute("data-frame", String(n));
        m.setAttribute("tabindex", "0");
        const title = el("title", {});
        title.textContent = `frame ${n}, +${secs(t)}, ${label} from ${from}`;
        m.append(title);
        m.addEventListener("click", () => showMark(f, marks[j]));
        m.addEventListener("keydown", (e) => { if (/** @type {KeyboardEvent} */ (e).key === "Enter") showMark(f, marks[j]); });
        if (kind.startsWith("probe-") && kind !== "probe-ack") probes.push(m);
        else g.append(m);
      }
      g.append(...probes);
      g.addEventListener("dblclick", () => choose(f.id));
      lanes.append(g);
    });
    byId("view").textContent = `showing +${secs(view[0])} to +${secs(view[1])}`;
  }

  /** @param {any} f @param {Array<any>} m */
  function showMark(f, m) {
    byId("mark").textContent = `flow ${f.id}: frame ${m[3]} at +${secs(m[0])}: ${m[4]} from the ${m[2]}`;
  }

  /** Zoom by `factor` around time `at`. @param {number} factor @param {number} at */
  function zoom(factor, at) {
    const w = Math.min(Math.max((view[1] - view[0]) * factor, 1e-6), span * 1.02);
    const left = at - ((at - view[0]) / (view[1] - view[0])) * w;
    view = [Math.max(left, -span * 0.01), Math.max(left, -span * 0.01) + w];
    draw();
  }
  function fit() { view = [0, span * 1.02]; draw(); }
  byId("zoom-in").addEventListener("click", () => zoom(0.5, (view[0] + view[1]) / 2));
  byId("zoom-out").addEventListener("click", () => zoom(2, (view[0] + view[1]) / 2));
  byId("zoom-fit").addEventListener("click", fit);
  /** @param {number} clientX */
  function timeAt(clientX) {
    const r = lanes.getBoundingClientRect();
    const plot = r.width - LEFT - 12;
    return view[0] + ((clientX - r.left - LEFT) / plot) * (view[1] - view[0]);
  }
  lanes.addEventListener("wheel", (e) => {
    e.preventDefault();
    zoom(e.deltaY < 0 ? 0.8 : 1.25, timeAt(e.clientX));
  }, { passive: false });
  /** @type {number|null} */
  let dragFrom = null;
  lanes.addEventListener("mousedown", (e) => { dragFrom = e.clientX; });
  window.addEventListener("mouseup", () => { dragFrom = null; });
  window.addEventListener("mousemove", (e) => {
    if (dragFrom === null) return;
    const dt = timeAt(dragFrom) - timeAt(e.clientX);
    dragFrom = e.clientX;
    view = [view[0] + dt, view[1] + dt];
    draw();
  });
  document.addEventListener("keydown", (e) => {
    const t = /** @type {HTMLElement} */ (e.target);
    if (t && (t.tagName === "INPUT" || t.tagName === "SELECT")) return;
    if (e.key === "+") zoom(0.5, (view[0] + view[1]) / 2);
    else if (e.key === "-") zoom(2, (view[0] + view[1]) / 2);
    else if (e.key === "0") fit();
  });
  window.addEventListener("resize", draw);

  // The table.
  const tbody = /** @type {HTMLTableSectionElement} */ (document.querySelector("#flows tbody"));
  /** @type {string} */ let sortKey = "id";
  let sortDir = 1;
  /** @param {any} f @param {string} k */
  function key(f, k) {
    if (k === "probes") return f.probes[0];
    return f[k] === null ? -1 : f[k];
  }
  function rows() {
    const want = /** @type {HTMLSelectElement} */ (byId("verdict")).value;
    const text = /** @type {HTMLInputElement} */ (byId("filter")).value.toLowerCase();
    const shown = flows.filter((f) =>
      (!want || f.verdict === want) &&
      (!text || [f.client, f.server, f.prober, f.verdict, f.ended].join(" ").toLowerCase().includes(text)));
    shown.sort((a, b) => {
      const x = key(a, sortKey), y = key(b, sortKey);
      return (x < y ? -1 : x > y ? 1 : 0) * sortDir || a.id - b.id;
    });
    tbody.replaceChildren();
    for (const f of shown) {
      const tr = document.createElement("tr");
      tr.dataset.flow = String(f.id);
      tr.tabIndex = 0;
      if (f.id === chosen) tr.className = "chosen";
      const cells = [f.id, f.client, f.server, f.verdict, f.prober, f.probes.join("/"),
        f.idle === null ? "-" : secs(f.idle), f.interval === null ? "-" : secs(f.interval),
        f.count === null ? "-" : f.count, f.ended];
      cells.forEach((c, i) => {
        const td = document.createElement("td");
        td.textContent = String(c);
        if (i === 3) td.className = "v-" + f.verdict;
        tr.append(td);
      });
      tr.addEventListener("click", () => { location.hash = "flow-" + f.id; });
      tr.addEventListener("keydown", (e) => { if (e.key === "Enter") location.hash = "flow-" + f.id; });
      tbody.append(tr);
    }
  }
  document.querySelectorAll("#flows th").forEach((th) => {
    th.addEventListener("click", () => {
      const k = /** @type {HTMLElement} */ (th).dataset.key || "id";
      sortDir = k === sortKey ? -sortDir : 1;
      sortKey = k;
      document.querySelectorAll("#flows th").forEach((h) => h.removeAttribute("aria-sort"));
      th.setAttribute("aria-sort", sortDir > 0 ? "ascending" : "descending");
      rows();
    });
  });
  byId("verdict").addEventListener("change", rows);
  byId("filter").addEventListener("input", rows);

  /** Opens one connection's account. @param {number} id */
  function choose(id) {
    const f = flows.find((x) => x.id === id);
    if (!f) return;
    chosen = id;
    const detail = byId("detail");
    detail.hidden = false;
    byId("detail-title").textContent = `flow ${f.id}: ${f.client} → ${f.server} — ${f.verdict}`;
    byId("explain").textContent = f.explain;
    byId("diagram").innerHTML = f.diagram.replace(/^<\?xml[^>]*>\s*/, "");
    rows();
    draw();
    const lane = document.getElementById("lane-" + id);
    if (lane && lane.scrollIntoView) lane.scrollIntoView({ block: "nearest" });
  }
  function fromHash() {
    const m = /^#flow-(\d+)$/.exec(location.hash);
    if (m) choose(Number(m[1]));
  }
  window.addEventListener("hashchange", fromHash);

  rows();
  draw();
  fromHash();
})();
