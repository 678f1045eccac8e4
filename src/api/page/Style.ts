/**
 * The operator page's styles: system fonts, colours of at least 4.5:1 against their backgrounds, a focus
 * ring on everything that takes the keyboard, and a dark scheme when the system asks for one.
 */
export const css = String.raw`
:root {
  --bg: #f6f7f9; --card: #ffffff; --text: #17191c; --muted: #4a5260; --line: #d5d9e0;
  --accent: #1449c4; --accent-text: #ffffff; --danger: #a3191f; --ok: #17663a; --warn: #8a4b00;
  --bar: #1449c4; --bar-bg: #e3e7ee; --focus: #b3340b;
  color-scheme: light dark;
}
@media (prefers-color-scheme: dark) {
  :root {
    --bg: #121417; --card: #1b1e23; --text: #eceff3; --muted: #b4bcc8; --line: #353b45;
    --accent: #8fb3ff; --accent-text: #0b1220; --danger: #ff9a9e; --ok: #7fd6a0; --warn: #ffc46b;
    --bar: #8fb3ff; --bar-bg: #2c323b; --focus: #ffb27f;
  }
}
* { box-sizing: border-box; }
body { margin: 0; background: var(--bg); color: var(--text); font: 15px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; }
a { color: var(--accent); }
:focus-visible { outline: 3px solid var(--focus); outline-offset: 2px; }
.skip { position: absolute; left: -999px; top: 0; background: var(--card); padding: .5rem 1rem; }
.skip:focus { left: 1rem; }
.sr-only { position: absolute; width: 1px; height: 1px; overflow: hidden; clip-path: inset(50%); white-space: nowrap; }
.top { display: flex; align-items: center; gap: 1rem; padding: .6rem 1.2rem; border-bottom: 1px solid var(--line); background: var(--card); }
.top h1 { font-size: 1.15rem; margin: 0; flex: 1; }
.top h1 a { color: inherit; text-decoration: none; }
.sub { color: var(--muted); font-weight: 400; }
.who { margin: 0; color: var(--muted); }
main { max-width: 1200px; margin: 0 auto; padding: 1rem 1.2rem 3rem; }
main:focus { outline: none; }
.card { background: var(--card); border: 1px solid var(--line); border-radius: 8px; padding: 1rem 1.2rem; margin: 0 0 1rem; }
.card h2, .card h3, .card h4 { margin: 0 0 .6rem; font-size: 1.05rem; }
.narrow { max-width: 28rem; margin: 3rem auto; }
label { display: block; font-weight: 600; margin: .4rem 0 .25rem; }
input, textarea, select { width: 100%; font: inherit; color: var(--text); background: var(--bg); border: 1px solid var(--muted); border-radius: 6px; padding: .45rem .55rem; }
textarea { resize: vertical; }
button { font: inherit; border-radius: 6px; border: 1px solid var(--accent); background: var(--accent); color: var(--accent-text); padding: .4rem .9rem; margin-top: .5rem; cursor: pointer; }
button.quiet { background: transparent; color: var(--accent); margin: 0; }
button.danger { background: transparent; border-color: var(--danger); color: var(--danger); }
button:disabled { opacity: .55; cursor: not-allowed; }
.help { color: var(--muted); font-size: .9rem; margin: .3rem 0; }
.error { color: var(--danger); min-height: 1.2em; margin: .4rem 0 0; }
.notice { max-width: 1200px; margin: .8rem auto 0; padding: .6rem 1rem; border: 1px solid var(--danger); color: var(--danger); background: var(--card); border-radius: 6px; }
.scroll { overflow-x: auto; }
table { border-collapse: collapse; width: 100%; }
th, td { text-align: left; padding: .35rem .5rem; border-bottom: 1px solid var(--line); vertical-align: top; }
th { color: var(--muted); font-weight: 600; font-size: .9rem; }
.num { text-align: right; font-variant-numeric: tabular-nums; }
td.clip { max-width: 28rem; overflow: hidden; text-overflow: ellipsis; white-space: nowrap; }
.empty { color: var(--muted); }
.status { font-weight: 600; }
.s-completed, .s-succeeded { color: var(--ok); }
.s-failed, .s-cancelled, .s-corrupt, .s-interrupted { color: var(--danger); }
.s-partial, .s-halted, .s-draft { color: var(--warn); }
.s-running, .s-scheduled, .s-approved { color: var(--accent); }
.goal-result { margin-top: .8rem; }
.goal-result pre, .answer { white-space: pre-wrap; word-break: break-word; background: var(--bg); border: 1px solid var(--line); border-radius: 6px; padding: .6rem; margin: .4rem 0; }
.answer { min-height: 3rem; max-height: 28rem; overflow: auto; }
.candidates { list-style: none; padding: 0; margin: .4rem 0; }
.candidates li { display: flex; gap: .8rem; align-items: baseline; border-bottom: 1px solid var(--line); padding: .3rem 0; }
.candidates li span { flex: 1; }
.candidates button { margin: 0; }
.actions { display: flex; gap: .6rem; margin: 0 0 1rem; }
.actions button { margin: 0; }
.status-line { color: var(--muted); margin: 0 0 .6rem; }
.columns { display: grid; grid-template-columns: repeat(auto-fit, minmax(22rem, 1fr)); gap: 1rem; }
.columns > .card { margin: 0 0 1rem; }
.budget .axis { margin: 0 0 .7rem; }
.budget .axis label { display: flex; justify-content: space-between; gap: 1rem; font-weight: 600; margin: 0 0 .2rem; }
.budget .axis .figures { font-weight: 400; color: var(--muted); font-variant-numeric: tabular-nums; }
.budget .eta { color: var(--muted); font-size: .9rem; margin: .15rem 0 0; }
progress { width: 100%; height: 1rem; appearance: none; border: 1px solid var(--muted); border-radius: 4px; background: var(--bar-bg); overflow: hidden; }
progress::-webkit-progress-bar { background: var(--bar-bg); }
progress::-webkit-progress-value { background: var(--bar); }
progress::-moz-progress-bar { background: var(--bar); }
.criteria { list-style: none; padding: 0; margin: 0; }
.criteria li { padding: .25rem 0 .25rem 1.8rem; position: relative; }
.criteria li::before { content: "○"; position: absolute; left: .2rem; color: var(--muted); font-weight: 700; }
.criteria li.met::before { content: "✓"; color: var(--ok); }
.plain { list-style: none; padding: 0; margin: 0; }
.plain li { padding: .2rem 0; }
.events { font: .85rem/1.4 ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; max-height: 22rem; overflow: auto; margin: 0; padding-left: 3.2rem; }
.badge { font-size: .8rem; font-weight: 400; color: var(--muted); border: 1px solid var(--line); border-radius: 999px; padding: 0 .5rem; margin-left: .4rem; }
.charts { display: grid; grid-template-columns: repeat(auto-fit, minmax(22rem, 1fr)); gap: 1rem; }
figure { margin: 0; }
figcaption { font-weight: 600; margin-bottom: .3rem; }
.chart svg, .graph svg { width: 100%; height: auto; display: block; }
.chart text, .graph text { fill: var(--text); font: 12px system-ui, sans-serif; }
.chart .axis-line { stroke: var(--muted); }
.chart .grid { stroke: var(--line); }
.chart .point { fill: var(--bar); }
.chart .bar { fill: var(--bar); }
.chart .muted { fill: var(--muted); }
.graph .edge { stroke: var(--muted); stroke-width: 1.5; fill: none; }
.graph .arrow { fill: var(--muted); }
.graph .node rect { fill: var(--card); stroke: var(--muted); stroke-width: 2; }
.graph .node.n-running rect { stroke: var(--accent); stroke-width: 3; }
.graph .node.n-succeeded rect { stroke: var(--ok); stroke-width: 3; }
.graph .node.n-failed rect { stroke: var(--danger); stroke-width: 3; }
.graph .node.n-skipped rect { stroke-dasharray: 4 3; }
.graph .node .state { fill: var(--muted); font-size: 11px; }
.graph-list { display: flex; flex-wrap: wrap; gap: .3rem 1.2rem; list-style: none; padding: 0; margin: .6rem 0 0; font-size: .9rem; }
details summary { cursor: pointer; color: var(--accent); margin-top: .4rem; }
.nav { display: flex; gap: 1rem; }
td.id { white-space: nowrap; }
.report th[scope=row] { color: var(--text); }
.verdict { font-weight: 600; }
.v-promotable { color: var(--ok); }
.v-candidate { color: var(--warn); }
.chart .curve { fill: none; stroke-width: 2.5; }
.chart .curve.before { stroke: var(--muted); }
.chart .curve.after { stroke: var(--ok); }
.chart .point.before { fill: var(--muted); }
.chart .point.after { fill: var(--ok); }
.chart .marker { stroke: var(--accent); stroke-width: 1.5; stroke-dasharray: 4 3; }
.chart .marker.rolled_back, .chart .marker.replaced { stroke: var(--danger); }
.chart .marker-label { fill: var(--accent); font-size: 11px; }
.chart .marker-label.rolled_back, .chart .marker-label.replaced { fill: var(--danger); }
`
