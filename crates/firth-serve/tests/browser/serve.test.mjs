// End-to-end tests of `firth serve` in a real browser: tiny models are built by the firth
// binary from the repository's fixtures, the server starts on a free port, and headless
// Chromium (Debian's /usr/bin/chromium, driven by playwright-core; no browser is downloaded)
// clicks through each tab. What the page shows is checked against the JSON API's answers and
// against the fixtures.
//
//   FIRTH=target/release/firth npm test          (in this folder; FIRTH defaults to that path)
//   SCREENSHOTS=docs/img npm test                 also writes docs/img/serve-<tab>.png

import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { execFileSync, spawn } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";

const here = path.dirname(fileURLToPath(import.meta.url));
const repo = path.resolve(here, "../../../..");
const firth = path.resolve(repo, process.env.FIRTH || "target/release/firth");
const chromiumPath = process.env.CHROMIUM || "/usr/bin/chromium";
const shots = process.env.SCREENSHOTS ? path.resolve(repo, process.env.SCREENSHOTS) : null;
const work = fs.mkdtempSync(path.join(os.tmpdir(), "firth-serve-browser-"));

let server, base, browser, page;

function run(...args) {
  return execFileSync(firth, args, { cwd: work, stdio: ["ignore", "pipe", "pipe"], encoding: "utf8" });
}

// `label<TAB>text` lines of a toy sentiment grammar (the adjective's polarity, flipped by "not").
function toySentiment(n, seed) {
  const nouns = ["film", "plot", "cast", "script", "ending"];
  const good = ["good", "great", "moving", "funny", "sharp"];
  const bad = ["bad", "dull", "flat", "tedious", "weak"];
  let s = seed;
  const next = (k) => { s = (s * 1103515245 + 12345) % 2147483648; return Math.floor((s / 2147483648) * k); };
  const lines = [];
  for (let i = 0; i < n; i++) {
    const pos = next(2) === 0, neg = next(3) === 0;
    const adj = pos !== neg ? good[next(5)] : bad[next(5)];
    lines.push(`${pos ? "positive" : "negative"}\tthe ${nouns[next(5)]} was ${neg ? "not " : ""}${adj} .`);
  }
  return lines.join("\n") + "\n";
}

