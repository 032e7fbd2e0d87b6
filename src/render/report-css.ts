// Stylesheet of `vfiokit report` (inline in the page; no external fonts or files).
// Light and dark themes follow prefers-color-scheme unless the page's toggle
// sets <html data-theme>. Group colours are one custom property per verdict
// tone (--isolated, --own, --shares, --none) used by the SVG, the table and the legend.

export const REPORT_CSS = `
:root{color-scheme:light;--bg:#ffffff;--fg:#1b1f24;--muted:#5b6470;--line:#c9d0d8;--panel:#f4f6f8;--accent:#0b5cad;
--isolated:#d6f0d9;--isolated-edge:#2e7d32;--own:#d8e6fb;--own-edge:#1f5fbf;--shares:#fde0c2;--shares-edge:#b85400;--none:#e4e4e4;--none-edge:#6f6f6f;
--vfio:#6a1b9a;--needed:#8a6d00;--node:#ffffff}
:root[data-theme=dark]{color-scheme:dark;--bg:#14171b;--fg:#e6e9ed;--muted:#9aa4af;--line:#3a424c;--panel:#1d2227;--accent:#6fb1ff;
--isolated:#1f3d24;--isolated-edge:#6fcf7a;--own:#1c2f4d;--own-edge:#7fb0ff;--shares:#4a2e12;--shares-edge:#ffad5c;--none:#2c2c2c;--none-edge:#a0a0a0;
--vfio:#d59cff;--needed:#f0cf5a;--node:#1d2227}
@media (prefers-color-scheme: dark){:root:not([data-theme=light]){color-scheme:dark;--bg:#14171b;--fg:#e6e9ed;--muted:#9aa4af;--line:#3a424c;--panel:#1d2227;--accent:#6fb1ff;
--isolated:#1f3d24;--isolated-edge:#6fcf7a;--own:#1c2f4d;--own-edge:#7fb0ff;--shares:#4a2e12;--shares-edge:#ffad5c;--none:#2c2c2c;--none-edge:#a0a0a0;
--vfio:#d59cff;--needed:#f0cf5a;--node:#1d2227}}
*{box-sizing:border-box}
body{margin:0;background:var(--bg);color:var(--fg);font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,"DejaVu Sans",sans-serif}
header{position:sticky;top:0;z-index:2;background:var(--bg);border-bottom:1px solid var(--line);padding:.6em 1em}
h1{font-size:1.25em;margin:0 0 .2em}h2{font-size:1.1em;margin:1.2em 0 .5em}h3{font-size:1em;margin:0 0 .3em}
.meta,.muted{color:var(--muted)}
.controls{display:flex;flex-wrap:wrap;gap:1em;align-items:center;margin:.4em 0}
input[type=search]{width:22em;max-width:70vw;padding:.3em .5em;border:1px solid var(--line);border-radius:4px;background:var(--bg);color:var(--fg)}
button{font:inherit;color:var(--fg);background:var(--panel);border:1px solid var(--line);border-radius:4px;padding:.2em .6em;cursor:pointer}
.legend{display:flex;flex-wrap:wrap;gap:1.2em;list-style:none;margin:.3em 0 0;padding:0;color:var(--muted)}
main{padding:0 1em 2em}
/* Large hosts: the browser lays out only what is near the viewport (kept searchable with find-in-page). */
main>section{content-visibility:auto;contain-intrinsic-size:auto 1200px}
.candidate{content-visibility:auto;contain-intrinsic-size:auto 130px}
.swatch{display:inline-block;width:.9em;height:.9em;border-radius:2px;margin-right:.35em;vertical-align:-.1em;border:1px solid}
.swatch.tone-isolated{background:var(--isolated);border-color:var(--isolated-edge)}
.swatch.tone-own{background:var(--own);border-color:var(--own-edge)}
.swatch.tone-shares{background:var(--shares);border-color:var(--shares-edge)}
.swatch.tone-none{background:var(--none);border-color:var(--none-edge)}
.badge{display:inline-block;font-size:.8em;padding:0 .4em;border-radius:3px;border:1px solid;margin-right:.3em;white-space:nowrap}
.badge.vfio{color:var(--vfio);border-color:var(--vfio);font-weight:600}
.badge.boot,.badge.needed{color:var(--needed);border-color:var(--needed)}
.svgwrap{overflow:auto;max-height:80vh;border:1px solid var(--line);border-radius:6px;background:var(--bg)}
#topology text{font:12px ui-monospace,"DejaVu Sans Mono",monospace;fill:var(--fg);pointer-events:none}
#topology .glabel{fill:var(--muted)}
.region rect{stroke-width:1.5}
.region.tone-isolated rect{fill:var(--isolated);stroke:var(--isolated-edge)}
.region.tone-own rect{fill:var(--own);stroke:var(--own-edge)}
.region.tone-shares rect{fill:var(--shares);stroke:var(--shares-edge)}
.region.tone-none rect{fill:var(--none);stroke:var(--none-edge)}
.links{fill:none;stroke:var(--muted);stroke-width:1}
.node rect{fill:var(--node);stroke:var(--line)}
.node.rc rect{fill:var(--panel);stroke:var(--muted)}
.node.dev{cursor:pointer}
.node.dev.tone-isolated rect{stroke:var(--isolated-edge)}.node.dev.tone-own rect{stroke:var(--own-edge)}
.node.dev.tone-shares rect{stroke:var(--shares-edge)}.node.dev.tone-none rect{stroke:var(--none-edge)}
.node.vfio rect{stroke:var(--vfio);stroke-width:2.5}
.node.needed rect{stroke-dasharray:5 3}
.node.bridge text{fill:var(--muted)}
.node.match rect{stroke:var(--accent);stroke-width:3}
.node.dim{opacity:.25}
.node.selected rect{stroke:var(--accent);stroke-width:3;fill:var(--panel)}
.node:focus{outline:none}.node:focus rect{stroke:var(--accent);stroke-width:3}
table{border-collapse:collapse;width:100%;margin:.3em 0}
caption{text-align:left;color:var(--muted);padding:.2em 0}
th,td{border-bottom:1px solid var(--line);padding:.25em .4em;text-align:left;vertical-align:top}
th{background:var(--panel);position:sticky;top:0}
#devices tr.dev{cursor:pointer}
#devices tr.dev:hover,#devices tr.selected{background:var(--panel)}
#devices tr.bridge td.name{color:var(--muted)}
#devices tr.needed td.name{color:var(--needed)}
#devices td.addr{font-family:ui-monospace,"DejaVu Sans Mono",monospace;white-space:nowrap}
#devices td.group{white-space:nowrap}
#devices .verdict{color:var(--muted);font-size:.85em}
td.is-vfio{color:var(--vfio);font-weight:700}
button.open{font-family:inherit;padding:0 .3em;background:none;border:none;color:var(--accent);text-decoration:underline}
.candidate{border:1px solid var(--line);border-left:6px solid var(--none-edge);border-radius:6px;padding:.5em .8em;margin:.5em 0;background:var(--bg)}
.candidate.tone-isolated{border-left-color:var(--isolated-edge)}.candidate.tone-own{border-left-color:var(--own-edge)}.candidate.tone-shares{border-left-color:var(--shares-edge)}
.candidate.needed{opacity:.75}
.candidate p{margin:.2em 0}
.note{color:var(--needed)}
pre.cmd{background:var(--panel);padding:.4em .6em;border-radius:4px;overflow:auto;margin:.3em 0;user-select:all}
.ready{color:var(--isolated-edge);font-weight:600}.not-ready{color:var(--shares-edge);font-weight:600}
tr.check-fail .mark{color:var(--shares-edge);font-weight:700}tr.check-warn .mark{color:var(--needed);font-weight:700}tr.check-ok .mark{color:var(--isolated-edge)}
.hidden{display:none}
#details{position:fixed;right:1em;top:6em;bottom:1em;width:min(30em,90vw);overflow:auto;z-index:3;background:var(--bg);border:1px solid var(--line);border-radius:8px;box-shadow:0 4px 24px rgba(0,0,0,.25);padding:.8em 1em}
#details dl{display:grid;grid-template-columns:max-content 1fr;gap:.2em .8em;margin:.5em 0}
#details dt{color:var(--muted)}#details dd{margin:0;overflow-wrap:anywhere}
#close-details{float:right}
@media print{
 :root,:root[data-theme=dark]{color-scheme:light;--bg:#fff;--fg:#000;--muted:#444;--line:#999;--panel:#eee;--node:#fff;
 --isolated:#dff2e1;--isolated-edge:#1b5e20;--own:#e1ebfa;--own-edge:#0d47a1;--shares:#fde6cf;--shares-edge:#8a3d00;--none:#eee;--none-edge:#555;--vfio:#4a148c;--needed:#5d4a00}
 main>section,.candidate{content-visibility:visible}
 header{position:static;border:none}.controls,#details{display:none}
 .svgwrap{max-height:none;overflow:visible;border:none}
 #topology{max-width:100%;height:auto}
 tr,article{break-inside:avoid}th{position:static}
 *{-webkit-print-color-adjust:exact;print-color-adjust:exact}
}
`;
