// The page of `firth serve`: plain JavaScript, no build step, no network beyond this server.
"use strict";

const $ = (s) => document.querySelector(s);
const SVG = "http://www.w3.org/2000/svg";

function el(tag, attrs = {}, ...kids) {
  const e = tag.startsWith("svg:") ? document.createElementNS(SVG, tag.slice(4)) : document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "text") e.textContent = v;
    else if (k === "style" && typeof v === "object") Object.assign(e.style, v);
    else if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
    else e.setAttribute(k, v);
  }
  for (const c of kids) e.append(c);
  return e;
}

function showError(msg) {
  const box = $("#error");
  box.textContent = msg || "";
  box.hidden = !msg;
}

async function api(path, body) {
  const res = await fetch(path, body === undefined ? {} : {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify(body),
  });
  const data = await res.json().catch(() => ({ error: `HTTP ${res.status}` }));
  if (!res.ok) throw new Error(data.error || `HTTP ${res.status}`);
  return data;
}

// Runs a form's handler, showing any error above the tabs.
function onSubmit(form, fn) {
  $(form).addEventListener("submit", async (ev) => {
    ev.preventDefault();
    showError("");
    try { await fn(); } catch (e) { showError(e.message); }
  });
}

const model = (tab) => $(`#tab-${tab} select.model`).value;
const fmt = (x, d = 3) => (Math.abs(x) >= 1e4 || (Math.abs(x) < 1e-3 && x !== 0)) ? x.toExponential(2) : x.toFixed(d);

function scoreTable(table, rows, head) {
  table.replaceChildren(el("tr", {}, ...head.map((h) => el("th", { text: h }))));
  const max = Math.max(...rows.map((r) => Math.abs(r[1])), 1e-9);
  for (const [w, s] of rows) {
    table.append(el("tr", {}, el("td", { text: w }), el("td", { class: "num", text: fmt(s) }),
      el("td", {}, el("span", { class: "bar", style: { width: `${(80 * Math.abs(s)) / max}px` } }))));
  }
}

// ---- tabs ----

function selectTab(name) {
  for (const b of document.querySelectorAll("#tabs button")) b.setAttribute("aria-selected", String(b.dataset.tab === name));
  for (const s of document.querySelectorAll("section.tab")) s.hidden = s.id !== `tab-${name}`;
  showError("");
  location.hash = name;
}

async function init() {
  const { models } = await api("/api/models");
  const kinds = new Set(models.map((m) => m.kind));
  for (const b of document.querySelectorAll("#tabs button")) {
    const k = b.dataset.tab;
    b.disabled = !kinds.has(k);
    b.addEventListener("click", () => selectTab(k));
    const sel = $(`#tab-${k} select.model`);
    for (const m of models.filter((m) => m.kind === k)) sel.append(el("option", { value: m.id, text: `${m.id} (${m.about})` }));
  }
  $("#intro").textContent = `${models.length} loaded: ` + models.map((m) => `${m.id} (${m.kind})`).join(", ");
  const first = [...document.querySelectorAll("#tabs button")].find((b) => !b.disabled);
  const wanted = location.hash.slice(1);
  selectTab(kinds.has(wanted) ? wanted : first ? first.dataset.tab : "vectors");
  $("#tab-insight select.model").addEventListener("change", showInsight);
  if (kinds.has("insight")) showInsight();
}

// ---- vectors ----

onSubmit("#nn-form", async () => {
  const r = await api("/api/vectors/neighbors", { model: model("vectors"), word: $("#nn-word").value.trim(), k: +$("#nn-k").value });
  scoreTable($("#nn-out"), r.neighbors.map((n) => [n.word, n.cosine]), ["word", "cosine", ""]);
});

onSubmit("#an-form", async () => {
  const r = await api("/api/vectors/analogy", { model: model("vectors"), a: $("#an-a").value.trim(), b: $("#an-b").value.trim(), c: $("#an-c").value.trim(), k: 5 });
  scoreTable($("#an-out"), r.answers.map((n) => [n.word, n.cosine]), ["answer", "cosine", ""]);
});

onSubmit("#map-form", async () => {
  const words = $("#map-words").value.split(/[\s,]+/).filter(Boolean);
  const r = await api("/api/vectors/map", { model: model("vectors"), words });
  $("#map-out").replaceChildren(scatter(r.points));
});

function scale(lo, hi, a, b) {
  const span = hi - lo || 1;
  return (v) => a + ((v - lo) / span) * (b - a);
}