function buildModels() {
  const fx = (p) => path.join(repo, p);
  // A corpus from Tiny Shakespeare: lower-cased words, one sentence-ish line each.
  const shakespeare = fs.readFileSync(fx("data/tinyshakespeare/input.txt"), "utf8").toLowerCase().replace(/[^a-z'\n ]+/g, " ");
  const lines = shakespeare.split("\n").map((l) => l.trim().replace(/\s+/g, " ")).filter(Boolean);
  fs.writeFileSync(path.join(work, "corpus.txt"), lines.join("\n") + "\n");
  fs.writeFileSync(path.join(work, "small.txt"), lines.slice(0, 3000).join("\n") + "\n");
  fs.writeFileSync(path.join(work, "valid.txt"), lines.slice(3000, 3300).join("\n") + "\n");
  run("vectors", "word2vec", "--input", "corpus.txt", "--output", "shakespeare.bin", "--dim", "24", "--min-count", "3", "--epochs", "2", "--threads", "1");
  run("ngram", "build", "--order", "3", "--arpa", "shakespeare3.arpa", "corpus.txt");
  run("lm", "train", "--arch", "lstm", "--hidden", "32", "--emb", "32", "--bptt", "10", "--batch", "8", "--optim", "adam", "--lr", "0.01",
    "--epochs", "2", "--train", "small.txt", "--valid", "valid.txt", "--out", "lm", "--threads", "1", "--quiet");
  run("tag", "train", "--train", fx("crates/firth-cli/tests/fixtures/tag/train.conll"), "--dev", fx("crates/firth-cli/tests/fixtures/tag/dev.conll"),
    "--out", "ner", "--hidden", "16", "--emb", "16", "--char-dim", "8", "--char-hidden", "8", "--epochs", "3", "--batch", "2", "--threads", "1", "--quiet");
  fs.writeFileSync(path.join(work, "train.tsv"), toySentiment(300, 1));
  fs.writeFileSync(path.join(work, "dev.tsv"), toySentiment(60, 2));
  run("classify", "train", "--train", "train.tsv", "--dev", "dev.tsv", "--out", "sentiment", "--pooling", "attention", "--hidden", "16", "--emb", "16",
    "--batch", "8", "--lr", "0.01", "--epochs", "3", "--threads", "1", "--quiet");
  const mt = (f) => fx(`crates/firth-cli/tests/fixtures/translate/${f}`);
  run("translate", "train", "--train-src", mt("train.de"), "--train-tgt", mt("train.en"), "--valid-src", mt("valid.de"), "--valid-tgt", mt("valid.en"),
    "--out", "de-en", "--emb", "16", "--hidden", "16", "--epochs", "40", "--batch-sentences", "8", "--no-valid-bleu", "--threads", "1", "--quiet");
  run("lm", "gradients", "--arch", "rnn,lstm", "--hidden", "16", "--layers", "1", "--train", "valid.txt", "--out", "grad",
    "--positions", "20", "--max-distance", "20", "--threads", "1", "--quiet");
  return ["shakespeare.bin", "shakespeare3.arpa", "lm", "ner", "sentiment", "de-en", "grad"].map((p) => path.join(work, p));
}

function startServer(paths) {
  return new Promise((resolve, reject) => {
    server = spawn(firth, ["serve", ...paths, "--port", "0"], { stdio: ["ignore", "pipe", "inherit"] });
    let out = "";
    server.stdout.on("data", (d) => {
      out += d;
      const m = out.match(/serving on (http:\/\/\S+)/);
      if (m) resolve(m[1].replace(/\/$/, ""));
    });
    server.on("exit", (code) => reject(new Error(`firth serve exited with ${code} before serving`)));
  });
}

async function api(p, body) {
  const res = await fetch(base + p, { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) });
  assert.equal(res.status, 200, `${p}: ${await res.clone().text()}`);
  return res.json();
}

async function openTab(name) {
  await page.click(`#tabs button[data-tab=${name}]`);
  await page.waitForSelector(`#tab-${name}:not([hidden])`);
}

async function shot(name) {
  if (shots) {
    fs.mkdirSync(shots, { recursive: true });
    await page.screenshot({ path: path.join(shots, `serve-${name}.png`), fullPage: true });
  }
}

before(async () => {
  const paths = buildModels();
  base = await startServer(paths);
  const profile = fs.mkdtempSync(path.join(os.tmpdir(), "firth-chromium-"));
  browser = await chromium.launchPersistentContext(profile, {
    executablePath: chromiumPath,
    headless: true,
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
      "--disable-component-update", "--disable-sync"],
    viewport: { width: 1100, height: 800 },
  });
  page = browser.pages()[0] || (await browser.newPage());
  // The page must need nothing beyond this server.
  page.on("request", (r) => assert.ok(r.url().startsWith(base) || r.url().startsWith("data:"), `request outside the server: ${r.url()}`));
  await page.goto(base + "/");
  await page.waitForFunction(() => !document.querySelector("#intro").textContent.startsWith("Loading"));
}, { timeout: 600_000 });

after(async () => {
  await browser?.close();
  server?.kill();
  fs.rmSync(work, { recursive: true, force: true });
});

test("every kind loaded has its tab enabled", async () => {
  const enabled = await page.$$eval("#tabs button:not([disabled])", (bs) => bs.map((b) => b.dataset.tab));
  assert.deepEqual(enabled, ["vectors", "ngram", "lm", "tagger", "classifier", "translator", "insight"]);
});

