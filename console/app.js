// The operator console's page (docs/console.md). Preact + htm (every value is rendered as text:
// htm builds elements, never HTML strings; nothing here uses innerHTML) and uPlot for charts.
// All data comes from /console/api; every POST sends the CSRF token from /console/api/session.
import { h, render } from 'preact';
import { useEffect, useRef, useState } from 'preact/hooks';
import htm from 'htm';
import uPlot from 'uplot';

const html = htm.bind(h);
let session;

async function api(path, { method = 'GET', body } = {}) {
  const headers = { accept: 'application/json' };
  if (method !== 'GET') {
    headers['content-type'] = 'application/json';
    headers['x-console-csrf'] = session.csrf;
  }
  const res = await fetch(`/console/api/${path}`, { method, headers, credentials: 'same-origin', cache: 'no-store', ...(body !== undefined ? { body: JSON.stringify(body) } : {}) });
  const value = await res.json().catch(() => ({ error: { code: 'BAD_ANSWER', message: `HTTP ${res.status}` } }));
  if (!res.ok) throw Object.assign(new Error(value.error?.message ?? `HTTP ${res.status}`), { code: value.error?.code, hint: value.error?.hint, status: res.status });
  return value;
}

function useApi(path, deps = []) {
  const [state, set] = useState({ loading: true });
  // only the newest request's answer is shown: typing a filter sends one request per key, and
  // their answers may come back in another order (the API answers them concurrently)
  const latest = useRef(0);
  const reload = () => {
    const n = ++latest.current;
    return api(path).then((data) => n === latest.current && set({ data }), (error) => n === latest.current && set({ error }));
  };
  useEffect(() => { set({ loading: true }); reload(); }, [path, ...deps]);
  return { ...state, reload };
}

const Err = ({ error }) => error ? html`<div class="error" role="alert"><strong>${error.code ?? 'error'}</strong>: ${error.message}${error.hint ? html`<br/><small>${error.hint}</small>` : null}</div>` : null;
const days = (ms) => ms < 0 ? `expired ${Math.round(-ms / 86400000)} d ago` : ms < 2 * 86400000 ? `${Math.round(ms / 3600000)} h left` : `${Math.round(ms / 86400000)} d left`;
const short = (iso) => iso ? iso.replace('T', ' ').replace(/\.\d+Z$|Z$/, 'Z') : '';
const statusOf = (c) => c.status === 'valid' && c.expiring ? 'expiring' : c.status;

function Chart({ opts, data, testid }) {
  const el = useRef(null);
  useEffect(() => {
    if (!el.current) return undefined;
    const plot = new uPlot({ width: Math.min(1100, el.current.clientWidth || 900), height: 220, ...opts }, data, el.current);
    return () => plot.destroy();
  }, [JSON.stringify(data)]);
  return html`<div class="chart" data-testid=${testid} ref=${el}></div>`;
}

const bars = uPlot.paths.bars({ size: [0.6, 60] });
// allow and deny side by side in each time bucket
const barsLeft = uPlot.paths.bars({ size: [0.35, 30], align: -1 });
const barsRight = uPlot.paths.bars({ size: [0.35, 30], align: 1 });