function scatter(points) {
  const W = 560, H = 380, P = 40;
  const xs = points.map((p) => p.x), ys = points.map((p) => p.y);
  const sx = scale(Math.min(...xs), Math.max(...xs), P, W - P);
  const sy = scale(Math.min(...ys), Math.max(...ys), H - P, P);
  const svg = el("svg:svg", { viewBox: `0 0 ${W} ${H}`, width: W, height: H, "data-points": points.length });
  svg.append(el("svg:rect", { x: 0, y: 0, width: W, height: H, fill: "#fff", stroke: "#d9dee7" }));
  for (const p of points) {
    svg.append(el("svg:circle", { cx: sx(p.x), cy: sy(p.y), r: 4, fill: "#2f5fb3" }));
    svg.append(el("svg:text", { x: sx(p.x) + 6, y: sy(p.y) - 6, "font-size": 13, class: "label", text: p.word }));
  }
  return svg;
}

// ---- n-gram ----

onSubmit("#ng-form", async () => {
  const r = await api("/api/ngram/score", { model: model("ngram"), text: $("#ng-text").value });
  const out = $("#ng-out");
  out.replaceChildren();
  for (const s of r.sentences) {
    const t = el("table", { class: "scores ngram-line" });
    t.append(el("tr", {}, ...["word", "id", "n-gram", "log10 p", ""].map((h) => el("th", { text: h }))));
    for (const w of s.words) {
      t.append(el("tr", {}, el("td", { class: "word", text: w.word }), el("td", { class: "num", text: w.id }),
        el("td", { class: "num", text: w.ngram_len }), el("td", { class: "num", text: w.log10_prob.toFixed(4) }),
        el("td", {}, el("span", { class: "bar", style: { width: `${Math.min(200, -w.log10_prob * 30)}px` } }))));
    }
    out.append(t, el("p", { class: "total", text: `Total: ${s.total.toFixed(4)}  OOV: ${s.oov}` }));
  }
  out.append(el("p", { class: "ppl", text: `Perplexity including OOVs: ${fmt(r.perplexity)}; excluding OOVs: ${fmt(r.perplexity_excluding_oov)}; ${r.tokens} tokens` }));
});

// ---- language model ----

// A token as shown: the end of a line (a word model's sentence end) and a space made visible.
const shownToken = (t) => (t === "\n" || t === "" ? "⏎" : t === " " ? "␣" : t);
const heat = (p) => `hsla(${Math.round(120 * p)}, 70%, 55%, ${0.25 + 0.5 * p})`;

onSubmit("#lm-form", async () => {
  const r = await api("/api/lm/generate", {
    model: model("lm"), prompt: $("#lm-prompt").value, max_tokens: +$("#lm-n").value,
    temperature: +$("#lm-t").value, seed: +$("#lm-seed").value, greedy: $("#lm-greedy").checked, alternatives: 5,
  });
  const out = $("#lm-out");
  const show = shownToken;
  out.replaceChildren(...r.prompt.map((t) => el("span", { class: "tok prompt", text: show(t) })));
  $("#lm-alt").replaceChildren();
  r.tokens.forEach((t, i) => {
    const span = el("span", { class: "tok gen", title: `p = ${t.prob.toFixed(4)}`, "data-i": i, style: { background: heat(t.prob) } },
      show(t.token), el("sub", { text: t.prob.toFixed(2) }));
    span.addEventListener("click", () => {
      for (const s of out.querySelectorAll(".tok.selected")) s.classList.remove("selected");
      span.classList.add("selected");
      scoreTable($("#lm-alt"), t.top.map(([w, p]) => [show(w) + (w === t.token ? "  ← chosen" : ""), p]), [`alternatives at position ${i + 1}`, "p", ""]);
    });
    out.append(span);
  });
});

// ---- tagger ----

const palette = ["#f8c9c9", "#c9e4f8", "#d4f3c6", "#f8e6b5", "#e2d1f6", "#c6efe9", "#f6d3ea", "#e8e8c0"];
const colours = new Map();
const colour = (k) => { if (!colours.has(k)) colours.set(k, palette[colours.size % palette.length]); return colours.get(k); };

