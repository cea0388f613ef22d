/**
 * The HTML rendering of a stage report (`<run>.<stage>.report.html`): one self-contained file a
 * reviewer opens from a CI artifact. Inline CSS and inline SVG only — no script, no external
 * URL, and a Content-Security-Policy that forbids fetching anything — with a throughput chart,
 * the effect breakdown (stacked bars by ledger status), counts, errors, throttle episodes,
 * validations, fingerprints and dry-run previews.
 *
 * Every value that comes from data goes through `escapeHtml`, in text and in attributes.
 */
import type { EffectReport, Report } from '../../schema/report.types.js';
import { formatCount, formatElapsed, formatPercent, formatRate, truncate } from './format.js';
import { EFFECT_STATUSES } from './report.js';

/** Fill colour per ledger status (chart and legend). */
export const STATUS_COLORS: Record<(typeof EFFECT_STATUSES)[number], string> = {
  applied: '#2e7d32',
  suppressed: '#8d8d8d',
  'skipped-dup': '#1565c0',
  claimed: '#6a1b9a',
  failed: '#c62828',
  captured: '#00838f',
  reversed: '#ef6c00',
};

const MESSAGE_MAX = 500;
const PREVIEW_MAX = 50;

/** Escapes text for HTML element content and quoted attribute values. */
export function escapeHtml(s: string): string {
  return s.replace(/[&<>"'`]/g, (c) => `&#${c.charCodeAt(0)};`);
}
const h = escapeHtml;

export function renderReportHtml(r: Report): string {
  const title = `reprise report: ${r.plan} r${r.revision} · ${r.stage} · ${r.outcome}`;
  const body = [
    headerSection(r),
    r.abort ? `<div class="callout stop" role="alert"><strong>Stopped early (${h(r.abort.reason)}):</strong> ${h(r.abort.detail)}</div>` : '',
    countsSection(r),
    throughputSection(r),
    effectsSection(r),
    errorsSection(r),
    throttleSection(r),
    canarySection(r),
    validationsSection(r),
    fingerprintsSection(r),
    previewSection(r),
    `<footer>Report hash <code>${h(r.hash)}</code> · manifest <code>${h(r.manifest)}</code> · ${h(r.runId)}</footer>`,
  ].join('\n');
  return `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'; img-src data:; base-uri 'none'; form-action 'none'">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<title>${h(title)}</title>
<style>${CSS}</style>
</head>
<body>
<main>
${body}
</main>
</body>
</html>
`;
}

const CSS = `
:root{--fg:#1b1f24;--muted:#5b636e;--line:#d8dee4;--bg:#fff;--soft:#f6f8fa;--ok:#2e7d32;--bad:#c62828;--warn:#b26a00}
*{box-sizing:border-box}
body{margin:0;background:var(--bg);color:var(--fg);font:14px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,Helvetica,Arial,sans-serif}
main{max-width:1040px;margin:0 auto;padding:24px}
h1{font-size:22px;margin:0 0 4px}h2{font-size:17px;margin:28px 0 8px;padding-bottom:4px;border-bottom:1px solid var(--line)}h3{font-size:14px;margin:16px 0 4px}
code,pre{font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;font-size:12.5px}
code{background:var(--soft);padding:1px 4px;border-radius:4px;overflow-wrap:anywhere}
table{border-collapse:collapse;width:100%;margin:6px 0}
th,td{border:1px solid var(--line);padding:4px 8px;text-align:left;vertical-align:top}
th{background:var(--soft);font-weight:600}
td.n,th.n{text-align:right;font-variant-numeric:tabular-nums}
.sub{color:var(--muted)}
.badge{display:inline-block;padding:1px 8px;border-radius:10px;font-weight:600;font-size:12px;color:#fff}
.o-completed{background:var(--ok)}.o-aborted,.o-failed,.o-validation-failed{background:var(--bad)}.o-paused{background:var(--warn)}
.p-replay{background:#2e7d32}.p-suppress{background:#6b6b6b}.p-dedupe{background:#1565c0}
.callout{border-left:4px solid var(--warn);background:#fff8e6;padding:8px 12px;margin:12px 0}
.callout.stop{border-color:var(--bad);background:#fdecea}
.cards{display:flex;flex-wrap:wrap;gap:10px;margin:8px 0}
.card{border:1px solid var(--line);border-radius:6px;padding:8px 12px;min-width:120px}
.card b{display:block;font-size:20px;font-variant-numeric:tabular-nums}
.card span{color:var(--muted);font-size:12px}
.meta td:first-child{width:160px;color:var(--muted)}
#effects td:first-child code,#validations-table td:first-child code{white-space:nowrap;overflow-wrap:normal}
svg text{font:11px system-ui,sans-serif;fill:#5b636e}
.legend{display:flex;flex-wrap:wrap;gap:12px;margin:4px 0 8px;font-size:12px}
.legend i{display:inline-block;width:10px;height:10px;border-radius:2px;margin-right:4px;vertical-align:-1px}
pre.diff{background:var(--soft);padding:8px;overflow-x:auto;border-radius:6px;margin:4px 0}
pre.diff .add{color:#116329;background:#dafbe1;display:block}pre.diff .del{color:#82071e;background:#ffebe9;display:block}pre.diff .hunk{color:#0550ae;display:block}pre.diff .file{color:var(--muted);font-weight:600;display:block}
.pass{color:var(--ok);font-weight:600}.fail{color:var(--bad);font-weight:600}
footer{margin-top:32px;color:var(--muted);font-size:12px;border-top:1px solid var(--line);padding-top:8px}
`;

function headerSection(r: Report): string {
  const rows: Array<[string, string]> = [
    ['Run', `<code>${h(r.runId)}</code>`],
    ['Plan', `${h(r.plan)} revision ${r.revision}`],
    ['Manifest', `<code>${h(r.manifest)}</code>`],
    ['Started', h(r.startedAt)],
    ['Finished', h(r.finishedAt)],
    ['Duration', h(formatElapsed(r.durationMs))],
    ['Workers', String(r.workers)],
  ];
  return `<header>
<h1>${h(r.plan)} <span class="sub">r${r.revision}</span> · ${h(r.stage)} <span class="badge o-${h(r.outcome)}" id="outcome">${h(r.outcome)}</span></h1>
<table class="meta">${rows.map(([k, v]) => `<tr><td>${k}</td><td>${v}</td></tr>`).join('')}</table>
</header>`;
}

function countsSection(r: Report): string {
  const c = r.counts;
  const cards: Array<[string, number]> = [
    ['selected', c.selected],
    ['processed', c.processed],
    ['succeeded', c.succeeded],
    ['failed', c.failed],
    ['skipped (outside window)', c.skippedOutsideWindow],
    ['remaining', c.remaining],
  ];
  let guard = '<p class="sub">No selection count for this stage.</p>';
  if (r.count) {
    const { value, expect } = r.count;
    const inside = value >= expect.min && value <= expect.max;
    guard = `<p id="count-guard">Count guard: counted <b>${formatCount(value)}</b> at ${h(r.count.countedAt)}; expected ${formatCount(expect.min)} to ${formatCount(expect.max)} — <span class="${inside ? 'pass' : 'fail'}">${inside ? 'within bounds' : 'outside the bounds'}</span>.</p>`;
  }
  return `<section id="counts"><h2>Items</h2>
<div class="cards">${cards.map(([k, v]) => `<div class="card"><b>${formatCount(v)}</b><span>${k}</span></div>`).join('')}</div>
${guard}</section>`;
}

// ---------------------------------------------------------------------------------------------
// Throughput chart

function throughputSection(r: Report): string {
  const W = 960;
  const H = 240;
  const pad = { l: 56, r: 12, t: 12, b: 28 };
  const iw = W - pad.l - pad.r;
  const ih = H - pad.t - pad.b;
  const buckets = r.throughput;
  const width = buckets.length > 1 ? (buckets[1]?.t ?? 1) : Math.max(r.durationMs / 1000, 1);
  const span = Math.max(buckets.length * width, r.durationMs / 1000, 1);
  const rates = buckets.map((b) => b.items / width);
  const peak = Math.max(0, ...rates);
  const yMax = niceCeil(peak);
  const x = (sec: number): number => pad.l + (Math.min(sec, span) / span) * iw;
  const y = (v: number): number => pad.t + ih - (yMax > 0 ? (v / yMax) * ih : 0);
  const parts: string[] = [];
  // Throttle episodes shaded behind the data.
  const start = Date.parse(r.startedAt);
  for (const e of r.throttle.episodes) {
    const from = (Date.parse(e.from) - start) / 1000;
    const to = e.to === null ? span : (Date.parse(e.to) - start) / 1000;
    if (!Number.isFinite(from) || !Number.isFinite(to) || to < 0) continue;
    const x0 = x(Math.max(0, from));
    const x1 = Math.max(x(Math.max(0, to)), x0 + 1);
    parts.push(`<rect class="throttle" x="${fx(x0)}" y="${pad.t}" width="${fx(x1 - x0)}" height="${ih}" fill="#ffb300" fill-opacity="0.18"><title>throttled by ${h(e.probe)} (${e.value} &gt; ${e.max})</title></rect>`);
  }
  // Grid and axes.
  for (const f of [0, 0.5, 1]) {
    const yy = y(yMax * f);
    parts.push(`<line x1="${pad.l}" x2="${W - pad.r}" y1="${fx(yy)}" y2="${fx(yy)}" stroke="#d8dee4" stroke-width="1"/>`);
    parts.push(`<text x="${pad.l - 6}" y="${fx(yy + 4)}" text-anchor="end">${h(formatRate(yMax * f))}</text>`);
  }
  for (const f of [0, 0.25, 0.5, 0.75, 1]) {
    parts.push(`<text x="${fx(pad.l + f * iw)}" y="${H - 8}" text-anchor="${f === 0 ? 'start' : f === 1 ? 'end' : 'middle'}">${h(formatElapsed(f * span * 1000))}</text>`);
  }
  // Bars (one per bucket, hover shows the numbers) and the rate line over them.
  const bw = Math.max(1, iw / Math.max(buckets.length, span / width) - 1);
  buckets.forEach((b, i) => {
    const v = rates[i] ?? 0;
    const top = y(v);
    parts.push(`<rect class="bar" x="${fx(x(b.t))}" y="${fx(top)}" width="${fx(bw)}" height="${fx(pad.t + ih - top)}" fill="#90caf9"><title>${h(formatElapsed(b.t * 1000))}: ${formatCount(b.items)} items (${h(formatRate(v))}/s)</title></rect>`);
  });
  if (buckets.length > 0) {
    const pts = buckets.map((b, i) => `${fx(x(b.t + width / 2))},${fx(y(rates[i] ?? 0))}`).join(' ');
    parts.push(`<polyline id="throughput-line" points="${pts}" fill="none" stroke="#1565c0" stroke-width="2" stroke-linejoin="round"/>`);
  } else {
    parts.push(`<text x="${W / 2}" y="${H / 2}" text-anchor="middle">no items were processed</text>`);
  }
  parts.push(`<line x1="${pad.l}" x2="${pad.l}" y1="${pad.t}" y2="${pad.t + ih}" stroke="#5b636e"/>`);
  const avg = r.durationMs > 0 ? r.counts.processed / (r.durationMs / 1000) : 0;
  return `<section id="throughput"><h2>Throughput</h2>
<p class="sub">Items per second over ${width}s buckets; average ${h(formatRate(avg))}/s, peak ${h(formatRate(peak))}/s.${r.throttle.episodes.length ? ' Shaded: throttled by a protect probe.' : ''}</p>
<svg id="throughput-chart" role="img" aria-label="throughput over time" viewBox="0 0 ${W} ${H}" width="100%" preserveAspectRatio="xMidYMid meet" xmlns="http://www.w3.org/2000/svg">
${parts.join('\n')}
</svg></section>`;
}

// ---------------------------------------------------------------------------------------------
// Effects

function effectsSection(r: Report): string {
  if (r.effects.length === 0) return `<section id="effects-section"><h2>Side effects</h2><p class="sub">The plan declares no side effects.</p></section>`;
  const legend = `<div class="legend">${EFFECT_STATUSES.map((s) => `<span><i style="background:${STATUS_COLORS[s]}"></i>${s}</span>`).join('')}</div>`;
  const head = ['effect', 'kind', 'policy', 'delivery', 'live', ...EFFECT_STATUSES];
  const rows = r.effects
    .map(
      (e) =>
        `<tr><td><code>${h(e.name)}</code></td><td>${h(e.kind)}</td><td><span class="badge p-${h(e.policy)}">${h(e.policy)}</span></td><td>${h(e.delivery ?? '–')}</td><td>${h(e.live)}</td>${EFFECT_STATUSES.map((s) => `<td class="n">${formatCount(e.counts[s])}</td>`).join('')}</tr>`,
    )
    .join('\n');
  return `<section id="effects-section"><h2>Side effects</h2>
<p class="sub">Calls per effect by what the effects gate did with them (ledger status).</p>
${legend}
${effectBreakdown(r.effects)}
<table id="effects"><thead><tr>${head.map((c, i) => `<th${i >= 5 ? ' class="n"' : ''}>${c}</th>`).join('')}</tr></thead>
<tbody>
${rows}
</tbody></table></section>`;
}

function effectBreakdown(effects: EffectReport[]): string {
  const W = 960;
  const rowH = 26;
  const labelW = 220;
  const barW = W - labelW - 90;
  const H = effects.length * rowH + 8;
  const parts: string[] = [];
  effects.forEach((e, i) => {
    const total = EFFECT_STATUSES.reduce((n, s) => n + e.counts[s], 0);
    const yy = 4 + i * rowH;
    parts.push(`<text x="0" y="${yy + 16}">${h(truncate(e.name, 28))} (${h(e.policy)})</text>`);
    let x = labelW;
    if (total === 0) parts.push(`<rect x="${labelW}" y="${yy + 3}" width="${barW}" height="18" fill="#eef1f4"><title>${h(e.name)}: no calls</title></rect>`);
    for (const s of EFFECT_STATUSES) {
      const n = e.counts[s];
      if (n === 0 || total === 0) continue;
      const w = (n / total) * barW;
      parts.push(`<rect class="seg" data-status="${s}" x="${fx(x)}" y="${yy + 3}" width="${fx(Math.max(w, 0.5))}" height="18" fill="${STATUS_COLORS[s]}"><title>${h(e.name)}: ${formatCount(n)} ${s} (${formatPercent(n / total)})</title></rect>`);
      x += w;
    }
    parts.push(`<text x="${labelW + barW + 8}" y="${yy + 16}">${formatCount(total)} calls</text>`);
  });
  return `<svg id="effect-breakdown" role="img" aria-label="effect calls by status" viewBox="0 0 ${W} ${H}" width="100%" xmlns="http://www.w3.org/2000/svg">
${parts.join('\n')}
</svg>`;
}

// ---------------------------------------------------------------------------------------------
// Errors, throttle, canary, validations, fingerprints, previews

function errorsSection(r: Report): string {
  const { total, samples } = r.errors;
  if (total === 0) return `<section id="errors"><h2>Errors</h2><p class="sub">No item failed.</p></section>`;
  const rate = r.counts.processed ? ` (${formatPercent(total / r.counts.processed)} of processed)` : '';
  const rows = samples.map((s) => `<tr><td><code>${h(s.itemKey)}</code></td><td class="n">${s.attempt}</td><td>${h(s.at)}</td><td>${h(truncate(s.message, MESSAGE_MAX))}</td></tr>`).join('\n');
  return `<section id="errors"><h2>Errors</h2>
<p><b>${formatCount(total)}</b> item${total === 1 ? '' : 's'} failed${rate}.${samples.length ? ` Samples: ${samples.length} of ${formatCount(total)}, the first and the most recent.` : ''}</p>
${samples.length ? `<table><thead><tr><th>item</th><th class="n">attempt</th><th>at</th><th>message</th></tr></thead><tbody>\n${rows}\n</tbody></table>` : ''}</section>`;
}

function throttleSection(r: Report): string {
  const { throttledMs, episodes } = r.throttle;
  if (throttledMs === 0 && episodes.length === 0) return `<section id="throttle"><h2>Throttle</h2><p class="sub">Never throttled by a protect probe.</p></section>`;
  const share = r.durationMs > 0 ? ` (${formatPercent(throttledMs / r.durationMs)} of the stage)` : '';
  const rows = episodes.map((e) => `<tr><td><code>${h(e.probe)}</code></td><td class="n">${h(String(e.value))}</td><td class="n">${h(String(e.max))}</td><td>${h(e.from)}</td><td>${h(e.to ?? 'still throttled')}</td></tr>`).join('\n');
  return `<section id="throttle"><h2>Throttle</h2>
<p>Throttled for <b>${h(formatElapsed(throttledMs))}</b>${share} in ${episodes.length} episode${episodes.length === 1 ? '' : 's'}.</p>
${episodes.length ? `<table><thead><tr><th>probe</th><th class="n">value</th><th class="n">max</th><th>from</th><th>to</th></tr></thead><tbody>\n${rows}\n</tbody></table>` : ''}</section>`;
}

function canarySection(r: Report): string {
  if (!r.canary) return '';
  const keys = r.canary.keys.length ? r.canary.keys.map((k) => `<code>${h(k)}</code>`).join(', ') : '(none)';
  return `<section id="canary"><h2>Canary</h2><p>${formatCount(r.canary.size)} items picked by <code>${h(r.canary.pick)}</code>; first keys: ${keys}.</p></section>`;
}

function validationsSection(r: Report): string {
  if (r.validations.length === 0) {
    return r.stage === 'canary' ? `<section id="validations"><h2>Validations</h2><p class="sub">The plan declares no validation queries.</p></section>` : '';
  }
  const rows = r.validations
    .map((v) => `<tr><td><code>${h(v.name)}</code></td><td class="${v.ok ? 'pass' : 'fail'}">${v.ok ? 'pass' : 'fail'}</td><td>${v.detail === null ? '' : h(truncate(v.detail, MESSAGE_MAX))}</td></tr>`)
    .join('\n');
  return `<section id="validations"><h2>Validations</h2>
<table id="validations-table"><thead><tr><th>validation</th><th>result</th><th>detail</th></tr></thead><tbody>
${rows}
</tbody></table></section>`;
}

function fingerprintsSection(r: Report): string {
  const entries = Object.entries(r.fingerprints).filter((e): e is [string, NonNullable<(typeof e)[1]>] => e[1] !== undefined);
  if (entries.length === 0) return '';
  const rows = entries
    .map(([name, f]) =>
      f.kind === 'postgres'
        ? `<tr><td><code>${h(name)}</code></td><td>postgres</td><td>system_identifier <code>${h(f.systemIdentifier)}</code>, database <code>${h(f.database)}</code></td></tr>`
        : `<tr><td><code>${h(name)}</code></td><td>redis</td><td>run_id <code>${h(f.runId)}</code></td></tr>`,
    )
    .join('\n');
  return `<section id="fingerprints"><h2>Target fingerprints</h2>
<p class="sub">An approval that binds this report is valid only against these servers.</p>
<table><thead><tr><th>connection</th><th>kind</th><th>identity</th></tr></thead><tbody>
${rows}
</tbody></table></section>`;
}

function previewSection(r: Report): string {
  if (r.preview.length === 0) return '';
  const items = r.preview.slice(0, PREVIEW_MAX).map((p) => {
    const body = p.diff
      ? `<pre class="diff">${p.diff
          .replace(/\n$/, '')
          .split('\n')
          .map((l, i) => {
            const cls = i < 2 && /^(---|\+\+\+) /.test(l) ? 'file' : l.startsWith('@@') ? 'hunk' : l.startsWith('+') ? 'add' : l.startsWith('-') ? 'del' : '';
            return cls ? `<span class="${cls}">${h(l)}</span>` : `${h(l)}\n`;
          })
          .join('')}</pre>`
      : `<p class="sub">${p.before === null || p.after === null ? `Preview rows could not be read${p.note ? `: ${h(p.note)}` : ''}.` : 'No change.'}</p>`;
    const estimated = p.method === 'estimated' ? `<p class="sub">Estimated: ${h(p.note ?? 'the target refused the statement')}; the arguments were laid over the columns of the same names.</p>\n` : '';
    return `<h3><code>${h(p.effect)}</code> · item <code>${h(p.itemKey)}</code></h3>
<p class="sub">Arguments: <code>${h(JSON.stringify(p.args))}</code></p>
${estimated}${body}`;
  });
  const more = r.preview.length > PREVIEW_MAX ? `<p class="sub">…and ${r.preview.length - PREVIEW_MAX} more previews in the JSON report.</p>` : '';
  return `<section id="preview"><h2>Preview of sql effects</h2>
<p class="sub">Rows the <code>preview</code> query returns before (−) and after (+) each effect; nothing was committed.</p>
${items.join('\n')}
${more}</section>`;
}

// ---------------------------------------------------------------------------------------------

function fx(n: number): string {
  return Number.isFinite(n) ? String(Math.round(n * 10) / 10) : '0';
}

/** A round axis maximum at or above `v` (1, 2, 5 × 10^k). */
function niceCeil(v: number): number {
  if (!(v > 0)) return 1;
  const p = 10 ** Math.floor(Math.log10(v));
  for (const m of [1, 2, 5, 10]) if (v <= m * p) return m * p;
  return 10 * p;
}