function Overview() {
  const { data, error } = useApi('overview');
  if (error) return html`<${Err} error=${error}/>`;
  if (!data) return html`<p>Loading…</p>`;
  const c = data.counts;
  const crl = (name, s) => html`<tr><td>${name}</td>${s ? html`<td>${s.number}</td><td>${short(s.thisUpdate)}</td><td>${short(s.nextUpdate)}</td><td>${days(s.remainingMs)}</td><td>${s.entries}</td><td>${s.expired ? 'EXPIRED' : s.due ? 'due' : 'ok'}</td>` : html`<td colspan="6">none yet</td>`}</tr>`;
  return html`<section>
    <h2>Overview of ${data.trustDomain}</h2>
    <div class="cards">
      <div class="card" data-testid="count-valid"><div class="n">${c.valid}</div><div class="l">valid</div></div>
      <div class="card" data-testid="count-expiring"><div class="n">${c.expiring}</div><div class="l">of them expiring within ${Math.round(data.expiringWithinMs / 86400000)} d</div></div>
      <div class="card" data-testid="count-expired"><div class="n">${c.expired}</div><div class="l">expired</div></div>
      <div class="card" data-testid="count-revoked"><div class="n">${c.revoked}</div><div class="l">revoked</div></div>
    </div>
    <h3>CA certificates</h3>
    <table><thead><tr><th>CA</th><th>subject</th><th>serial</th><th>not after</th><th>time left</th></tr></thead><tbody>
      ${['root', 'intermediate'].map((k) => html`<tr><td>${k}</td><td>${data.ca[k].subject}</td><td class="mono">${data.ca[k].serial}</td><td>${short(data.ca[k].notAfter)}</td><td>${days(data.ca[k].remainingMs)}</td></tr>`)}
    </tbody></table>
    <h3>CRLs</h3>
    <table><thead><tr><th>CRL</th><th>number</th><th>this update</th><th>next update</th><th>time left</th><th>entries</th><th>state</th></tr></thead><tbody>
      ${crl('root', data.crls.root)}${crl('intermediate', data.crls.intermediate)}
    </tbody></table>
    <h3>Recent refusals</h3>
    ${data.decisionsSource === null ? html`<p>No decisions source configured (console.decisions.file in config.yaml).</p>` : data.recentRefusals.length === 0 ? html`<p>None.</p>` : html`
    <table data-testid="recent-refusals"><thead><tr><th>time</th><th>principal</th><th>target</th><th>rule</th><th>reason</th></tr></thead><tbody>
      ${data.recentRefusals.map((r) => html`<tr><td>${short(r.time)}</td><td class="mono">${r.principal ?? ''}</td><td>${r.target ?? r.event}</td><td>${r.ruleId ?? ''}</td><td>${r.reason ?? ''}</td></tr>`)}
    </tbody></table>`}
  </section>`;
}

function Timeline({ certs, now }) {
  const week = 7 * 86400000;
  const start = Date.parse(now);
  const weeks = 8;
  const xs = [], ys = [];
  for (let i = 0; i < weeks; i++) { xs.push((start + i * week) / 1000); ys.push(0); }
  for (const c of certs) {
    if (c.status !== 'valid') continue;
    const i = Math.floor((Date.parse(c.notAfter) - start) / week);
    if (i >= 0 && i < weeks) ys[i]++;
  }
  return html`<${Chart} testid="expiry-chart" data=${[xs, ys]} opts=${{ title: 'Valid certificates by expiry week (next 8 weeks)', series: [{}, { label: 'expiring that week', stroke: '#2b5fb8', fill: 'rgba(43,95,184,.35)', paths: bars, points: { show: false } }], scales: { x: { time: true } }, axes: [{}, { label: 'certificates' }] }}/>`;
}