onSubmit("#tg-form", async () => {
  const r = await api("/api/tagger/tag", { model: model("tagger"), text: $("#tg-text").value });
  const type = (t) => (r.spans ? (t === "O" ? null : t.replace(/^[BIESLU]-/, "")) : t);
  $("#tg-out").replaceChildren(...r.tokens.map((w, i) => {
    const ty = type(r.tags[i]);
    return el("span", { class: "tok", "data-tag": r.tags[i], style: { background: ty ? colour(ty) : "transparent" } }, w, el("sub", { text: r.tags[i] }));
  }));
  $("#tg-ents").replaceChildren(...r.entities.map((e) => el("li", {}, el("span", { class: "ent", style: { background: colour(e.type) }, text: e.text }), ` ${e.type}`)));
});

// ---- classifier ----

onSubmit("#cl-form", async () => {
  const r = await api("/api/classifier/classify", { model: model("classifier"), text: $("#cl-text").value });
  $("#cl-label").replaceChildren("Label: ", el("strong", { id: "cl-label-value", text: r.label }));
  const t = el("table", { class: "scores" });
  scoreTable(t, r.probs.map((p) => [p.label, p.prob]), ["label", "probability", ""]);
  $("#cl-probs").replaceChildren(t);
  const att = $("#cl-att");
  if (r.attention) {
    const max = Math.max(...r.attention);
    att.replaceChildren(el("p", { class: "hint", text: "Attention over the words (darker: more weight)" }),
      ...r.tokens.map((w, i) => el("span", { class: "tok att", title: r.attention[i].toFixed(4), style: { background: `rgba(47,95,179,${(0.8 * r.attention[i]) / max})` } }, w, el("sub", { text: r.attention[i].toFixed(2) }))));
  } else {
    att.replaceChildren(el("p", { class: "hint", text: `This model pools by ${r.pooling}, so it has no attention weights to show.` }));
  }
});

// ---- translator ----

function heatMap(rows, cols, m) {
  const C = 46, L = 110, T = 90;
  const W = L + C * cols.length + 10, H = T + C * rows.length + 10;
  const svg = el("svg:svg", { viewBox: `0 0 ${W} ${H}`, width: W, height: H, class: "heatmap" });
  cols.forEach((c, j) => svg.append(el("svg:text", { x: L + C * j + C / 2, y: T - 8, "font-size": 12, transform: `rotate(-45 ${L + C * j + C / 2} ${T - 8})`, text: c })));
  rows.forEach((r, i) => {
    svg.append(el("svg:text", { x: L - 6, y: T + C * i + C / 2 + 4, "font-size": 12, "text-anchor": "end", text: r }));
    cols.forEach((_, j) => {
      const v = m[i][j];
      svg.append(el("svg:rect", { x: L + C * j, y: T + C * i, width: C - 1, height: C - 1, fill: `rgba(47,95,179,${v})`, class: "cell" },
        el("svg:title", { text: `${r} → ${cols[j]}: ${v.toFixed(3)}` })));
    });
  });
  return svg;
}

onSubmit("#tr-form", async () => {
  const r = await api("/api/translator/translate", { model: model("translator"), text: $("#tr-text").value, beam: +$("#tr-beam").value });
  $("#tr-out").textContent = r.translation;
  $("#tr-att").replaceChildren(r.attention ? heatMap(r.output, r.source, r.attention) : el("p", { class: "hint", text: "This model has no attention." }));
});

// ---- insight ----