test("vectors: neighbours, analogy and the map", async () => {
  await openTab("vectors");
  await page.fill("#nn-word", "king");
  await page.fill("#nn-k", "8");
  await page.click("#nn-form button");
  await page.waitForSelector("#nn-out tr:nth-child(9)");
  const shown = await page.$$eval("#nn-out tr td:first-child", (tds) => tds.map((t) => t.textContent));
  const want = await api("/api/vectors/neighbors", { model: "shakespeare", word: "king", k: 8 });
  assert.deepEqual(shown, want.neighbors.map((n) => n.word));
  assert.ok(!shown.includes("king"));
  await page.click("#an-form button");
  await page.waitForSelector("#an-out tr:nth-child(2)");
  const answers = await page.$$eval("#an-out tr td:first-child", (tds) => tds.map((t) => t.textContent));
  const wantA = await api("/api/vectors/analogy", { model: "shakespeare", a: "man", b: "king", c: "woman", k: 5 });
  assert.deepEqual(answers, wantA.answers.map((n) => n.word));
  await page.click("#map-form button");
  await page.waitForSelector("#map-out svg");
  const labels = await page.$$eval("#map-out svg text.label", (ts) => ts.map((t) => t.textContent));
  assert.deepEqual(labels, ["king", "queen", "man", "woman", "prince", "princess"]);
  assert.equal(await page.$$eval("#map-out svg circle", (c) => c.length), 6);
  await shot("vectors");
});

test("n-gram: a sentence scored word by word", async () => {
  await openTab("ngram");
  await page.fill("#ng-text", "the king is dead");
  await page.click("#ng-form button");
  await page.waitForSelector("#ng-out table");
  const words = await page.$$eval("#ng-out td.word", (tds) => tds.map((t) => t.textContent));
  assert.deepEqual(words, ["the", "king", "is", "dead", "</s>"]);
  const want = await api("/api/ngram/score", { model: "shakespeare3", text: "the king is dead" });
  const probs = await page.$$eval("#ng-out tr td:nth-child(4)", (tds) => tds.map((t) => +t.textContent));
  want.sentences[0].words.forEach((w, i) => assert.ok(Math.abs(w.log10_prob - probs[i]) < 1e-4));
  assert.match(await page.textContent("#ng-out .total"), new RegExp(`Total: ${want.sentences[0].total.toFixed(4)}`));
  await shot("ngram");
});

test("language model: tokens with probabilities, alternatives on click", async () => {
  await openTab("lm");
  await page.fill("#lm-prompt", "the king");
  await page.fill("#lm-n", "12");
  await page.click("#lm-form button");
  await page.waitForSelector("#lm-out .tok.gen");
  assert.equal(await page.$$eval("#lm-out .tok.gen", (s) => s.length), 12);
  assert.deepEqual(await page.$$eval("#lm-out .tok.prompt", (s) => s.map((x) => x.textContent)), ["the", "king"]);
  const want = await api("/api/lm/generate", { model: "lm", prompt: "the king", max_tokens: 12, temperature: 1, seed: 1, greedy: false, alternatives: 5 });
  const shown = await page.$$eval("#lm-out .tok.gen", (s) => s.map((x) => x.firstChild.textContent));
  // The end of a line is shown as ⏎ (as the page's shownToken does).
  const visible = (t) => (t === "\n" || t === "" ? "⏎" : t === " " ? "␣" : t);
  assert.deepEqual(shown, want.tokens.map((t) => visible(t.token)));
  await page.click("#lm-out .tok.gen >> nth=2");
  await page.waitForSelector("#lm-alt tr:nth-child(6)");
  const alts = await page.$$eval("#lm-alt tr td:first-child", (tds) => tds.map((t) => t.textContent));
  assert.deepEqual(alts.map((a) => a.replace("  ← chosen", "")), want.tokens[2].top.map((t) => visible(t[0])));
  await shot("lm");
});

