// interop-sim report: interactive figures. Every figure with a data-plot attribute (the lines of its
// static PNG as numbers, see src/report/plots/interactive.rs) gets a chart with the values
// under the pointer, drag-to-zoom on x (double-click or "full range" to undo) and a legend
// whose entries hide and show their line. Without JavaScript the PNG stays. No dependencies:
// the page must stay one file that opens anywhere.
(function () {
  'use strict';
  var NS = 'http://www.w3.org/2000/svg';
  var W = 1000, H = 500, LEFT = 86, RIGHT = 86, TOP = 16, BOTTOM = 56;

  function el(name, attrs, parent) {
    var e = document.createElementNS(NS, name);
    for (var k in attrs) e.setAttribute(k, attrs[k]);
    if (parent) parent.appendChild(e);
    return e;
  }
  function html(tag, cls, parent, text) {
    var e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined) e.textContent = text;
    if (parent) parent.appendChild(e);
    return e;
  }
  // Value -> position on an axis of this scale, and back.
  function fwd(scale, v) {
    if (v === null || v === undefined) return NaN;
    if (scale === 'log') return v > 0 ? Math.log10(v) : NaN;
    if (scale === 'percentile') return Math.log10(1 / Math.max(1 - v, 1e-12));
    return v;
  }
  function inv(scale, u) {
    if (scale === 'log') return Math.pow(10, u);
    if (scale === 'percentile') return 1 - Math.pow(10, -u);
    return u;
  }
  function short(v) {
    return String(+v.toPrecision(3));
  }
  function fmt(unit, v) {
    if (v === null || v === undefined || isNaN(v)) return '\u2013';
    if (unit === 'ms') {
      if (v < 1) return short(v * 1000) + ' \u00b5s';
      if (v < 1000) return short(v) + ' ms';
      return short(v / 1000) + ' s';
    }
    if (unit === 's') return String(+v.toPrecision(5)) + ' s';
    if (unit === 'quantile') return pct(v, 1);
    if (unit === 'share') return short(v * 100) + ' %';
    if (unit === 'count') {
      var a = Math.abs(v);
      if (a >= 1e6) return short(v / 1e6) + 'M';
      if (a >= 1e3) return short(v / 1e3) + 'k';
      return short(v);
    }
    return String(+v.toPrecision(4));
  }
  // Ticks at decades of a log axis (and at 2 and 5 when it spans few), in axis units.
  function logTicks(lo, hi) {
    var out = [], k;
    var few = hi - lo < 3;
    for (k = Math.floor(lo); k <= Math.ceil(hi); k++) {
      [1, 2, 5].forEach(function (m) {
        if (m !== 1 && !few) return;
        var u = k + Math.log10(m);
        if (u >= lo - 1e-9 && u <= hi + 1e-9) out.push(u);
      });
    }
    return out;
  }
  // A quantile as a percentile with the decimals it needs (99 %, 99.5 %, 99.99 %), and `extra`
  // more. Between decades the percentile axis ticks at 2 and 5 (95 %, 98 %, 99.5 %...).
  function pct(q, extra) {
    var digits = Math.max(0, Math.ceil(-Math.log10(Math.max(1 - q, 1e-12)) - 1e-9) - 2);
    return (q * 100).toFixed(Math.min(digits + extra, 6)) + ' %';
  }
  // Tick positions (in axis units) between lo and hi.
  function ticks(scale, lo, hi) {
    var out = [], k;
    if (scale === 'log' || scale === 'percentile') {
      var found = logTicks(lo, hi);
      if (found.length >= 2) return found;
      // Zoomed in between two of them: even steps of the values themselves.
      return ticks('linear', inv(scale, lo), inv(scale, hi)).map(function (v) {
        return fwd(scale, v);
      }).filter(isFinite);
    }
    var span = hi - lo;
    if (!(span > 0)) return [lo];
    var step = Math.pow(10, Math.floor(Math.log10(span / 6)));
    if (span / step > 30) step *= 5; else if (span / step > 12) step *= 2;
    for (k = Math.ceil(lo / step) * step; k <= hi + step * 1e-9; k += step) out.push(k);
    return out;
  }
  function tickLabel(axis, u) {
    var v = inv(axis.scale, u);
    if (axis.scale === 'percentile') return pct(v, 0);
    return fmt(axis.unit, Math.abs(v) < 1e-12 ? 0 : v);
  }

  function Chart(fig, data) {
    this.d = data;
    this.hidden = data.lines.map(function () { return false; });
    this.zoom = null;
    var box = html('div', 'iplot');
    var bar = html('div', 'iplot-bar', box);
    html('span', 'iplot-title', bar, data.title);
    this.reset = html('button', 'iplot-reset', bar, 'full range');
    this.reset.type = 'button';
    this.reset.style.visibility = 'hidden';
    this.svg = el('svg', { viewBox: '0 0 ' + W + ' ' + H, role: 'img' }, box);
    this.tip = html('div', 'iplot-tip', box);
    this.legend = html('div', 'iplot-legend', box);
    var img = fig.querySelector('img');
    fig.insertBefore(box, img);
    this.box = box;
    var self = this;
    this.reset.onclick = function () { self.zoom = null; self.draw(); };
    data.lines.forEach(function (line, i) {
      var item = html('span', 'iplot-key', self.legend);
      var sw = html('span', 'iplot-swatch', item);
      sw.style.background = line.color;
      html('span', null, item, line.name);
      item.title = 'show or hide';
      item.onclick = function () {
        self.hidden[i] = !self.hidden[i];
        item.style.opacity = self.hidden[i] ? 0.35 : 1;
        self.draw();
      };
    });
    this.draw();
    if (img) img.style.display = 'none';
  }

  // The full x range, and the y range of the visible lines within the shown x range.
  Chart.prototype.domains = function () {
    var d = this.d, self = this, xlo = Infinity, xhi = -Infinity;
    d.lines.forEach(function (l) {
      l.points.forEach(function (p) {
        var u = fwd(d.x.scale, p[0]);
        if (isFinite(u)) { xlo = Math.min(xlo, u); xhi = Math.max(xhi, u); }
      });
    });
    (d.bands || []).forEach(function (b) { xhi = Math.max(xhi, fwd(d.x.scale, b.to)); });
    if (!isFinite(xlo)) { xlo = 0; xhi = 1; }
    if (xhi <= xlo) xhi = xlo + 1;
    var x = this.zoom || [xlo, xhi];
    function yrange(axis, right) {
      var lo = Infinity, hi = -Infinity;
      d.lines.forEach(function (l, i) {
        if (self.hidden[i] || !!l.right !== right) return;
        l.points.forEach(function (p) {
          var u = fwd(d.x.scale, p[0]), v = fwd(axis.scale, p[1]);
          if (u >= x[0] && u <= x[1] && isFinite(v)) { lo = Math.min(lo, v); hi = Math.max(hi, v); }
        });
      });
      if (!right) (d.marks || []).forEach(function (m) {
        var v = fwd(axis.scale, m.y);
        if (isFinite(v)) { lo = Math.min(lo, v); hi = Math.max(hi, v); }
      });
      if (!isFinite(lo)) return axis.scale === 'log' ? [0, 1] : [0, 1];
      if (axis.scale === 'log') return [Math.floor(lo * 10) / 10 - 0.05, Math.ceil(hi * 10) / 10 + 0.05];
      return [Math.min(0, lo), hi > 0 ? hi * 1.08 : 1];
    }
    return { x: x, y: yrange(d.y, false), y2: d.y2 ? yrange(d.y2, true) : null };
  };

  Chart.prototype.draw = function () {
    var d = this.d, self = this, svg = this.svg;
    while (svg.firstChild) svg.removeChild(svg.firstChild);
    var dom = this.domains();
    this.dom = dom;
    var pw = W - LEFT - RIGHT, ph = H - TOP - BOTTOM;
    function X(u) { return LEFT + (u - dom.x[0]) / (dom.x[1] - dom.x[0]) * pw; }
    function Y(v, r) { return TOP + ph - (v - r[0]) / (r[1] - r[0]) * ph; }
    this.X = X;
    el('clipPath', { id: this.clip = 'c' + Math.random().toString(36).slice(2) }, svg)
      .appendChild(el('rect', { x: LEFT, y: TOP, width: pw, height: ph }));
    var plot = el('g', { 'clip-path': 'url(#' + this.clip + ')' }, svg);
    (d.bands || []).forEach(function (b) {
      var a = X(fwd(d.x.scale, b.from)), z = X(fwd(d.x.scale, b.to)), r;
      if (b.to > b.from) {
        r = el('rect', { x: a, y: TOP, width: Math.max(z - a, 1), height: ph, fill: '#f0b400', 'fill-opacity': 0.15 }, plot);
      } else {
        // An instant (the plan's answer): a dashed line.
        r = el('line', { x1: a, x2: a, y1: TOP, y2: TOP + ph, stroke: '#000', 'stroke-width': 2, 'stroke-dasharray': '8 5' }, plot);
      }
      el('title', {}, r).textContent = b.label;
    });
    var axes = el('g', { 'font-size': 13, fill: '#333' }, svg);
    ticks(d.x.scale, dom.x[0], dom.x[1]).forEach(function (u) {
      var x = X(u);
      el('line', { x1: x, x2: x, y1: TOP, y2: TOP + ph, stroke: '#eee' }, axes);
      el('text', { x: x, y: TOP + ph + 18, 'text-anchor': 'middle' }, axes).textContent = tickLabel(d.x, u);
    });
    ticks(d.y.scale, dom.y[0], dom.y[1]).forEach(function (u) {
      var y = Y(u, dom.y);
      el('line', { x1: LEFT, x2: LEFT + pw, y1: y, y2: y, stroke: '#eee' }, axes);
      el('text', { x: LEFT - 6, y: y + 4, 'text-anchor': 'end' }, axes).textContent = tickLabel(d.y, u);
    });
    if (d.y2) ticks(d.y2.scale, dom.y2[0], dom.y2[1]).forEach(function (u) {
      el('text', { x: LEFT + pw + 6, y: Y(u, dom.y2) + 4 }, axes).textContent = tickLabel(d.y2, u);
    });
    el('rect', { x: LEFT, y: TOP, width: pw, height: ph, fill: 'none', stroke: '#999' }, axes);
    el('text', { x: LEFT + pw / 2, y: H - 10, 'text-anchor': 'middle', 'font-size': 14 }, axes).textContent = d.x.label;
    el('text', { transform: 'translate(16,' + (TOP + ph / 2) + ') rotate(-90)', 'text-anchor': 'middle', 'font-size': 14 }, axes).textContent = d.y.label;
    if (d.y2) el('text', { transform: 'translate(' + (W - 12) + ',' + (TOP + ph / 2) + ') rotate(90)', 'text-anchor': 'middle', 'font-size': 14 }, axes).textContent = d.y2.label;
    d.lines.forEach(function (l, i) {
      if (self.hidden[i]) return;
      var axis = l.right ? d.y2 : d.y, r = l.right ? dom.y2 : dom.y, path = '', pen = false;
      l.points.forEach(function (p) {
        var u = fwd(d.x.scale, p[0]), v = fwd(axis.scale, p[1]);
        if (!isFinite(u) || !isFinite(v)) { pen = false; return; }
        path += (pen ? 'L' : 'M') + X(u).toFixed(1) + ',' + Y(v, r).toFixed(1);
        pen = true;
      });
      el('path', { d: path, fill: 'none', stroke: l.color, 'stroke-width': Math.max(1, l.width * 0.7), 'stroke-dasharray': l.right ? '6 4' : 'none' }, plot);
    });
    (d.marks || []).forEach(function (m) {
      var x = X(fwd(d.x.scale, m.x)), y = Y(fwd(d.y.scale, m.y), dom.y);
      var g = el('line', { x1: x - 14, x2: x + 14, y1: y, y2: y, stroke: m.color, 'stroke-width': 4 }, plot);
      el('title', {}, g).textContent = m.label;
    });
    this.cross = el('line', { y1: TOP, y2: TOP + ph, stroke: '#555', 'stroke-dasharray': '3 3', visibility: 'hidden' }, svg);
    this.sel = el('rect', { y: TOP, height: ph, fill: '#0072b2', 'fill-opacity': 0.12, visibility: 'hidden' }, svg);
    var over = el('rect', { x: LEFT, y: TOP, width: pw, height: ph, fill: 'transparent', style: 'cursor:crosshair' }, svg);
    over.addEventListener('mousemove', function (e) { self.hover(e); });
    over.addEventListener('mouseleave', function () { self.cross.setAttribute('visibility', 'hidden'); self.tip.style.display = 'none'; });
    over.addEventListener('mousedown', function (e) { self.drag = self.at(e); e.preventDefault(); });
    over.addEventListener('mouseup', function (e) { self.release(e); });
    over.addEventListener('dblclick', function () { self.zoom = null; self.draw(); });
    this.reset.style.visibility = this.zoom ? 'visible' : 'hidden';
  };

  // The pointer's position in viewBox units.
  Chart.prototype.at = function (e) {
    var r = this.svg.getBoundingClientRect();
    return (e.clientX - r.left) / r.width * W;
  };
  Chart.prototype.toU = function (px) {
    var pw = W - LEFT - RIGHT, x = this.dom.x;
    return x[0] + (px - LEFT) / pw * (x[1] - x[0]);
  };

  Chart.prototype.hover = function (e) {
    var d = this.d, self = this, px = this.at(e), u = this.toU(px);
    this.cross.setAttribute('x1', px);
    this.cross.setAttribute('x2', px);
    this.cross.setAttribute('visibility', 'visible');
    if (this.drag !== undefined && this.drag !== null) {
      this.sel.setAttribute('x', Math.min(this.drag, px));
      this.sel.setAttribute('width', Math.abs(px - this.drag));
      this.sel.setAttribute('visibility', 'visible');
    }
    var rows = [d.x.label + ': ' + fmt(d.x.scale === 'percentile' ? 'quantile' : d.x.unit, inv(d.x.scale, u))];
    d.lines.forEach(function (l, i) {
      if (self.hidden[i] || !l.points.length) return;
      var best = null, dist = Infinity;
      l.points.forEach(function (p) {
        var dd = Math.abs(fwd(d.x.scale, p[0]) - u);
        if (dd < dist) { dist = dd; best = p; }
      });
      var axis = l.right ? d.y2 : d.y;
      rows.push('<span style="color:' + l.color + '">\u25a0</span> ' + esc(l.name) + ': <b>' + fmt(axis.unit, best[1]) + '</b>');
    });
    this.tip.innerHTML = rows.join('<br>');
    this.tip.style.display = 'block';
    var r = this.svg.getBoundingClientRect(), left = (px / W) * r.width;
    this.tip.style.left = (left > r.width * 0.6 ? left - this.tip.offsetWidth - 12 : left + 12) + 'px';
    this.tip.style.top = (TOP / H * r.height + 4) + 'px';
  };

  Chart.prototype.release = function (e) {
    var start = this.drag;
    this.drag = null;
    this.sel.setAttribute('visibility', 'hidden');
    if (start === undefined || start === null) return;
    var end = this.at(e);
    if (Math.abs(end - start) < 6) return;
    var a = this.toU(Math.min(start, end)), b = this.toU(Math.max(start, end));
    this.zoom = [a, b];
    this.draw();
  };

  function esc(s) {
    return String(s).replace(/[&<>"']/g, function (c) {
      return { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' }[c];
    });
  }

  var figs = document.querySelectorAll('figure[data-plot]');
  for (var i = 0; i < figs.length; i++) {
    try {
      new Chart(figs[i], JSON.parse(figs[i].getAttribute('data-plot')));
    } catch (err) {
      // The static image stays.
      var half = figs[i].querySelector('.iplot');
      if (half) half.parentNode.removeChild(half);
      if (window.console) console.warn('interactive figure', figs[i].id, err);
    }
  }
})();
