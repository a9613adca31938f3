// sandmap's run viewer: live counters from server-sent events, clone table pages fetched in
// place, logs loaded on demand, and the action buttons. No framework: the server renders every
// page, and this script only changes text (textContent), classes and fetched fragments that the
// server escaped.
'use strict';

// What went wrong in the page, for people and the browser tests to read: script errors, failed
// promises and anything the Content-Security-Policy blocked.
window.__sandmapErrors = [];
window.addEventListener('error', (e) => window.__sandmapErrors.push(String(e.message || e)));
window.addEventListener('unhandledrejection', (e) => window.__sandmapErrors.push('unhandled: ' + e.reason));
document.addEventListener('securitypolicyviolation', (e) =>
  window.__sandmapErrors.push('csp: ' + e.violatedDirective + ' ' + e.blockedURI));

// A fetch that may fail (the server restarting): null then, never an unhandled rejection.
async function fetchText(url) {
  try {
    const res = await fetch(url, { headers: { Accept: 'text/html' } });
    return res.ok ? await res.text() : null;
  } catch (e) {
    return null;
  }
}

(function () {
  const token = (document.querySelector('meta[name="sandmap-token"]') || {}).content || '';

  // As the server's graph::status_word.
  const WORDS = { success: 'ok', failure: 'failed', success_with_failures: 'ok with failures' };

  // The same words and classes as the server's graph::summary.
  function summary(counts, mapped, live) {
    const word = (s) => (s === 'running' && !live) ? 'interrupted' : (WORDS[s] || s);
    let total = 0;
    for (const n of Object.values(counts)) total += n;
    const ok = counts.success || 0;
    let cls = total > 0 ? 'success' : 'pending';
    for (const s of ['failure', 'running', 'abandoned', 'cancelled', 'skipped']) {
      if ((counts[s] || 0) > 0) { cls = (s === 'running' && !live) ? 'interrupted' : s; break; }
    }
    if (!mapped) {
      const present = Object.keys(counts).sort().find((s) => counts[s] > 0);
      return [present ? word(present) : 'pending', cls];
    }
    const parts = [ok + '/' + total + ' ok'];
    for (const s of ['failure', 'running', 'skipped', 'cancelled', 'abandoned']) {
      if ((counts[s] || 0) > 0) parts.push(counts[s] + ' ' + word(s));
    }
    return [parts.join(' · '), cls];
  }

  function setBadge(el, status) {
    el.textContent = WORDS[status] || status;
    el.className = 'badge status-' + status;
    el.dataset.status = status;
  }

  function fragment(html) {
    const t = document.createElement('template');
    t.innerHTML = html;
    return t.content.firstElementChild;
  }

  function followRun(section) {
    const runId = section.dataset.run;
    const selectedOp = section.dataset.op;
    const nodes = new Map();
    document.querySelectorAll('#graph g.node').forEach((g) => {
      nodes.set(g.dataset.op, { g, counts: JSON.parse(g.dataset.counts || '{}'), mapped: g.dataset.mapped === '1' });
    });
    let status = (section.querySelector('#run-status .badge') || {}).dataset?.status || 'running';

    function render() {
      const live = status === 'running';
      nodes.forEach((n) => {
        const [text, cls] = summary(n.counts, n.mapped, live);
        n.g.querySelector('text.counts').textContent = text;
        n.g.setAttribute('class', 'node status-' + cls);
        n.g.dataset.counts = JSON.stringify(n.counts);
      });
    }

    function setRun(run) {
      if (!run) return;
      const changed = run.status !== status;
      status = run.status;
      const badge = section.querySelector('#run-status .badge');
      if (badge) setBadge(badge, run.status);
      const error = section.querySelector('#run-error');
      if (error) { error.textContent = run.error || ''; error.hidden = !run.error; }
      if (changed) {
        // The buttons depend on the status: the server draws them.
        section.dataset.ended = run.status === 'running' ? '' : '1';
        refreshActions();
      }
    }

    let tablePending = null;
    function refreshTable() {
      if (tablePending) return;
      tablePending = setTimeout(async () => {
        const holder = document.getElementById('clone-table');
        tablePending = null;
        if (!holder) return;
        // Keep what the user ticked.
        const picked = new Set([...holder.querySelectorAll('input.pick:checked')].map((i) => i.value));
        const html = await fetchText(holder.dataset.src);
        if (html === null) return;
        const next = fragment(html);
        if (!next) return;
        next.querySelectorAll('input.pick').forEach((i) => { i.checked = picked.has(i.value); });
        holder.replaceWith(next);
      }, 1000);
    }

    let actionsPending = false;
    async function refreshActions() {
      if (actionsPending) return;
      actionsPending = true;
      const html = await fetchText(location.pathname + location.search);
      actionsPending = false;
      if (html === null) return;
      const doc = new DOMParser().parseFromString(html, 'text/html');
      const fresh = doc.querySelector('#run .actions');
      const old = section.querySelector('.actions');
      if (fresh && old) { old.replaceWith(fresh); bindActions(); }
      const dur = doc.querySelector('#run-duration');
      const oldDur = section.querySelector('#run-duration');
      if (dur && oldDur) oldDur.textContent = dur.textContent;
    }

    function apply(data, replace) {
      section.dataset.seq = data.seq;
      if (replace) nodes.forEach((n) => { n.counts = {}; });
      let touched = false;
      for (const [op, changes] of Object.entries(data.ops || {})) {
        const n = nodes.get(op);
        if (op === selectedOp) touched = true;
        if (!n) continue;
        for (const [s, d] of Object.entries(changes)) {
          n.counts[s] = (replace ? 0 : (n.counts[s] || 0)) + d;
          if (n.counts[s] === 0) delete n.counts[s];
        }
      }
      setRun(data.run);
      render();
      if (touched || replace) refreshTable();
    }

    // The browser reconnects by itself (sending Last-Event-ID) after a dropped connection; after
    // an HTTP error it gives up, so the page opens a new stream from the number it stands at.
    function connect() {
      const events = new EventSource('/api/runs/' + encodeURIComponent(runId) + '/events?after=' + section.dataset.seq);
      events.addEventListener('snapshot', (e) => apply(JSON.parse(e.data), true));
      events.addEventListener('delta', (e) => apply(JSON.parse(e.data), false));
      events.addEventListener('open', () => { section.dataset.connected = '1'; });
      events.addEventListener('error', () => {
        section.dataset.connected = '';
        if (events.readyState === EventSource.CLOSED) setTimeout(connect, 1000);
      });
    }
    connect();
  }

  async function act(event) {
    const button = event.currentTarget;
    const section = document.getElementById('run');
    const out = document.getElementById('action-status');
    const runId = section.dataset.run;
    let url = '/api/runs/' + encodeURIComponent(runId) + '/' + button.dataset.action;
    let body = '{}';
    if (button.dataset.action === 'reexecute') {
      if (button.dataset.fromFailure) {
        body = JSON.stringify({ from_failure: true });
      } else {
        const picked = [...document.querySelectorAll('#clone-table input.pick:checked')].map((i) => i.value);
        body = JSON.stringify({ steps: picked.length ? picked : [button.dataset.op + '[?]'] });
      }
    }
    button.disabled = true;
    out.textContent = 'starting…';
    try {
      const res = await fetch(url, {
        method: 'POST',
        headers: { 'Content-Type': 'application/json', 'X-Sandmap-Token': token },
        body,
      });
      const answer = await res.json().catch(() => ({ error: res.statusText }));
      if (res.ok && answer.run_id) {
        out.textContent = 'started run ' + answer.run_id.slice(-12);
        location.href = '/runs/' + encodeURIComponent(answer.run_id);
      } else {
        out.textContent = 'refused: ' + (answer.error || res.status);
        button.disabled = false;
      }
    } catch (e) {
      out.textContent = 'failed: ' + e;
      button.disabled = false;
    }
  }

  function bindActions() {
    document.querySelectorAll('button[data-action]').forEach((b) => b.addEventListener('click', act));
  }

  function lazyLogs() {
    document.querySelectorAll('details.log[data-src]').forEach((d) => {
      const load = async () => {
        if (d.dataset.loaded) return;
        d.dataset.loaded = '1';
        const html = await fetchText(d.dataset.src);
        const body = d.querySelector('.log-body');
        if (html === null) { body.textContent = 'cannot load the log'; delete d.dataset.loaded; return; }
        const t = document.createElement('template');
        t.innerHTML = html;
        body.replaceChildren(t.content);
        d.dataset.ready = '1';
      };
      if (d.open) load();
      d.addEventListener('toggle', () => { if (d.open) load(); });
    });
  }

  // The list is costly for a large store: it is asked for again only when the store was
  // written, or every 10 s (a killed run writes nothing; its row turns interrupted).
  function followRuns(holder) {
    let seen = null;
    let last = Date.now();
    setInterval(async () => {
      const version = await fetchText('/api/version');
      const writes = version === null ? null : JSON.parse(version).writes;
      if (writes === null || (writes === seen && Date.now() - last < 10000)) return;
      seen = writes;
      last = Date.now();
      const html = await fetchText(holder.dataset.refresh);
      if (html === null) return;
      const next = fragment(html);
      const old = holder.querySelector('#runs-table');
      if (next && old) old.replaceWith(next);
    }, 2000);
  }

  document.addEventListener('DOMContentLoaded', () => {
    const run = document.getElementById('run');
    if (run) followRun(run);
    const runs = document.getElementById('runs');
    if (runs) followRuns(runs);
    bindActions();
    lazyLogs();
  });
})();