test("tagger: tags and entities coloured in the sentence", async () => {
  await openTab("tagger");
  await page.fill("#tg-text", "EU rejects German call to boycott British lamb .");
  await page.click("#tg-form button");
  await page.waitForSelector("#tg-out .tok");
  const tags = await page.$$eval("#tg-out .tok", (s) => s.map((x) => x.dataset.tag));
  assert.equal(tags.length, 9);
  const want = await api("/api/tagger/tag", { model: "ner", text: "EU rejects German call to boycott British lamb ." });
  assert.deepEqual(tags, want.tags);
  const ents = await page.$$eval("#tg-ents li", (l) => l.map((x) => x.textContent));
  assert.deepEqual(ents, want.entities.map((e) => `${e.text} ${e.type}`));
  await shot("tagger");
});

test("classifier: label, probabilities and attention over the words", async () => {
  await openTab("classifier");
  await page.fill("#cl-text", "the plot was not dull .");
  await page.click("#cl-form button");
  await page.waitForSelector("#cl-att .tok");
  const want = await api("/api/classifier/classify", { model: "sentiment", text: "the plot was not dull ." });
  assert.equal(await page.textContent("#cl-label-value"), want.label);
  assert.deepEqual(await page.$$eval("#cl-probs tr td:first-child", (t) => t.map((x) => x.textContent)), want.probs.map((p) => p.label));
  const weights = await page.$$eval("#cl-att .tok sub", (s) => s.map((x) => +x.textContent));
  assert.equal(weights.length, 6);
  assert.ok(Math.abs(weights.reduce((a, b) => a + b, 0) - 1) < 0.05, `attention sums to ${weights}`);
  await shot("classifier");
});

test("translator: translation and attention heat map", async () => {
  await openTab("translator");
  await page.fill("#tr-text", "der mann läuft .");
  await page.click("#tr-form button");
  await page.waitForSelector("#tr-att svg");
  const want = await api("/api/translator/translate", { model: "de-en", text: "der mann läuft .", beam: 1 });
  assert.equal(await page.textContent("#tr-out"), want.translation);
  const cells = await page.$$eval("#tr-att rect.cell", (r) => r.length);
  assert.equal(cells, want.output.length * want.source.length);
  assert.deepEqual(want.source, ["der", "mann", "läuft", "."]);
  await shot("translator");
});

test("insight: training curves and gradient flow", async () => {
  await openTab("insight");
  const opts = await page.$$eval("#tab-insight select option", (o) => o.map((x) => x.value));
  assert.ok(opts.includes("grad") && opts.includes("lm-insight"), opts.join(","));
  await page.selectOption("#tab-insight select", "grad");
  await page.waitForSelector('#in-out [data-kind="gradients"] path.series');
  // `firth lm gradients` wrote one curve per model, and the LSTM's cell as a curve of its own.
  assert.equal(await page.$$eval("#in-out path.series", (p) => p.length), 3);
  const legend = await page.$$eval("#in-out svg text", (t) => t.map((x) => x.textContent));
  for (const name of ["rnn-init", "lstm-init", "lstm-init-cell-c"]) assert.ok(legend.includes(name), legend.join("|"));
  await shot("insight-gradients");
  await page.selectOption("#tab-insight select", "lm-insight");
  await page.waitForSelector('#in-out [data-file="metrics.csv"] path.series');
  const names = await page.$$eval("#in-out svg text", (t) => t.map((x) => x.textContent));
  assert.ok(names.includes("train perplexity") && names.includes("valid perplexity"), names.join("|"));
  await shot("insight");
});

test("an error is shown, and the page keeps working", async () => {
  await openTab("vectors");
  await page.fill("#nn-word", "zzzzqqq");
  await page.click("#nn-form button");
  await page.waitForSelector("#error:not([hidden])");
  assert.match(await page.textContent("#error"), /"zzzzqqq" is not in the vocabulary of shakespeare/);
  await page.fill("#nn-word", "queen");
  await page.click("#nn-form button");
  await page.waitForSelector("#error", { state: "hidden" });
});