function Certificates() {
  const [f, setF] = useState({ q: '', team: '', role: '', status: '', type: '' });
  const qs = new URLSearchParams(Object.entries(f).filter(([, v]) => v)).toString();
  const { data, error } = useApi(`certificates${qs ? `?${qs}` : ''}`);
  const field = (k, label, opts) => opts
    ? html`<label>${label}<select name=${k} value=${f[k]} onChange=${(e) => setF({ ...f, [k]: e.currentTarget.value })}>${opts.map((o) => html`<option value=${o}>${o || 'any'}</option>`)}</select></label>`
    : html`<label>${label}<input name=${k} value=${f[k]} onInput=${(e) => setF({ ...f, [k]: e.currentTarget.value })}/></label>`;
  return html`<section>
    <h2>Certificates</h2>
    <form class="filters" onSubmit=${(e) => e.preventDefault()}>
      ${field('q', 'principal or serial')}${field('team', 'team')}${field('role', 'role')}
      ${field('status', 'status', ['', 'valid', 'expiring', 'expired', 'revoked'])}${field('type', 'type', ['', 'client', 'server'])}
    </form>
    <${Err} error=${error}/>
    ${data ? html`<${Timeline} certs=${data.certificates} now=${data.now}/>
    <table data-testid="cert-table"><thead><tr><th>principal / name</th><th>type</th><th>teams</th><th>roles</th><th>status</th><th>not after</th><th>serial</th></tr></thead><tbody>
      ${data.certificates.map((c) => html`<tr data-serial=${c.serial}><td><a href=${`#/cert/${c.serial}`}>${c.principal ?? c.id}</a></td><td>${c.type}</td><td>${c.teams.join(', ')}</td><td>${c.roles.join(', ')}</td><td class=${`status-${c.status}`}>${statusOf(c)}</td><td>${short(c.notAfter)}</td><td class="mono">${c.serial}</td></tr>`)}
    </tbody></table><p>${data.certificates.length} certificates</p>` : null}
  </section>`;
}

function Certificate({ serial }) {
  const { data, error, reload } = useApi(`certificates/${serial}`);
  const [reason, setReason] = useState('keyCompromise');
  const [confirm, setConfirm] = useState('');
  const [done, setDone] = useState(null);
  const [fail, setFail] = useState(null);
  if (error) return html`<${Err} error=${error}/>`;
  if (!data) return html`<p>Loading…</p>`;
  const c = data.certificate, id = data.inspect.identity;
  const revoke = async () => {
    setFail(null);
    try { setDone(await api(`certificates/${serial}/revoke`, { method: 'POST', body: { reason, confirm } })); reload(); } catch (e) { setFail(e); }
  };
  return html`<section>
    <h2>${c.principal ?? c.id}</h2>
    <table><tbody>
      <tr><th>status</th><td class=${`status-${c.status}`} data-testid="cert-status">${statusOf(c)}${c.revokedAt ? ` at ${short(c.revokedAt)} (${c.revocationReason})` : ''}</td></tr>
      <tr><th>serial</th><td class="mono">${c.serial}</td></tr>
      <tr><th>fingerprint</th><td class="mono">${c.fingerprint}</td></tr>
      <tr><th>valid</th><td>${short(c.notBefore)} → ${short(c.notAfter)}</td></tr>
      <tr><th>subject</th><td>${data.inspect.subject}</td></tr>
      <tr><th>key</th><td>${data.inspect.keyType} (${c.keySource})</td></tr>
      ${id ? html`<tr><th>identity</th><td>${id.kind} <strong>${id.id}</strong>; teams: ${id.teams.join(', ') || '–'}; roles: ${id.roles.join(', ') || '–'}${id.email ? `; ${id.email}` : ''}</td></tr>` : null}
      ${data.inspect.identityError ? html`<tr><th>identity</th><td class="deny">${data.inspect.identityError.code}: ${data.inspect.identityError.message}</td></tr>` : null}
      <tr><th>SANs</th><td class="mono">${[...data.inspect.subjectAltNames.uris, ...data.inspect.subjectAltNames.dns, ...data.inspect.subjectAltNames.ips, ...data.inspect.subjectAltNames.emails].join(' ')}</td></tr>
    </tbody></table>
    <h3>Chain (${data.chainCheck.status}${data.chainCheck.reason ? `: ${data.chainCheck.reason}` : ''})</h3>
    <table><thead><tr><th></th><th>subject</th><th>serial</th><th>not after</th></tr></thead><tbody>
      ${data.chain.map((x) => html`<tr><td>${x.role}</td><td>${x.subject}</td><td class="mono">${x.serial}</td><td>${short(x.notAfter)}</td></tr>`)}
    </tbody></table>
    <h3>Renewal history</h3>
    <table><thead><tr><th>serial</th><th>valid</th><th></th></tr></thead><tbody>
      ${data.history.map((x) => html`<tr><td class="mono">${x.serial === serial ? x.serial : html`<a href=${`#/cert/${x.serial}`}>${x.serial}</a>`}</td><td>${short(x.notBefore)} → ${short(x.notAfter)}</td><td>${x.relation}</td></tr>`)}
    </tbody></table>
    ${c.status !== 'revoked' && session.mayAct ? html`<div class="panel" data-testid="revoke-panel">
      <h3>Revoke</h3>
      <p>Servers refuse this certificate once they have the new CRL (the folder's crl/ files are watched; fetched CRLs at their next refresh). Its renewals are revoked with it (except for <em>superseded</em>).</p>
      <form class="filters" onSubmit=${(e) => { e.preventDefault(); revoke(); }}>
        <label>reason<select name="reason" value=${reason} onChange=${(e) => setReason(e.currentTarget.value)}>${data.reasons.map((r) => html`<option value=${r}>${r}</option>`)}</select></label>
        <label>type the serial to confirm<input name="confirm" value=${confirm} onInput=${(e) => setConfirm(e.currentTarget.value.trim())}/></label>
        <button class="danger" type="submit" disabled=${confirm !== serial}>Revoke certificate</button>
      </form>
    </div>` : null}
    <${Err} error=${fail}/>
    ${done ? html`<div class="notice" data-testid="revoked-notice">Revoked (${done.revoked.reason}); CRL number ${done.crlNumber}${done.alsoRevoked.length ? `; also revoked: ${done.alsoRevoked.join(', ')}` : ''}.</div>` : null}
  </section>`;
}

function Tokens() {
  const { data, error, reload } = useApi('tokens');
  const [form, setForm] = useState({ kind: 'user', id: '', teams: '', roles: '', ttl: '15m' });
  const [created, setCreated] = useState(null);
  const [fail, setFail] = useState(null);
  const create = async () => {
    setFail(null); setCreated(null);
    try { setCreated(await api('tokens', { method: 'POST', body: form })); reload(); } catch (e) { setFail(e); }
  };
  const input = (k, label) => html`<label>${label}<input name=${k} value=${form[k]} onInput=${(e) => setForm({ ...form, [k]: e.currentTarget.value })}/></label>`;
  return html`<section>
    <h2>Enrollment tokens</h2>
    ${session.mayAct ? html`<form class="filters" data-testid="token-form" onSubmit=${(e) => { e.preventDefault(); create(); }}>
      <label>kind<select name="kind" value=${form.kind} onChange=${(e) => setForm({ ...form, kind: e.currentTarget.value })}><option value="user">user</option><option value="service">service</option></select></label>
      ${input('id', 'id')}${input('teams', 'teams (comma-separated)')}${input('roles', 'roles')}${input('ttl', 'token lifetime')}
      <button type="submit">Create token</button>
    </form>` : null}
    <${Err} error=${fail}/>
    ${created ? html`<div class="notice"><p>Token <span class="mono">${created.token.id}</span> for ${created.token.claims.kind} ${created.token.claims.id}, usable once until ${short(created.token.expiresAt)}. Copy the secret now: it is shown this once and never again.</p><div class="secret" data-testid="token-secret">${created.secret}</div></div>` : null}
    <${Err} error=${error}/>
    ${data ? html`<table data-testid="token-table"><thead><tr><th>id</th><th>principal</th><th>teams</th><th>roles</th><th>status</th><th>expires</th><th>created by</th></tr></thead><tbody>
      ${data.tokens.map((t) => html`<tr><td class="mono">${t.id}</td><td class="mono">${t.principal}</td><td>${t.claims.teams.join(', ')}</td><td>${t.claims.roles.join(', ')}</td><td>${t.status}</td><td>${short(t.expiresAt)}</td><td class="mono">${t.createdBy}</td></tr>`)}
    </tbody></table>` : null}
  </section>`;
}

function Tally({ title, rows, testid }) {
  return html`<div><h3>${title}</h3><table data-testid=${testid}><thead><tr><th>${title.split(' ').pop()}</th><th>allow</th><th>deny</th></tr></thead><tbody>
    ${rows.slice(0, 20).map((r) => html`<tr><td class="mono">${r.key}</td><td class="allow">${r.allow}</td><td class="deny">${r.deny}</td></tr>`)}
  </tbody></table></div>`;
}

function Decisions() {
  const [f, setF] = useState({ principal: '', tool: '', rule: '', outcome: '', since: '24h' });
  const qs = new URLSearchParams(Object.entries(f).filter(([, v]) => v)).toString();
  const { data, error } = useApi(`decisions?${qs}`);
  const field = (k, label, opts) => opts
    ? html`<label>${label}<select name=${k} value=${f[k]} onChange=${(e) => setF({ ...f, [k]: e.currentTarget.value })}>${opts.map((o) => html`<option value=${o}>${o || 'any'}</option>`)}</select></label>`
    : html`<label>${label}<input name=${k} value=${f[k]} onInput=${(e) => setF({ ...f, [k]: e.currentTarget.value })}/></label>`;
  return html`<section>
    <h2>Decisions</h2>
    <form class="filters" onSubmit=${(e) => e.preventDefault()}>${field('principal', 'principal contains')}${field('tool', 'tool')}${field('rule', 'rule')}${field('outcome', 'outcome', ['', 'allow', 'deny'])}${field('since', 'since (e.g. 24h)')}</form>
    <${Err} error=${error}/>
    ${data ? html`${data.source === null ? html`<p>No decisions source configured (console.decisions.file in config.yaml).</p>` : null}
      <div class="cards"><div class="card" data-testid="decisions-allowed"><div class="n">${data.allowed}</div><div class="l">allowed</div></div><div class="card" data-testid="decisions-denied"><div class="n">${data.denied}</div><div class="l">denied</div></div></div>
      <${Chart} testid="decisions-chart" data=${[data.series.map((b) => Date.parse(b.start) / 1000), data.series.map((b) => b.allow), data.series.map((b) => b.deny)]}
        opts=${{ title: `Decisions per ${Math.round(data.bucketMs / 60000)} min`, series: [{}, { label: 'allow', stroke: '#1f8a4c', fill: 'rgba(31,138,76,.35)', paths: barsLeft, points: { show: false } }, { label: 'deny', stroke: '#c0392b', fill: 'rgba(192,57,43,.45)', paths: barsRight, points: { show: false } }], scales: { x: { time: true } } }}/>
      <div class="cols"><${Tally} title="per tool" rows=${data.byTool} testid="by-tool"/><${Tally} title="per principal" rows=${data.byPrincipal} testid="by-principal"/><${Tally} title="per rule" rows=${data.byRule} testid="by-rule"/></div>
      <h3>Latest</h3>
      <table><thead><tr><th>time</th><th>principal</th><th>target</th><th>outcome</th><th>rule</th><th>reason</th></tr></thead><tbody>
        ${data.recent.slice(0, 50).map((r) => html`<tr><td>${short(r.time)}</td><td class="mono">${r.principal ?? ''}</td><td>${r.target ?? r.method ?? r.event}</td><td class=${r.allowed ? 'allow' : 'deny'}>${r.allowed ? 'allow' : 'deny'}</td><td>${r.ruleId ?? ''}</td><td>${r.reason ?? ''}</td></tr>`)}
      </tbody></table>` : null}
  </section>`;
}

function Matrix({ m, onCell, changed }) {
  const cell = new Map(m.cells.map((c) => [`${c.principal}\u0000${c.tool}`, c]));
  return html`<table class="matrix" data-testid="policy-matrix"><thead><tr><th>principal</th>${m.tools.map((t) => html`<th>${t}</th>`)}</tr></thead><tbody>
    ${m.principals.map((p) => html`<tr><th class="mono" title=${`teams: ${p.teams.join(', ')}; roles: ${p.roles.join(', ')}`}>${p.id}</th>${m.tools.map((t) => {
      const c = cell.get(`${p.principal}\u0000${t}`);
      const key = `${p.principal}\u0000${t}`;
      return html`<td class=${`cell ${c.outcome}${changed?.has(key) ? ' changed' : ''}`} data-principal=${p.id} data-tool=${t} title=${c.reason} onClick=${() => onCell(p.principal, t)}>${c.outcome}${c.ruleId ? html`<br/><small>${c.ruleId}</small>` : null}</td>`;
    })}</tr>`)}
  </tbody></table>`;
}

function Policy() {
  const { data, error } = useApi('policy/matrix');
  const [explained, setExplained] = useState(null);
  const [text, setText] = useState(null);
  const [play, setPlay] = useState(null);
  const [fail, setFail] = useState(null);
  if (error) return html`<section><h2>Policy</h2><${Err} error=${error}/></section>`;
  if (!data) return html`<p>Loading…</p>`;
  const explain = async (principal, tool) => {
    setFail(null);
    try { setExplained(await api('policy/explain', { method: 'POST', body: { principal, tool, ...(play && text !== null ? { policy: text } : {}) } })); } catch (e) { setFail(e); }
  };
  const run = async () => {
    setFail(null);
    try { setPlay(await api('policy/playground', { method: 'POST', body: { policy: text ?? data.text } })); } catch (e) { setFail(e); setPlay(null); }
  };
  const d = explained?.decision;
  return html`<section>
    <h2>Policy</h2>
    <p>${data.file}: each cell is the decision for a call without arguments. <span class="allow">allow</span>, <span class="deny">deny</span> (a condition refused it), <span class="hidden">hidden</span> (answered as an unknown tool). Click a cell for the explanation.</p>
    <${Matrix} m=${data} onCell=${explain}/>
    <${Err} error=${fail}/>
    ${explained ? html`<div class="panel" data-testid="explain">
      <p><strong class=${d.allowed ? 'allow' : 'deny'}>${d.allowed ? 'ALLOW' : 'DENY'}</strong>${d.ruleId ? ` by rule "${d.ruleId}"` : ''}: ${d.reason}${!d.allowed && !d.visible ? ' (hidden: answered as an unknown target)' : ''}</p>
      <p class="mono">${explained.subject.principal} teams=[${explained.subject.teams.join(',')}] roles=[${explained.subject.roles.join(',')}] scopes=[${d.scopes.join(',')}]</p>
      <table><thead><tr><th>rule</th><th>effect</th><th>applies</th><th>why</th></tr></thead><tbody>
        ${explained.rules.map((r) => html`<tr><td>${r.id}</td><td>${r.effect}</td><td>${r.applies ? 'yes' : 'no'}</td><td>${r.why}</td></tr>`)}
      </tbody></table></div>` : null}
    <h3>Playground</h3>
    <p>Change the policy here and see which cells change. Nothing is saved or deployed.</p>
    <textarea name="policy" data-testid="playground-text" value=${text ?? data.text} onInput=${(e) => setText(e.currentTarget.value)}></textarea>
    <p><button type="button" onClick=${run}>Compare with the deployed policy</button></p>
    ${play ? html`<div class="panel" data-testid="playground-result"><p>${play.changes.length} cell(s) change.</p>
      <table><thead><tr><th>principal</th><th>tool</th><th>now</th><th>with the change</th></tr></thead><tbody>
        ${play.changes.map((c) => html`<tr><td class="mono">${c.principal}</td><td>${c.tool}</td><td class=${c.before.outcome}>${c.before.outcome}${c.before.ruleId ? ` (${c.before.ruleId})` : ''}</td><td class=${c.outcome}>${c.outcome}${c.ruleId ? ` (${c.ruleId})` : ''}</td></tr>`)}
      </tbody></table>
      <${Matrix} m=${play} onCell=${explain} changed=${new Set(play.changes.map((c) => `${c.principal}\u0000${c.tool}`))}/></div>` : null}
  </section>`;
}

const PAGES = [['overview', 'Overview'], ['certs', 'Certificates'], ['tokens', 'Tokens'], ['decisions', 'Decisions'], ['policy', 'Policy']];

function App() {
  const [route, setRoute] = useState(location.hash.slice(2) || 'overview');
  useEffect(() => {
    const on = () => setRoute(location.hash.slice(2) || 'overview');
    addEventListener('hashchange', on);
    return () => removeEventListener('hashchange', on);
  }, []);
  const [page, arg] = route.split('/');
  const body = page === 'cert' && arg ? html`<${Certificate} serial=${arg}/>` : page === 'certs' ? html`<${Certificates}/>` : page === 'tokens' ? html`<${Tokens}/>` : page === 'decisions' ? html`<${Decisions}/>` : page === 'policy' ? html`<${Policy}/>` : html`<${Overview}/>`;
  return html`<header><h1>mcp-mtls console</h1><nav>${PAGES.map(([k, label]) => html`<a href=${`#/${k}`} class=${page === k || (k === 'certs' && page === 'cert') ? 'active' : ''}>${label}</a>`)}</nav><span class="who" data-testid="operator">${session.principal}${session.mayAct ? '' : ' (read only)'}</span></header><main>${body}</main>`;
}

const root = document.getElementById('app');
const show = (vnode) => { root.textContent = ''; render(vnode, root); };
api('session').then(
  (s) => { session = s; show(html`<${App}/>`); },
  (e) => show(html`<main><h1>mcp-mtls console</h1><${Err} error=${e}/></main>`),
);
