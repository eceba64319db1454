// Node harness for the widget's Markdown (run by tests/unit/test_widget_markdown.py):
//   node markdown_check.js <widget.js> <oracle.js> differential <count> <seed>
//   node markdown_check.js <widget.js> <oracle.js> render <file with the text>
// Loads the "safe markdown (DOM)" part of widget.js with a minimal fake DOM (it only uses
// createElement, createTextNode, appendChild and a few properties), and prints JSON.
'use strict';
const fs = require('fs');

function fakeDocument() {
  function node(tag) {
    return {
      tag, children: [], className: '', textContent: null,
      appendChild(c) { this.children.push(c); return c; },
    };
  }
  return {
    createElement: (tag) => node(tag),
    createTextNode: (text) => ({ text }),
  };
}

// A canonical string for a rendered tree: adjacent text nodes merged (the old and the new
// code may split a run of plain text differently; what the reader sees is the same).
function serialise(n) {
  if (n.text !== undefined) return { t: n.text };
  const kids = [];
  for (const c of n.children) {
    const s = serialise(c);
    const last = kids[kids.length - 1];
    if (s.t !== undefined && last && last.t !== undefined) last.t += s.t;
    else kids.push(s);
  }
  const out = { tag: n.tag, kids };
  if (n.className) out.cls = n.className;
  if (n.textContent !== null && n.textContent !== undefined) out.text = n.textContent;
  for (const k of ['href', 'target', 'rel', 'start']) if (n[k] !== undefined) out[k] = n[k];
  return out;
}

function load(source) {
  const D = fakeDocument();
  // eslint-disable-next-line no-new-func
  const make = new Function('D', source + '\nreturn markdown;');
  const markdown = make(D);
  return (text) => {
    const root = D.createElement('div');
    markdown(text, root);
    return JSON.stringify(serialise(root));
  };
}

function section(widget) {
  const a = widget.indexOf('/* ------------------------------------------------- safe markdown (DOM) */');
  const b = widget.indexOf('/* ---------------------------------------------------------------- CSS */');
  if (a < 0 || b < 0) throw new Error('markers not found in widget.js');
  return widget.slice(a, b);
}

// A small deterministic PRNG (mulberry32), so a failure names a reproducible seed.
function rng(seed) {
  return function () {
    seed |= 0; seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
const PIECES = ['a', 'b', ' ', '_', '__', '*', '**', '`', '``', '[', ']', '(', ')', '\\', '\n',
  '\n\n', 'x_y', 'http://e.x/p', 'https://a.b', 'mailto:m@x.y', '.', ',', '"', '<', '>', '#',
  '- ', '1. ', '> ', '~', '|', '!', '](', 'h', 'm', '\t', '\u00a0', 'é', '😀'];

const [widgetPath, oraclePath, mode, arg, seedArg] = process.argv.slice(2);
const fresh = load(section(fs.readFileSync(widgetPath, 'utf8')));
if (mode === 'differential') {
  const old = load(fs.readFileSync(oraclePath, 'utf8'));
  const random = rng(Number(seedArg));
  const count = Number(arg);
  for (let n = 0; n < count; n++) {
    let text = '';
    const len = 1 + Math.floor(random() * 24);
    for (let k = 0; k < len; k++) text += PIECES[Math.floor(random() * PIECES.length)];
    const want = old(text), got = fresh(text);
    if (want !== got) {
      console.log(JSON.stringify({ ok: false, text, want, got }));
      process.exit(1);
    }
  }
  console.log(JSON.stringify({ ok: true, count }));
} else if (mode === 'render') {
  const text = fs.readFileSync(arg, 'utf8');
  const out = fresh(text);
  console.log(JSON.stringify({ ok: true, chars: text.length, rendered: out.length }));
} else {
  throw new Error('unknown mode ' + mode);
}
