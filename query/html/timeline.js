/*
 * The timeline page of connhist-query --html. It reads the data that
 * query/html_data.c embeds (one JSON document in #chq-data) and draws on a
 * canvas: one lane per process or per remote end, one bar per socket
 * lifetime from its first sample to its close (a lifetime still open runs to
 * the window's end, with a mark), the unrecorded gaps of the coverage shaded
 * behind. Hover shows a lifetime, the filter box narrows them, the wheel
 * zooms, a drag pans.
 *
 * A canvas, not one DOM node a bar: 100,000 lifetimes are drawn in a few
 * milliseconds a frame. Each frame walks the lanes in view and the bars of
 * each, and counts what it drew; the counts are published on <body> as
 * data-* attributes (and in the title) for the tests, which compare them
 * with the database.
 *
 * The first draw is what a reader waits for, so it reads only numbers:
 * the lifetimes come as packed columns, decoded each into a Float64Array
 * (NaN for null) in one loop, and the layout and the drawing index them.
 * No object is made a lifetime, and no name or address text is looked up,
 * until a hover, the filter or lanes by remote end need them (row(i),
 * buildSearchText).
 *
 * Everything is local: the page loads nothing (see the policy in
 * timeline.html), and text from the data is only ever set as textContent.
 */
(function () {
  'use strict';
  const scriptStart = performance.now();

  // The columns of a lifetime (query/html_data.c) and of a process row.
  const ID = 0, PROTO = 1, LADDR = 3, LPORT = 4, RADDR = 5, RPORT = 6, STATE = 7, STATES = 8,
    FIRST = 9, LAST = 10, CLOSED = 11, REASON = 12, PROC = 13, OWNER_SOURCE = 14, HOLDERS = 15,
    SENT = 16, RECV = 17, SEEN_BY = 18, OPENED_AFTER = 19, WIDTH = 20;
  const P_PID = 1, P_NAME = 2, P_PATH = 3, P_CMDLINE = 4, P_USER = 5, P_UID = 6, P_START = 7;

  const LABEL_W = 210, AXIS_H = 26, LANE_PAD = 2, MAX_ROWS = 8, MIN_SPAN = 10;
  const COLORS = ['#3b6fd6', '#e08a1e', '#2f9e5b', '#8a8f9c']; // tcp, udp, listener, other
  const TCP = 0, UDP = 1, LISTENER = 2, OTHER = 3;

  const data = JSON.parse(document.getElementById('chq-data').textContent);
  const header = data.header;
  const n = data.lifetimes.count;
  const parsedAt = performance.now();
  // The columns decoded so far (col): the first draw decodes only those it
  // reads (first_seen, closed_at, proto, state, the lane key's).
  const cols = new Array(WIDTH).fill(null);
  let noValues = null;
  const first = col(FIRST), closed = col(CLOSED);
  const procs = new Map();
  for (const p of data.processes) procs.set(p[0], p);
  const codeNames = new Map(); // field -> array of names by code
  for (const [field, code, name] of data.codes) {
    if (!codeNames.has(field)) codeNames.set(field, []);
    codeNames.get(field)[code] = name;
  }
  const codeTable = field => codeNames.get(field) || [];
  let addrs = null; // made when first needed (addrText)

  // Column k, decoded at its first use: closed_at is written as its
  // offset from first_seen, last_seen as its offset back from closed_at
  // (else from first_seen): see query/html_data.c.
  function col(k) {
    if (cols[k] !== null) return cols[k];
    if (data.lifetimes.columns[k] === null) { // no value at all: one array for all such
      if (noValues === null) noValues = new Float64Array(n).fill(NaN);
      return (cols[k] = noValues);
    }
    const v = unpackColumn(data.lifetimes.columns[k], n);
    if (k === CLOSED || k === LAST) {
      const f = col(FIRST), c = k === LAST ? col(CLOSED) : null;
      for (let i = 0; i < n; i++) v[i] = c !== null && c[i] === c[i] ? c[i] - v[i] : f[i] + v[i];
    }
    cols[k] = v;
    return v;
  }

  // The bytes of a base64 string: the engine's own decoder where it has
  // one, else atob's binary string.
  function bytesOf(text) {
    if (typeof Uint8Array.fromBase64 === 'function') return Uint8Array.fromBase64(text);
    const s = atob(text), out = new Uint8Array(s.length);
    for (let i = 0; i < s.length; i++) out[i] = s.charCodeAt(i);
    return out;
  }

  // A packed column (query/html_data.c: LEB128 varints; the first says
  // values or differences; then values, 2 * (zigzag + 1) or 0 for null,
  // and runs of the one before) as a Float64Array of count values, NaN
  // for null. One loop with the
  // varint read inline (it runs before the first draw, mostly not yet
  // optimised), and arithmetic, not bit operators: values reach 2^53.
  function unpackColumn(text, count) {
    const out = new Float64Array(count);
    const b = bytesOf(text), len = b.length;
    const bad = what => new Error('connhist: a packed column ' + what);
    if (len === 0 || b[0] > 1) throw bad('of an unknown kind');
    const differences = b[0] === 1;
    let p = 1, prev = 0, x = NaN, i = 0; // x: the last entry, a value or difference; NaN: null
    while (i < count) {
      if (p >= len) throw bad('ends early');
      let u = b[p++];
      if (u >= 128) {
        let scale = 128, byte = u;
        u &= 127;
        while (byte >= 128) {
          if (p >= len) throw bad('ends early');
          byte = b[p++];
          u += (byte & 127) * scale;
          scale *= 128;
        }
      }
      let end = i + 1;
      if (u % 2 === 1) { // the entry before, again
        if (i === 0) throw bad('starts with a run');
        end = i + (u - 1) / 2 + 1;
        if (end > count) throw bad('runs past its rows');
      } else {
        const code = u / 2, z = code - 1;
        x = code === 0 ? NaN : z % 2 === 0 ? z / 2 : -code / 2;
      }
      if (x !== x) {
        for (; i < end; i++) out[i] = NaN;
      } else if (differences) {
        for (; i < end; i++) { prev += x; out[i] = prev; }
      } else {
        for (; i < end; i++) out[i] = x;
      }
    }
    if (p !== len) throw bad('has bytes left over');
    return out;
  }

  // The text of an addr_id (NaN: none), from "addrs", read into a map the
  // first time an address is shown.
  function addrText(id) {
    if (id !== id) return null;
    if (addrs === null) addrs = new Map(data.addrs);
    return addrs.get(id) ?? null;
  }

  // Lifetime i as a row of names and absolute times, null for unknown, in
  // the columns above: for a hover's details and the filter's text.
  function row(i) {
    const state = codeTable('state');
    const name = (t, code) => code !== code ? null : (t[code] ?? null);
    const num = k => col(k)[i] === col(k)[i] ? col(k)[i] : null;
    const r = new Array(WIDTH);
    for (let k = 0; k < WIDTH; k++) r[k] = num(k);
    r[PROTO] = name(codeTable('proto'), col(PROTO)[i]);
    r[STATE] = name(state, col(STATE)[i]);
    const list = col(STATES)[i]; // 0 (or none): the one state; else its list
    r[STATES] = list > 0 ? data.lifetimes.state_lists[list - 1].map(c => name(state, c))
      : r[STATE] === null ? [] : [r[STATE]];
    r[REASON] = name(codeTable('close_reason'), col(REASON)[i]);
    r[OWNER_SOURCE] = name(codeTable('owner_source'), col(OWNER_SOURCE)[i]);
    r[SEEN_BY] = name(codeTable('seen_by'), col(SEEN_BY)[i]);
    r[LADDR] = addrText(col(LADDR)[i]);
    r[RADDR] = addrText(col(RADDR)[i]);
    return r;
  }

  const until = Date.parse(header.window.until);
  const since = header.window.since === null ? null : Date.parse(header.window.since);
  const gaps = (header.coverage.gaps || []).map(g => [Date.parse(g.from), Date.parse(g.to)]);

  // Each bar: [start, end], its kind, and whether it is still open.
  const start = first, end = new Float64Array(n);
  const kind = new Uint8Array(n), open = new Uint8Array(n);
  let dataMin = Infinity, dataMax = header.coverage.last_sample === null ? -Infinity
    : Date.parse(header.coverage.last_sample);
  {
    const protoNames = codeTable('proto'), stateNames = codeTable('state');
    const proto = col(PROTO), state = col(STATE), raddr = col(RADDR);
    for (let i = 0; i < n; i++) {
      const s = start[i], c = closed[i];
      open[i] = c !== c ? 1 : 0;
      end[i] = open[i] ? Math.max(until, s) : c;
      if (s < dataMin) dataMin = s;
      if ((open[i] ? s : c) > dataMax) dataMax = open[i] ? s : c;
      // The kind of bar, from the codes.
      const udp = protoNames[proto[i]] === 'udp', remote = raddr[i] === raddr[i];
      kind[i] = remote ? (udp ? UDP : TCP) : udp || stateNames[state[i]] === 'LISTEN' ? LISTENER : OTHER;
    }
  }
  const decodedAt = performance.now();

  // The whole window: from --since (else the first lifetime or first
  // recorded moment) to --until.
  let lo = since;
  if (lo === null) {
    lo = Math.min(dataMin, gaps.length ? gaps[0][0] : Infinity);
    if (!isFinite(lo)) lo = until - 3600000;
  }
  const hi = until > lo ? until : lo + 1000;
  // The first view: the whole window, or up to a little after the last thing
  // known (the newest sample, the last close) when that is well before its
  // end: a window that ends now over a database of last month would draw
  // everything in a sliver. Open lifetimes still run on to the window's end.
  let fitHi = hi;
  if (isFinite(dataMax) && dataMax > lo && dataMax < hi - (hi - lo) * 0.1)
    fitHi = Math.min(hi, dataMax + (dataMax - lo) * 0.03 + 1000);

  const canvas = document.getElementById('canvas');
  const ctx = canvas.getContext('2d');
  const chart = document.getElementById('chart');
  const tip = document.getElementById('tip');
  const filterBox = document.getElementById('filter');
  const laneSelect = document.getElementById('lanes');

  const view = { from: lo, to: fitHi, scroll: 0, rowH: 12 };
  let lanes = [];          // {label, bars: Int32Array (by start), rows, top, height}
  const laneOf = new Int32Array(n), rowOf = new Uint8Array(n);
  const laidOut = new Uint8Array(n); // passes the filter: in a lane
  let shown = n;           // lifetimes passing the filter
  let totalHeight = 0;
  let width = 0, height = 0;
  let hovered = -1;
  let searchText = null;   // built at the first filter
  let drawn = 0, frame = 0;
  let pending = false;

  function endpoint(addr, port) {
    if (addr === null) return port === null ? '?' : '*:' + port;
    return (addr.indexOf(':') >= 0 ? '[' + addr + ']' : addr) + (port === null ? '' : ':' + port);
  }

  function processLabel(p) {
    if (!p) return '(no process)';
    return (p[P_NAME] === null ? '?' : p[P_NAME]) + ' (' + p[P_PID] + ')';
  }

  // The key of lifetime i's lane, as a function of i: its proc_id (-1:
  // none), its remote addr_id (-1: none), or its remote end and protocol
  // ('': none). Numbers: no text is looked up before the lanes are known.
  function laneKeys(mode) {
    if (mode === 'process') {
      const proc = col(PROC);
      return i => proc[i] === proc[i] ? proc[i] : -1;
    }
    const raddr = col(RADDR);
    if (mode === 'remote') return i => raddr[i] === raddr[i] ? raddr[i] : -1;
    const rport = col(RPORT), proto = col(PROTO);
    return i => raddr[i] === raddr[i] ? raddr[i] + ' ' + rport[i] + ' ' + proto[i] : '';
  }

  // The label of a lane, from the key and one of its lifetimes.
  function laneLabel(key, mode, i) {
    if (mode === 'process') return processLabel(key === -1 ? null : procs.get(key));
    if (key === -1 || key === '') return '(no remote end)';
    const addr = addrText(col(RADDR)[i]);
    if (addr === null) return '(address not in the page)';
    if (mode === 'remote') return addr;
    const port = col(RPORT)[i] === col(RPORT)[i] ? col(RPORT)[i] : null;
    const proto = codeTable('proto')[col(PROTO)[i]];
    return endpoint(addr, port) + ' ' + (proto ?? null);
  }

  // The filter's text of each lifetime, made at the first filter.
  function buildSearchText() {
    searchText = new Array(n);
    for (let i = 0; i < n; i++) {
      const r = row(i);
      const p = r[PROC] === null ? null : procs.get(r[PROC]);
      const parts = ['#' + r[ID], r[PROTO], endpoint(r[LADDR], r[LPORT]), endpoint(r[RADDR], r[RPORT]),
        r[STATES].join(' '), r[REASON] || '', open[i] ? 'open' : 'closed'];
      if (p) parts.push(p[P_NAME] || '', String(p[P_PID]), p[P_PATH] || '', p[P_CMDLINE] || '', p[P_USER] || '');
      else parts.push('(no process)');
      searchText[i] = parts.join(' ').toLowerCase();
    }
  }

  // The lifetimes passing the filter box: every word must occur.
  function filtered() {
    const words = filterBox.value.trim().toLowerCase().split(/\s+/).filter(w => w.length > 0);
    const out = [];
    if (words.length === 0) {
      for (let i = 0; i < n; i++) out.push(i);
      return out;
    }
    if (searchText === null) buildSearchText();
    for (let i = 0; i < n; i++) {
      const t = searchText[i];
      let ok = true;
      for (const w of words) {
        if (t.indexOf(w) < 0) { ok = false; break; }
      }
      if (ok) out.push(i);
    }
    return out;
  }

  // Groups the lifetimes passing the filter into lanes (in order of their
  // first lifetime) and packs each lane's bars into at most MAX_ROWS rows,
  // so that bars overlapping in time sit one above the other.
  function layout() {
    const mode = laneSelect.value, keyOf = laneKeys(mode);
    const byKey = new Map();
    lanes = [];
    const keep = filtered();
    shown = keep.length;
    laidOut.fill(0);
    const members = [];
    for (const i of keep) {
      const key = keyOf(i);
      let l = byKey.get(key);
      if (l === undefined) {
        l = lanes.length;
        byKey.set(key, l);
        lanes.push({ label: laneLabel(key, mode, i), bars: null, rows: 1, top: 0, height: 0 });
        members.push([]);
      }
      members[l].push(i);
      laneOf[i] = l;
      laidOut[i] = 1;
    }
    const rowEnd = new Float64Array(MAX_ROWS);
    for (let l = 0; l < lanes.length; l++) {
      const bars = Int32Array.from(members[l]);
      let sorted = true; // ids follow first_seen, so mostly they are
      for (let k = 1; k < bars.length && sorted; k++) sorted = start[bars[k - 1]] <= start[bars[k]];
      if (!sorted) bars.sort((a, b) => start[a] - start[b] || a - b);
      let rows = 0;
      for (const i of bars) {
        let row = 0;
        while (row < rows && rowEnd[row] >= start[i]) row++;
        if (row === rows && rows < MAX_ROWS) {
          rows++;
          rowEnd[row] = -Infinity;
        } else if (row === rows) { // all rows taken: the one that frees first
          row = 0;
          for (let k = 1; k < rows; k++) if (rowEnd[k] < rowEnd[row]) row = k;
        }
        if (end[i] > rowEnd[row]) rowEnd[row] = end[i];
        rowOf[i] = row;
      }
      lanes[l].bars = bars;
      lanes[l].rows = Math.max(1, rows);
    }
    placeLanes();
  }

  // The lanes' vertical positions for the current row height.
  function placeLanes() {
    let y = 0;
    for (const l of lanes) {
      l.top = y;
      l.height = l.rows * view.rowH + LANE_PAD;
      y += l.height;
    }
    totalHeight = y;
    clampScroll();
  }

  // The tallest row height, up to 14 pixels, at which every lane fits the
  // chart: the first view shows every bar when one pixel a row is enough,
  // else it scrolls.
  function fitRows() {
    let rowsTotal = 0;
    for (const l of lanes) rowsTotal += l.rows;
    const avail = height - AXIS_H - lanes.length * LANE_PAD;
    view.rowH = rowsTotal === 0 ? 14 : Math.max(1, Math.min(14, Math.floor(avail / rowsTotal)));
    placeLanes();
  }

  function clampScroll() {
    const max = Math.max(0, totalHeight - (height - AXIS_H));
    view.scroll = Math.max(0, Math.min(max, view.scroll));
  }

  function xOf(t) {
    return LABEL_W + (t - view.from) * (width - LABEL_W) / (view.to - view.from);
  }

  function timeOf(x) {
    return view.from + (x - LABEL_W) * (view.to - view.from) / (width - LABEL_W);
  }

  function resize() {
    const dpr = window.devicePixelRatio || 1;
    width = Math.max(LABEL_W + 50, chart.clientWidth);
    height = Math.max(AXIS_H + 20, chart.clientHeight);
    canvas.width = Math.round(width * dpr);
    canvas.height = Math.round(height * dpr);
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    clampScroll();
  }

  // The first lane whose bottom is below y (in lane coordinates).
  function laneAt(y) {
    let a = 0, b = lanes.length;
    while (a < b) {
      const m = (a + b) >> 1;
      if (lanes[m].top + lanes[m].height <= y) a = m + 1; else b = m;
    }
    return a;
  }

  let gapPattern = null;
  function gapFill() {
    if (gapPattern === null) {
      const c = document.createElement('canvas');
      c.width = c.height = 8;
      const g = c.getContext('2d');
      g.fillStyle = '#eceef2';
      g.fillRect(0, 0, 8, 8);
      g.strokeStyle = '#c9ccd4';
      g.lineWidth = 2;
      g.beginPath();
      g.moveTo(-2, 10); g.lineTo(10, -2);
      g.moveTo(6, 10); g.lineTo(10, 6);
      g.moveTo(-2, 2); g.lineTo(2, -2);
      g.stroke();
      gapPattern = ctx.createPattern(c, 'repeat');
    }
    return gapPattern;
  }

  // The rectangle being extended in each row of a lane (draw).
  const pendingKind = new Int8Array(MAX_ROWS), pendingFrom = new Float64Array(MAX_ROWS);
  const pendingTo = new Float64Array(MAX_ROWS);

  function draw() {
    pending = false;
    const plotTop = AXIS_H, plotH = height - AXIS_H;
    ctx.clearRect(0, 0, width, height);

    // Lanes in view: stripes and labels, and the bars collected into one
    // path a colour, each filled once.
    const first = laneAt(view.scroll);
    const paths = COLORS.map(() => new Path2D());
    const marks = new Path2D();
    let count = 0, openCount = 0, lanesDrawn = 0;
    const x0v = LABEL_W, x1v = width;
    ctx.save();
    ctx.beginPath();
    ctx.rect(0, plotTop, width, plotH);
    ctx.clip();
    ctx.font = '11px system-ui, sans-serif';
    ctx.textBaseline = 'middle';
    for (let l = first; l < lanes.length; l++) {
      const lane = lanes[l];
      const top = plotTop + lane.top - view.scroll;
      if (top >= height) break;
      lanesDrawn++;
      if (l % 2 === 1) {
        ctx.fillStyle = 'rgba(40, 60, 110, 0.045)';
        ctx.fillRect(0, top, width, lane.height);
      }
      if (lane.height >= 9) {
        ctx.fillStyle = '#2b3242';
        ctx.fillText(clip(lane.label, LABEL_W - 10), 4, top + Math.min(lane.height, 16) / 2);
      }
      const rowH = view.rowH, barH = Math.max(1, rowH - 1);
      const from = view.from, to = view.to, scale = (width - LABEL_W) / (to - from);
      // Bars of one kind that touch on screen in a row become one
      // rectangle: at 100,000 lifetimes most are narrower than a pixel.
      pendingKind.fill(-1);
      for (const i of lane.bars) {
        if (end[i] < from || start[i] > to) continue;
        const a = Math.max(x0v, LABEL_W + (start[i] - from) * scale);
        const b = Math.max(a + 1, Math.min(x1v, LABEL_W + (end[i] - from) * scale));
        const row = rowOf[i], k = kind[i];
        if (pendingKind[row] === k && a <= pendingTo[row] + 0.5) {
          if (b > pendingTo[row]) pendingTo[row] = b;
        } else {
          if (pendingKind[row] >= 0)
            paths[pendingKind[row]].rect(pendingFrom[row], top + 1 + row * rowH, pendingTo[row] - pendingFrom[row], barH);
          pendingKind[row] = k;
          pendingFrom[row] = a;
          pendingTo[row] = b;
        }
        const y = top + 1 + row * rowH;
        count++;
        if (open[i]) { // an arrow: open, to the window's end (or beyond the view)
          const tipX = b;
          marks.moveTo(tipX - Math.min(6, barH), y);
          marks.lineTo(tipX, y + barH / 2);
          marks.lineTo(tipX - Math.min(6, barH), y + barH);
          marks.closePath();
          openCount++;
        }
      }
      for (let row = 0; row < MAX_ROWS; row++) {
        if (pendingKind[row] >= 0)
          paths[pendingKind[row]].rect(pendingFrom[row], top + 1 + row * rowH, pendingTo[row] - pendingFrom[row], barH);
      }
    }
    ctx.save();
    ctx.beginPath();
    ctx.rect(LABEL_W, plotTop, width - LABEL_W, plotH);
    ctx.clip();
    for (let k = 0; k < COLORS.length; k++) {
      ctx.fillStyle = COLORS[k];
      ctx.fill(paths[k]);
    }
    ctx.fillStyle = '#111';
    ctx.fill(marks);
    if (hovered >= 0) outline(hovered);
    ctx.restore();
    ctx.restore();

    // Gaps in recording, over the bars but see-through: a bar across a gap
    // is a lifetime nobody watched for that long.
    let gapsDrawn = 0;
    ctx.save();
    ctx.globalAlpha = 0.6;
    ctx.fillStyle = gapFill();
    for (const [a, b] of gaps) {
      if (b < view.from || a > view.to) continue;
      const x0 = Math.max(LABEL_W, xOf(a)), x1 = Math.min(width, xOf(b));
      ctx.fillRect(x0, plotTop, Math.max(1, x1 - x0), plotH);
      gapsDrawn++;
    }
    ctx.restore();

    drawAxis();
    drawScrollbar();
    if (n === 0 || shown === 0) {
      ctx.fillStyle = '#5a6275';
      ctx.font = '14px system-ui, sans-serif';
      ctx.fillText(n === 0 ? 'No lifetimes in this window.' : 'No lifetime matches the filter.',
        LABEL_W + 12, plotTop + 24);
    }
    drawn = count;
    frame++;
    publish(count, openCount, gapsDrawn, lanesDrawn);
  }

  function outline(i) {
    const g = barBox(i);
    if (g === null) return;
    ctx.strokeStyle = '#111';
    ctx.lineWidth = 1.5;
    ctx.strokeRect(g.x - 1, g.y - 1, g.w + 2, g.h + 2);
  }

  // Where bar i is drawn now (canvas coordinates), or null when not drawn.
  function barBox(i) {
    if (i < 0 || i >= n || !laidOut[i]) return null;
    if (end[i] < view.from || start[i] > view.to) return null;
    const lane = lanes[laneOf[i]];
    const y = AXIS_H + lane.top - view.scroll + 1 + rowOf[i] * view.rowH;
    if (y + view.rowH <= AXIS_H || y >= height) return null;
    const a = Math.max(LABEL_W, xOf(start[i])), b = Math.min(width, xOf(end[i]));
    return { x: a, y: y, w: Math.max(1, b - a), h: Math.max(1, view.rowH - 1) };
  }

  function clip(text, px) {
    if (ctx.measureText(text).width <= px) return text;
    let a = 0, b = text.length;
    while (a < b) {
      const m = (a + b + 1) >> 1;
      if (ctx.measureText(text.slice(0, m) + '…').width <= px) a = m; else b = m - 1;
    }
    return text.slice(0, a) + '…';
  }

  const STEPS = [1, 2, 5, 10, 20, 50, 100, 200, 500, 1e3, 2e3, 5e3, 1e4, 15e3, 3e4, 6e4, 12e4, 3e5, 6e5,
    9e5, 18e5, 36e5, 72e5, 108e5, 216e5, 432e5, 864e5, 1728e5, 6048e5, 12096e5, 2592e6, 7776e6, 31536e6];

  function drawAxis() {
    ctx.fillStyle = '#f5f6f8';
    ctx.fillRect(0, 0, width, AXIS_H);
    ctx.strokeStyle = '#d4d8e0';
    ctx.beginPath();
    ctx.moveTo(0, AXIS_H - 0.5); ctx.lineTo(width, AXIS_H - 0.5);
    ctx.moveTo(LABEL_W - 0.5, 0); ctx.lineTo(LABEL_W - 0.5, height);
    ctx.stroke();
    const span = view.to - view.from;
    const perPx = span / (width - LABEL_W);
    const step = STEPS.find(s => s / perPx >= 110) || STEPS[STEPS.length - 1];
    const cut = step >= 864e5 ? [0, 10] : step >= 6e4 ? [11, 16] : step >= 1e3 ? [11, 19] : [11, 23];
    ctx.font = '11px system-ui, sans-serif';
    ctx.textBaseline = 'middle';
    ctx.fillStyle = '#2b3242';
    ctx.fillText(iso(view.from).slice(0, 10) + ' UTC', 4, AXIS_H / 2);
    ctx.strokeStyle = 'rgba(40, 60, 110, 0.12)';
    ctx.beginPath();
    for (let t = Math.ceil(view.from / step) * step; t <= view.to; t += step) {
      const x = Math.round(xOf(t)) + 0.5;
      ctx.moveTo(x, AXIS_H - 6);
      ctx.lineTo(x, height);
      const text = iso(t).slice(cut[0], cut[1]);
      ctx.fillText(text, Math.min(x + 3, width - ctx.measureText(text).width - 2), AXIS_H / 2);
    }
    ctx.stroke();
  }

  function drawScrollbar() {
    const plotH = height - AXIS_H;
    if (totalHeight <= plotH) return;
    const h = Math.max(20, plotH * plotH / totalHeight);
    const y = AXIS_H + (plotH - h) * view.scroll / (totalHeight - plotH);
    ctx.fillStyle = 'rgba(40, 50, 70, 0.35)';
    ctx.fillRect(width - 6, y, 5, h);
  }

  // The figures of the last frame, for the tests and the curious.
  function publish(count, openCount, gapsDrawn, lanesDrawn) {
    const d = document.body.dataset;
    d.lifetimes = n;
    d.shown = shown;
    d.barsDrawn = count;
    d.openDrawn = openCount;
    d.gapsDrawn = gapsDrawn;
    d.lanes = lanes.length;
    d.lanesDrawn = lanesDrawn;
    d.viewFrom = view.from;
    d.viewTo = view.to;
    d.frames = frame;
    document.title = (header.host === null ? 'connhist' : header.host) + ': ' + count + ' of ' + n +
      ' lifetimes drawn - connhist timeline';
  }

  function redraw() {
    if (!pending) {
      pending = true;
      window.requestAnimationFrame(draw);
    }
  }

  // Zoom in time by factor around time t, kept at its place on screen.
  function zoom(factor, t) {
    const full = (hi - lo) * 4;
    let span = Math.min(full, Math.max(MIN_SPAN, (view.to - view.from) * factor));
    const k = (t - view.from) / (view.to - view.from);
    view.from = t - k * span;
    view.to = view.from + span;
    redraw();
  }

  function pan(dt) {
    view.from += dt;
    view.to += dt;
    redraw();
  }

  function fit(whole) {
    view.from = lo;
    view.to = whole === true ? hi : fitHi;
    view.scroll = 0;
    fitRows();
    redraw();
  }

  function iso(t) {
    return new Date(t).toISOString();
  }

  function duration(ms) {
    if (ms < 1000) return ms + ' ms';
    const parts = [];
    const units = [['d', 864e5], ['h', 36e5], ['m', 6e4]];
    for (const [u, size] of units) {
      if (ms >= size) {
        parts.push(Math.floor(ms / size) + u);
        ms %= size;
      }
    }
    if (ms > 0) parts.push((ms / 1000).toFixed(ms % 1000 ? 3 : 0).replace(/\.?0+$/, '') + 's');
    return parts.join(' ');
  }

  // The lifetime under canvas point (x, y), or -1.
  function hit(x, y) {
    if (x < LABEL_W || y < AXIS_H) return -1;
    const ly = y - AXIS_H + view.scroll;
    const l = laneAt(ly);
    if (l >= lanes.length || ly < lanes[l].top) return -1;
    const row = Math.floor((ly - lanes[l].top - 1) / view.rowH);
    const t0 = timeOf(x - 2), t1 = timeOf(x + 2);
    let best = -1;
    for (const i of lanes[l].bars) {
      if (rowOf[i] !== row || start[i] > t1) continue;
      if (end[i] >= t0) best = i; // the last drawn is on top
    }
    return best;
  }

  function addRow(table, name, value) {
    if (value === null || value === undefined || value === '') return;
    const tr = table.insertRow();
    const th = document.createElement('th');
    th.textContent = name;
    tr.appendChild(th);
    tr.insertCell().textContent = String(value);
  }

  function showTip(i, px, py) {
    const r = row(i);
    const p = r[PROC] === null ? null : procs.get(r[PROC]);
    tip.textContent = '';
    const table = document.createElement('table');
    addRow(table, 'lifetime', '#' + r[ID] + ' ' + r[PROTO]);
    addRow(table, 'local', endpoint(r[LADDR], r[LPORT]));
    addRow(table, 'remote', r[RADDR] === null ? '(none)' : endpoint(r[RADDR], r[RPORT]));
    addRow(table, 'states', (r[STATES] || []).join(' \u2192 '));
    addRow(table, 'first seen', iso(r[FIRST]));
    addRow(table, 'last seen', r[LAST] === null ? null : iso(r[LAST]));
    addRow(table, 'closed', open[i] ? 'still open at the newest sample' : iso(r[CLOSED]) +
      (r[REASON] ? ' (' + r[REASON] + ')' : ''));
    addRow(table, 'duration', open[i] ? 'at least ' + duration((r[LAST] || r[FIRST]) - r[FIRST])
      : duration(r[CLOSED] - r[FIRST]));
    addRow(table, 'bytes sent', r[SENT]);
    addRow(table, 'bytes received', r[RECV]);
    addRow(table, 'holders', r[HOLDERS]);
    addRow(table, 'seen by', r[SEEN_BY]);
    addRow(table, 'opened after', r[OPENED_AFTER] === null ? null : iso(r[OPENED_AFTER]));
    if (p) {
      addRow(table, 'process', processLabel(p));
      addRow(table, 'path', p[P_PATH]);
      addRow(table, 'command line', p[P_CMDLINE]);
      addRow(table, 'user', p[P_USER] === null ? (p[P_UID] === null ? null : 'uid ' + p[P_UID])
        : p[P_USER] + (p[P_UID] === null ? '' : ' (uid ' + p[P_UID] + ')'));
      addRow(table, 'started', p[P_START] === null ? null : iso(p[P_START]));
      addRow(table, 'owner known by', r[OWNER_SOURCE]);
    } else {
      addRow(table, 'process', '(not attributed)');
    }
    tip.appendChild(table);
    tip.hidden = false;
    const w = tip.offsetWidth, h = tip.offsetHeight;
    tip.style.left = Math.max(0, px + 14 + w > width ? px - w - 10 : px + 14) + 'px';
    tip.style.top = Math.max(0, py + 14 + h > height ? py - h - 10 : py + 14) + 'px';
    tip.dataset.lifetime = r[ID];
  }

  function hideTip() {
    tip.hidden = true;
    delete tip.dataset.lifetime;
  }

  function point(e) {
    const b = canvas.getBoundingClientRect();
    return [e.clientX - b.left, e.clientY - b.top];
  }

  let drag = null;
  canvas.addEventListener('mousedown', e => {
    const [x, y] = point(e);
    drag = { x: x, y: y, from: view.from, to: view.to, scroll: view.scroll };
    canvas.classList.add('dragging');
    hideTip();
  });
  window.addEventListener('mouseup', () => {
    drag = null;
    canvas.classList.remove('dragging');
  });
  canvas.addEventListener('mousemove', e => {
    const [x, y] = point(e);
    if (drag !== null) {
      const dt = (x - drag.x) * (drag.to - drag.from) / (width - LABEL_W);
      view.from = drag.from - dt;
      view.to = drag.to - dt;
      view.scroll = drag.scroll - (y - drag.y);
      clampScroll();
      redraw();
      return;
    }
    const i = hit(x, y);
    if (i !== hovered) {
      hovered = i;
      redraw();
    }
    if (i >= 0) showTip(i, x, y); else hideTip();
  });
  canvas.addEventListener('mouseleave', () => {
    hovered = -1;
    hideTip();
    redraw();
  });
  canvas.addEventListener('wheel', e => {
    e.preventDefault();
    const x = point(e)[0];
    const dy = e.deltaMode === 1 ? e.deltaY * 16 : e.deltaY;
    if (e.shiftKey) {
      view.scroll += dy;
      clampScroll();
      redraw();
    } else if (Math.abs(e.deltaX) > Math.abs(dy)) {
      pan(e.deltaX * (view.to - view.from) / (width - LABEL_W));
    } else {
      zoom(Math.exp(dy * 0.002), timeOf(Math.max(LABEL_W, x)));
    }
    hideTip();
  }, { passive: false });
  canvas.addEventListener('dblclick', fit);
  document.getElementById('window').addEventListener('click', () => fit(true));
  document.getElementById('zoom-in').addEventListener('click', () => zoom(0.5, (view.from + view.to) / 2));
  document.getElementById('zoom-out').addEventListener('click', () => zoom(2, (view.from + view.to) / 2));
  document.getElementById('fit').addEventListener('click', fit);
  window.addEventListener('keydown', e => {
    if (e.target === filterBox) return;
    const span = view.to - view.from;
    if (e.key === '+' || e.key === '=') zoom(0.5, view.from + span / 2);
    else if (e.key === '-') zoom(2, view.from + span / 2);
    else if (e.key === '0') fit();
    else if (e.key === 'w') fit(true);
    else if (e.key === 'ArrowLeft') pan(-span / 5);
    else if (e.key === 'ArrowRight') pan(span / 5);
    else if (e.key === 'ArrowUp') { view.scroll -= 60; clampScroll(); redraw(); }
    else if (e.key === 'ArrowDown') { view.scroll += 60; clampScroll(); redraw(); }
  });
  let filterTimer = 0;
  filterBox.addEventListener('input', () => {
    window.clearTimeout(filterTimer);
    filterTimer = window.setTimeout(relayout, 120);
  });
  laneSelect.addEventListener('change', relayout);
  window.addEventListener('resize', () => {
    resize();
    redraw();
  });

  function relayout() {
    hovered = -1;
    hideTip();
    layout();
    view.scroll = 0;
    fitRows();
    draw();
  }

  function status() {
    const s = document.getElementById('status');
    const cov = header.coverage;
    const parts = [
      (header.host === null ? 'unknown host' : header.host) + ' \u00b7 ' + header.report,
      iso(lo) + ' \u2013 ' + iso(hi),
      n + ' lifetimes',
      cov.fraction === null ? 'recorded ' + duration(cov.covered_ms)
        : 'recorded ' + (100 * cov.fraction).toFixed(1) + '% of the window',
      gaps.length + (gaps.length === 1 ? ' gap' : ' gaps')];
    s.textContent = parts.join(' \u00b7 ');
    const warn = [];
    if (cov.pruned) warn.push('lifetimes closed before ' + cov.pruned_before + ' were pruned');
    if (Object.keys(header.filters).length) warn.push('filters: ' + JSON.stringify(header.filters));
    if (warn.length) {
      const w = document.createElement('span');
      w.className = 'warn';
      w.textContent = ' \u00b7 ' + warn.join(' \u00b7 ');
      s.appendChild(w);
    }
    document.getElementById('title').textContent = 'connhist timeline' +
      (header.host === null ? '' : ': ' + header.host);
  }

  // What the tests drive: where a lifetime's bar is on screen, the view.
  // The index of the lifetime with this id, or -1.
  function indexOf(id) {
    const ids = col(ID);
    for (let i = 0; i < n; i++) if (ids[i] === id) return i;
    return -1;
  }

  // What the tests drive: where a lifetime's bar is on screen, a lifetime
  // as the page read it, the view.
  window.chqTimeline = {
    where: function (id) {
      const i = indexOf(id);
      const g = i < 0 ? null : barBox(i);
      if (g === null) return null;
      const b = canvas.getBoundingClientRect();
      return { x: b.left + g.x + g.w / 2, y: b.top + g.y + g.h / 2 };
    },
    lifetime: function (id) {
      const i = indexOf(id);
      return i < 0 ? null : row(i);
    },
    setView: function (from, to) {
      view.from = from;
      view.to = to;
      draw();
    },
    draw: draw
  };

  laneSelect.value = data.lanes === 'remote' ? 'remote' : 'process';
  status();
  resize();
  const layoutAt = performance.now();
  layout();
  fitRows();
  const drawAt = performance.now();
  draw();
  const timing = document.body.dataset;
  timing.parseMs = (parsedAt - scriptStart).toFixed(1);
  timing.decodeMs = (decodedAt - parsedAt).toFixed(1);
  timing.layoutMs = (drawAt - layoutAt).toFixed(1);
  timing.drawMs = (performance.now() - drawAt).toFixed(1);
  // Since the navigation started (loading and parsing the page included),
  // and of that, this script's own time (parsing the data, layout, drawing).
  document.body.dataset.firstDrawMs = performance.now().toFixed(1);
  document.body.dataset.scriptMs = (performance.now() - scriptStart).toFixed(1);
  timing.columnsAtFirstDraw = cols.filter(c => c !== null).length;
  decodeTheRest();

  // The columns the first draw did not need, one an idle moment after it,
  // so that the first hover or filter does not wait for them.
  function decodeTheRest() {
    const k = cols.indexOf(null);
    if (k < 0) {
      timing.columnsDecodedMs = performance.now().toFixed(1);
      return;
    }
    const later = window.requestIdleCallback || (f => window.setTimeout(f, 0));
    later(() => {
      col(k);
      decodeTheRest();
    });
  }
})();
