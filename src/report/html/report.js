// @ts-check
// kacap's HTML report: builds the page from the JSON in #data. No network,
// no libraries. Lanes: one per connection, grouped by server and sorted by
// how they ended (dead and killed first); x is time, zoomed with the wheel
// or +/- and panned by dragging; a click on a row (or #flow-N in the
// address) opens that connection's explanation and sequence diagram; a
// click on a mark (or #frame-N) shows its tcpdump line and annotation.
// Keyboard: Tab reaches the lanes; ↑/↓ move between lanes, → and ← walk a
// lane's marks, Enter opens the lane's connection or the mark's line,
// Escape goes back from a mark to its lane, then closes the detail.
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
      const g = el("g", {
        class: "lane", "data-flow": f.id, id: "lane-" + f.id, tabindex: 0,
        "aria-label": `flow ${f.id} from ${f.client} to ${f.server}: ${f.verdict}, ${f.marks.length} segments drawn`,
      });
      g.append(el("rect", {
        x: 0, y: y - LANE / 2, width, height: LANE,
        class: "lane-bg" + (i % 2 ? " alt" : "") + (f.id === chosen ? " chosen" : ""),
      }));
      const name = el("text", { x: 4, y: y + 4 });
      // The client's port tells apart connections to one server.
      name.textContent = `${f.id} :${String(f.client).split(":").pop()} → ${f.server} ${f.verdict}`;
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
        m.setAttribute("tabindex", "-1");
        m.setAttribute("aria-label", `frame ${n}: ${label} from the ${from}`);
        const title = el("title", {});
        title.textContent = `frame ${n}, +${secs(t)}, ${label} from ${from}`;
        m.append(title);
        m.addEventListener("click", () => showMark(f, marks[j]));
        if (kind.startsWith("probe-") && kind !== "probe-ack") probes.push(m);
        else g.append(m);
      }
      g.append(...probes);
      g.addEventListener("dblclick", () => choose(f.id));
      g.addEventListener("keydown", (e) => laneKey(/** @type {KeyboardEvent} */ (e), i));
      lanes.append(g);
    });
    byId("view").textContent = `showing +${secs(view[0])} to +${secs(view[1])}`;
    if (focused) refocus();
  }

  /** @param {any} f @param {Array<any>} m */
  function showMark(f, m) {
    const [t, , from, n, label, line, revised] = m;
    const [dump, said] = String(line || "").split("\n");
    const box = byId("mark");
    box.replaceChildren();
    const head = document.createElement("div");
    head.textContent = `flow ${f.id}, frame ${n}, +${secs(t)}: ${label} from the ${from}`;
    box.append(head);
    if (dump) {
      const code = document.createElement("code");
      code.className = "tcpdump";
      code.textContent = dump;
      const note = document.createElement("div");
      note.className = "said";
      note.textContent = said || "";
      box.append(code, note);
    } else {
      const note = document.createElement("div");
      note.className = "said";
      note.textContent = `(Its tcpdump line was not kept: the report keeps lines for a connection's first ${data.lineHead} segments and for every segment that is not plain data or a plain ACK; kacap's text timeline prints it.)`;
      box.append(note);
    }
    if (revised) {
      const r = document.createElement("div");
      r.className = "said";
      r.textContent = `Revised by later segments: it is now "${label}" (the line above is what kacap said when it arrived, as the text timeline prints it).`;
      box.append(r);
    }
    document.querySelectorAll(".mark.shown").forEach((old) => old.classList.remove("shown"));
    const mark = lanes.querySelector(`#lane-${f.id} [data-frame="${n}"]`);
    if (mark) mark.classList.add("shown");
  }

  // Keyboard: which lane (index in `order`) and which mark in it has the
  // focus; restored after each redraw.
  /** @type {{lane: number, mark: number} | null} */
  let focused = null;
  function refocus() {
    if (!focused) return;
    const f = order[focused.lane];
    if (!f) return;
    const lane = document.getElementById("lane-" + f.id);
    if (!lane) return;
    if (focused.mark < 0) { lane.focus(); return; }
    const n = f.marks[focused.mark][3];
    const m = /** @type {SVGElement|null} */ (lane.querySelector(`[data-frame="${n}"]`));
    (m || lane).focus();
  }
  /** Moves the view so that time `t` is visible. @param {number} t */
  function reveal(t) {
    if (t >= view[0] && t <= view[1]) return;
    const w = view[1] - view[0];
    view = [t - w / 2, t + w / 2];
    draw();
  }
  /** @param {KeyboardEvent} e @param {number} i */
  function laneKey(e, i) {
    const f = order[i];
    const at = focused && focused.lane === i ? focused.mark : -1;
    let next = null;
    if (e.key === "ArrowDown" && i + 1 < order.length) next = { lane: i + 1, mark: -1 };
    else if (e.key === "ArrowUp" && i > 0) next = { lane: i - 1, mark: -1 };
    else if (e.key === "ArrowRight" && at + 1 < f.marks.length) next = { lane: i, mark: at + 1 };
    else if (e.key === "ArrowLeft" && at >= 0) next = { lane: i, mark: at - 1 };
    else if (e.key === "Home") next = { lane: i, mark: f.marks.length ? 0 : -1 };
    else if (e.key === "End") next = { lane: i, mark: f.marks.length - 1 };
    else if (e.key === "Enter") {
      if (at >= 0) showMark(f, f.marks[at]);
      else location.hash = "flow-" + f.id;
    } else if (e.key === "Escape" && at >= 0) next = { lane: i, mark: -1 };
    else return;
    e.preventDefault();
    e.stopPropagation();
    if (!next) return;
    focused = next;
    if (next.mark >= 0) {
      const m = order[next.lane].marks[next.mark];
      reveal(m[0]);
      showMark(order[next.lane], m);
    }
    refocus();
  }
  lanes.addEventListener("focusin", (e) => {
    const g = /** @type {Element} */ (e.target).closest(".lane");
    if (!g) return;
    const lane = order.findIndex((f) => String(f.id) === g.getAttribute("data-flow"));
    const frame = /** @type {Element} */ (e.target).getAttribute("data-frame");
    const mark = frame === null ? -1 : order[lane].marks.findIndex((/** @type {any} */ m) => String(m[3]) === frame);
    focused = { lane, mark };
  });

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
    else if (e.key === "Escape" && !byId("detail").hidden) {
      byId("detail").hidden = true;
      chosen = -1;
      history.replaceState(null, "", location.pathname + location.search);
      rows();
      draw();
    }
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
    const fr = /^#frame-(\d+)$/.exec(location.hash);
    if (!fr) return;
    // A frame: its connection opened, the view around it, its line shown.
    for (const f of flows) {
      const mark = f.marks.find((/** @type {any} */ x) => x[3] === Number(fr[1]));
      if (!mark) continue;
      choose(f.id);
      reveal(mark[0]);
      showMark(f, mark);
      return;
    }
    byId("mark").textContent = `frame ${fr[1]} is not drawn (not TCP, left out, or in the elided middle of a long connection).`;
  }
  window.addEventListener("hashchange", fromHash);

  rows();
  draw();
  fromHash();
})();