function lineChart(title, series, { logY = false, xLabel = "", yLabel = "" } = {}) {
  const W = 620, H = 340, L = 70, R = 150, T = 30, B = 45;
  const pts = series.flatMap((s) => s.points).filter(([, y]) => !logY || y > 0);
  const svg = el("svg:svg", { viewBox: `0 0 ${W} ${H}`, width: W, height: H, class: "linechart" });
  svg.append(el("svg:text", { x: L, y: 18, "font-size": 14, "font-weight": 600, text: title }));
  if (!pts.length) return svg;
  const f = (y) => (logY ? Math.log10(y) : y);
  const xs = pts.map((p) => p[0]), ys = pts.map((p) => f(p[1]));
  const [x0, x1, y0, y1] = [Math.min(...xs), Math.max(...xs), Math.min(...ys), Math.max(...ys)];
  const sx = scale(x0, x1, L, W - R), sy = scale(y0, y1, H - B, T);
  svg.append(el("svg:rect", { x: L, y: T, width: W - L - R, height: H - T - B, fill: "none", stroke: "#d9dee7" }));
  for (let k = 0; k <= 4; k++) {
    const yv = y0 + ((y1 - y0) * k) / 4, xv = x0 + ((x1 - x0) * k) / 4;
    svg.append(el("svg:text", { x: L - 6, y: sy(yv) + 4, "font-size": 11, "text-anchor": "end", text: fmt(logY ? 10 ** yv : yv, 2) }));
    svg.append(el("svg:text", { x: sx(xv), y: H - B + 16, "font-size": 11, "text-anchor": "middle", text: fmt(xv, 0) }));
  }
  svg.append(el("svg:text", { x: (L + W - R) / 2, y: H - 8, "font-size": 12, "text-anchor": "middle", text: xLabel }));
  svg.append(el("svg:text", { x: 14, y: (T + H - B) / 2, "font-size": 12, transform: `rotate(-90 14 ${(T + H - B) / 2})`, "text-anchor": "middle", text: yLabel + (logY ? " (log)" : "") }));
  const hues = ["#2f5fb3", "#c2410c", "#15803d", "#7e22ce", "#b91c1c", "#0e7490"];
  series.forEach((s, i) => {
    const ok = s.points.filter(([, y]) => !logY || y > 0);
    const d = ok.map(([x, y], k) => `${k ? "L" : "M"}${sx(x).toFixed(1)},${sy(f(y)).toFixed(1)}`).join("");
    svg.append(el("svg:path", { d, fill: "none", stroke: hues[i % hues.length], "stroke-width": 2, class: "series" }));
    if (ok.length === 1) svg.append(el("svg:circle", { cx: sx(ok[0][0]), cy: sy(f(ok[0][1])), r: 3, fill: hues[i % hues.length] }));
    svg.append(el("svg:text", { x: W - R + 10, y: T + 14 + 16 * i, "font-size": 12, fill: hues[i % hues.length], text: s.name }));
  });
  return svg;
}

function column(file, name) {
  const j = file.header.indexOf(name);
  return j < 0 ? null : file.rows.map((r) => r[j]);
}

async function showInsight() {
  const out = $("#in-out");
  try {
    const r = await api("/api/insight/run", { model: model("insight") });
    out.replaceChildren();
    for (const f of r.files) {
      const card = el("div", { class: "card", "data-file": f.name });
      if (f.kind === "metrics") {
        const epoch = column(f, "epoch");
        const curves = [["train_perplexity", "train perplexity"], ["valid_perplexity", "valid perplexity"], ["train_loss", "train loss"], ["valid_loss", "valid loss"],
          ["valid_accuracy", "valid accuracy"], ["valid_f1", "valid F1"], ["valid_bleu", "valid BLEU"]];
        const series = [];
        for (const [c, name] of curves) {
          const ys = column(f, c);
          if (!ys || ys.every((y) => y === null)) continue;
          series.push({ name, points: epoch.map((x, i) => [x, ys[i]]).filter(([x, y]) => x !== null && y !== null) });
        }
        const perp = series.filter((s) => s.name.includes("perplexity"));
        const loss = series.filter((s) => s.name.includes("loss"));
        const score = series.filter((s) => !s.name.includes("perplexity") && !s.name.includes("loss"));
        card.append(el("h2", { text: `Training curves (${f.name})` }));
        if (perp.length) card.append(lineChart("Perplexity per epoch", perp, { logY: true, xLabel: "epoch", yLabel: "perplexity" }));
        else if (loss.length) card.append(lineChart("Loss per epoch", loss, { xLabel: "epoch", yLabel: "loss" }));
        if (score.length) card.append(lineChart("Development score per epoch", score, { xLabel: "epoch", yLabel: "score" }));
      } else if (f.kind === "gradients") {
        continue; // all of a run's curves go on one chart, below
      } else {
        card.append(el("h2", { text: `${f.name} (${f.kind})` }), el("p", { class: "hint", text: `${f.rows.length} rows: ${f.header.join(", ")}` }));
      }
      out.append(card);
    }
    const grads = r.files.filter((f) => f.kind === "gradients");
    if (grads.length) {
      const series = grads.map((f) => {
        const d = column(f, "distance"), g = column(f, "grad_norm");
        return { name: f.name.replace(/^gradients-|\.csv$/g, ""), points: d.map((x, i) => [x, g[i]]).filter(([x, y]) => x !== null && y !== null) };
      });
      out.prepend(el("div", { class: "card", "data-kind": "gradients" }, el("h2", { text: "Gradient flow: how far back one prediction's loss reaches" }),
        lineChart("|dJ_t / dh_(t-d)| against distance d", series, { logY: true, xLabel: "distance d", yLabel: "gradient norm" })));
    }
  } catch (e) { showError(e.message); }
}

init().catch((e) => showError(`Cannot list the models: ${e.message}`));
