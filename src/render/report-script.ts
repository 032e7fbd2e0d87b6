// Script of `vfiokit report` (inline in the page). Reads the page's JSON data
// part; search/filter, details on click, the "only what I can pass" filter and
// the theme toggle. Builds every element with textContent (never HTML from data).

export const REPORT_SCRIPT = `
(function () {
  'use strict';
  var data = JSON.parse(document.getElementById('vfiokit-data').textContent);
  var byAddr = {};
  data.devices.forEach(function (d) { byAddr[d.address] = d; });
  var groups = {};
  data.groups.forEach(function (g) { groups[g.id] = g; });
  var candidateByAddr = {};
  data.candidates.forEach(function (c) { candidateByAddr[c.address] = c; });
  var rows = Array.prototype.slice.call(document.querySelectorAll('#devices tbody tr'));
  var nodes = {};
  Array.prototype.forEach.call(document.querySelectorAll('#topology .node.dev'), function (n) { nodes[n.getAttribute('data-address')] = n; });
  var cards = Array.prototype.slice.call(document.querySelectorAll('#pass .candidate'));
  var search = document.getElementById('search');
  var only = document.getElementById('only-candidates');
  var count = document.getElementById('count');
  var toneLabel = { isolated: 'isolated', own: "device's own functions only", shares: 'shares its group', none: 'no IOMMU group' };

  function filter() {
    var q = search.value.trim().toLowerCase();
    var onlyC = only.checked;
    var shown = 0;
    rows.forEach(function (r) {
      var hit = (!q || r.getAttribute('data-search').indexOf(q) !== -1) && (!onlyC || r.getAttribute('data-candidate') === '1');
      r.classList.toggle('hidden', !hit);
      var n = nodes[r.getAttribute('data-address')];
      if (n) { n.classList.toggle('dim', !hit && (Boolean(q) || onlyC)); n.classList.toggle('match', hit && Boolean(q)); }
      if (hit) shown++;
    });
    cards.forEach(function (c) {
      var d = byAddr[c.getAttribute('data-address')];
      var hit = !q || (d && rowFor(d.address).getAttribute('data-search').indexOf(q) !== -1);
      c.classList.toggle('hidden', !hit);
    });
    count.textContent = shown + ' of ' + rows.length + ' functions';
  }
  var rowIndex = {};
  rows.forEach(function (r) { rowIndex[r.getAttribute('data-address')] = r; });
  function rowFor(a) { return rowIndex[a]; }

  function add(dl, term, value) {
    if (value === null || value === undefined || value === '') return;
    var dt = document.createElement('dt'); dt.textContent = term;
    var dd = document.createElement('dd'); dd.textContent = String(value);
    dl.appendChild(dt); dl.appendChild(dd);
  }
  var selected = null;
  function show(addr) {
    var d = byAddr[addr];
    if (!d) return;
    if (selected) { var o = nodes[selected]; if (o) o.classList.remove('selected'); var orow = rowFor(selected); if (orow) orow.classList.remove('selected'); }
    selected = addr;
    if (nodes[addr]) nodes[addr].classList.add('selected');
    rowFor(addr).classList.add('selected');
    var body = document.getElementById('details-body');
    while (body.firstChild) body.removeChild(body.firstChild);
    var h = document.createElement('h2'); h.textContent = d.short + ' ' + d.name; body.appendChild(h);
    var dl = document.createElement('dl');
    var g = d.group === null ? null : groups[d.group];
    add(dl, 'address', d.address);
    add(dl, 'IDs', d.ids + (d.subsystem ? ' (subsystem ' + d.subsystem + ')' : ''));
    add(dl, 'class', (d.className ? d.className + ' ' : '') + '[' + d.class + ']');
    add(dl, 'kind', d.kind);
    add(dl, 'driver', d.driver === null ? 'none' : d.driver + (d.vfio ? ' (ready for a VM)' : ''));
    add(dl, 'IOMMU group', d.group === null ? 'none' : d.group + ': ' + toneLabel[d.tone]);
    if (g) add(dl, 'why', g.explanation);
    if (g) add(dl, 'group members', g.devices.map(function (a) { return byAddr[a] ? byAddr[a].short : a; }).join(', '));
    add(dl, 'host needs it', d.hostNeeds.length ? d.hostNeeds.join(', ') : 'no');
    add(dl, 'boot VGA', d.bootVga ? 'yes' : 'no');
    add(dl, 'reset methods', d.resetMethods ? (d.resetMethods.length ? d.resetMethods.join(', ') : 'none') : 'unknown');
    add(dl, 'FLR', d.flr === null ? 'unknown' : d.flr ? 'yes' : 'no');
    add(dl, 'link', d.link);
    add(dl, 'NUMA node', d.numaNode === null || d.numaNode < 0 ? 'none' : d.numaNode);
    add(dl, 'option ROM', d.rom ? 'yes' : 'no');
    add(dl, 'SR-IOV', d.sriov);
    add(dl, 'virtual function of', d.physfn);
    add(dl, 'upstream bridge', d.parent);
    body.appendChild(dl);
    var c = candidateByAddr[addr];
    if (c) {
      if (c.note) { var p = document.createElement('p'); p.className = 'note'; p.textContent = c.note; body.appendChild(p); }
      if (c.commands.length) { var pre = document.createElement('pre'); pre.className = 'cmd'; pre.textContent = c.commands.join('\\n'); body.appendChild(pre); }
    }
    document.getElementById('details').hidden = false;
  }
  function hide() {
    document.getElementById('details').hidden = true;
  }
  rows.forEach(function (r) {
    r.addEventListener('click', function () { show(r.getAttribute('data-address')); });
    r.addEventListener('keydown', function (e) { if (e.key === 'Enter') show(r.getAttribute('data-address')); });
  });
  Object.keys(nodes).forEach(function (a) {
    nodes[a].addEventListener('click', function () { show(a); });
    nodes[a].addEventListener('keydown', function (e) { if (e.key === 'Enter' || e.key === ' ') { e.preventDefault(); show(a); } });
  });
  cards.forEach(function (c) { c.addEventListener('click', function (e) { if (!window.getSelection || String(window.getSelection()) === '') show(c.getAttribute('data-address')); }); });
  document.getElementById('close-details').addEventListener('click', hide);
  document.addEventListener('keydown', function (e) { if (e.key === 'Escape') hide(); });
  search.addEventListener('input', filter);
  only.addEventListener('change', filter);

  var themes = ['auto', 'dark', 'light'];
  var themeBtn = document.getElementById('theme');
  function setTheme(t) {
    if (t === 'auto') document.documentElement.removeAttribute('data-theme');
    else document.documentElement.setAttribute('data-theme', t);
    themeBtn.textContent = 'theme: ' + t;
    try { localStorage.setItem('vfiokit-theme', t); } catch (e) { /* file:// without storage */ }
  }
  var saved = null;
  try { saved = localStorage.getItem('vfiokit-theme'); } catch (e) { saved = null; }
  if (saved && themes.indexOf(saved) !== -1) setTheme(saved);
  themeBtn.addEventListener('click', function () {
    var cur = document.documentElement.getAttribute('data-theme') || 'auto';
    setTheme(themes[(themes.indexOf(cur) + 1) % themes.length]);
  });
})();
`;
