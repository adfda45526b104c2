// Parcours auditor console: reads the hub's AuditEvent view with an
// auditor's token. Plain JavaScript, no dependency, no build step. Data from
// the hub is only ever written with textContent, never as HTML.
'use strict';

(function () {
  const TOKEN_KEY = 'parcours.audit.token';
  const PURPOSE = 'HCOMPL';
  const PAGE_SIZE = '50';
  const MAX_EVENT_PAGES = 20; // event lists: at most 1 000 events
  const BREAK_GLASS = '110127';
  // The review extension (…/StructureDefinition/break-glass-review), matched
  // by its path: the page names no other origin.
  const REVIEW_EXTENSION = '/StructureDefinition/break-glass-review';
  const DASH = '—';
  // The page lives at <base>/audit/, the FHIR API at <base>/fhir/.
  const API = new URL('../fhir/', document.baseURI);

  const $ = (id) => document.getElementById(id);

  // ---------- small helpers ----------

  const arr = (v) => (Array.isArray(v) ? v : []);
  const obj = (v) => (v !== null && typeof v === 'object' && !Array.isArray(v) ? v : {});
  const text = (v) => (v === undefined || v === null || v === '' ? DASH : String(v));

  class ConsoleError extends Error {}

  function showAlert(message) {
    const a = $('alert');
    a.textContent = message;
    a.hidden = false;
  }

  function clearAlert() {
    const a = $('alert');
    a.textContent = '';
    a.hidden = true;
  }

  // diagnostics reads an OperationOutcome's issues as one line.
  function diagnostics(body) {
    const issues = arr(obj(body).issue);
    return issues
      .map((i) => {
        const it = obj(i);
        return it.diagnostics || obj(it.details).text || it.code || '';
      })
      .filter((s) => s)
      .join('; ');
  }

  function base64urlJSON(part) {
    const b64 = part.replace(/-/g, '+').replace(/_/g, '/');
    const pad = b64 + '='.repeat((4 - (b64.length % 4)) % 4);
    const bin = atob(pad);
    const bytes = Uint8Array.from(bin, (c) => c.charCodeAt(0));
    return JSON.parse(new TextDecoder().decode(bytes));
  }

  // claims decodes a JWT's payload for display only (the hub verifies it).
  function claims(token) {
    try {
      return obj(base64urlJSON(token.split('.')[1] || ''));
    } catch (e) {
      return {};
    }
  }

  // ---------- API ----------

  function token() {
    return sessionStorage.getItem(TOKEN_KEY) || '';
  }

  // sameOrigin keeps paging links on this page's origin: a hub behind a
  // proxy may write its public base into Bundle links.
  function sameOrigin(link) {
    const u = new URL(link, API);
    if (u.origin === location.origin) return u.href;
    const i = u.pathname.lastIndexOf('/AuditEvent');
    if (i < 0) return u.href;
    return new URL(u.pathname.slice(i + 1) + u.search, API).href;
  }

  async function api(url, method) {
    const tok = token();
    if (!tok) throw new ConsoleError('Not signed in: paste an auditor token first.');
    let resp;
    try {
      resp = await fetch(url, {
        method: method || 'GET',
        headers: {
          Authorization: 'Bearer ' + tok,
          'X-Purpose-Of-Use': PURPOSE,
          Accept: 'application/fhir+json',
        },
        cache: 'no-store',
        credentials: 'omit',
      });
    } catch (e) {
      throw new ConsoleError('Network error: ' + (e && e.message ? e.message : e));
    }
    const raw = await resp.text();
    let body = null;
    try {
      body = JSON.parse(raw);
    } catch (e) {
      body = null;
    }
    if (resp.status !== 200) {
      const why = diagnostics(body) || raw.slice(0, 300) || 'no details';
      const ids = [];
      const dec = resp.headers.get('X-Decision-Id');
      const req = resp.headers.get('X-Request-Id');
      if (dec) ids.push('decision ' + dec);
      if (req) ids.push('request ' + req);
      throw new ConsoleError(
        'HTTP ' + resp.status + (resp.statusText ? ' ' + resp.statusText : '') + ': ' + why +
          (ids.length ? ' (' + ids.join(', ') + ')' : ''),
      );
    }
    if (body === null) throw new ConsoleError('The hub did not answer JSON.');
    return body;
  }

  // ---------- AuditEvent view (IHE BALP), defensive ----------

  const ACTIONS = { C: 'create', R: 'read', U: 'update', D: 'delete', E: 'execute' };
  const OUTCOMES = { 0: 'allow', 4: 'deny', 8: 'failure', 12: 'major failure' };

  function codeOf(v) {
    const o = obj(v);
    if (o.code !== undefined) return o.code; // Coding
    const c = obj(arr(o.coding)[0]); // CodeableConcept
    return c.code;
  }

  function decodeQuery(b64) {
    try {
      return new TextDecoder().decode(Uint8Array.from(atob(b64), (c) => c.charCodeAt(0)));
    } catch (e) {
      return '';
    }
  }

  function view(ev) {
    ev = obj(ev);
    const entities = arr(ev.entity).map(obj);
    const typeOf = (e) => String(codeOf(e.type) ?? '');
    const decision = entities.find((e) => typeOf(e) === 'policy-decision') || {};
    const details = {};
    for (const d of arr(decision.detail).map(obj)) {
      if (typeof d.type === 'string' && !(d.type in details)) {
        details[d.type] = d.valueString ?? (d.valueBase64Binary !== undefined ? decodeQuery(d.valueBase64Binary) : undefined);
      }
    }
    const patientEntity = entities.find((e) => typeOf(e) === '1') || {};
    const patient = obj(obj(patientEntity.what).identifier).value;

    let resourceType, resource, query;
    const refEntity = entities.find((e) => typeOf(e) === '2' && obj(e.what).reference);
    if (refEntity) {
      resource = String(refEntity.what.reference);
      resourceType = resource.split('/')[0];
    }
    const queryEntity = entities.find((e) => typeof e.query === 'string');
    if (queryEntity) {
      query = decodeQuery(queryEntity.query);
      if (!resourceType) {
        const path = query.split('?')[0].split('/').filter((s) => s);
        resourceType = path.find((s) => /^[A-Z][A-Za-z]+$/.test(s));
      }
    }

    const agents = arr(ev.agent).map(obj);
    const user = agents.find((a) => a.requestor === true) || agents[0] || {};
    const actorType = codeOf(arr(user.role)[0]);
    const sub = obj(obj(user.who).identifier).value || obj(user.who).display;

    const purposes = arr(ev.purposeOfEvent).map(obj);
    const purposeCodes = [];
    for (const p of purposes) {
      const codes = arr(p.coding).map((c) => obj(c).code).filter((c) => c);
      if (codes.length) purposeCodes.push(...codes);
      else if (p.text) purposeCodes.push(p.text);
    }

    const subtype = codeOf(arr(ev.subtype)[0]);
    const breakGlass = String(subtype) === BREAK_GLASS;
    const interaction = breakGlass ? 'break-glass' : subtype;

    const outcomeCode = ev.outcome === undefined ? undefined : String(ev.outcome);

    return {
      recorded: ev.recorded || obj(ev.period).start,
      actorType,
      sub,
      purpose: purposeCodes[0],
      purposes: purposeCodes,
      interaction,
      action: ACTIONS[ev.action],
      breakGlass,
      resourceType,
      resource,
      query,
      outcome: OUTCOMES[outcomeCode],
      outcomeCode,
      outcomeDesc: ev.outcomeDesc,
      patient,
      decisionId: details.decision_id || obj(obj(decision.what).identifier).value || ev.id,
      revision: details.revision,
      reasons: details.reasons || ev.outcomeDesc,
      obligations: details.obligations,
      legalBasis: details.legal_basis,
      hash: details.hash,
    };
  }

  // ---------- rendering ----------

  function cell(tr, col, value, cls) {
    const td = document.createElement('td');
    td.dataset.col = col;
    td.textContent = text(value);
    if (cls) td.className = cls;
    tr.appendChild(td);
    return td;
  }

  // shortTime shows an instant to the second in UTC; the exact recorded
  // value stays in the datetime attribute and in the detail panel.
  function shortTime(value) {
    const m = /^(\d{4}-\d{2}-\d{2})T(\d{2}:\d{2}:\d{2})(?:\.\d+)?(Z|[+-]\d{2}:\d{2})?$/.exec(String(value));
    if (!m) return String(value);
    if (!m[3]) return m[1] + ' ' + m[2];
    if (m[3] === 'Z' || m[3] === '+00:00') return m[1] + ' ' + m[2] + ' UTC';
    return m[1] + ' ' + m[2] + ' ' + m[3];
  }

  function timeCell(tr, value) {
    const td = document.createElement('td');
    td.dataset.col = 'time';
    if (value) {
      const t = document.createElement('time');
      t.dateTime = String(value);
      t.title = String(value);
      t.textContent = shortTime(value);
      td.appendChild(t);
    } else {
      td.textContent = DASH;
    }
    tr.appendChild(td);
  }

  function outcomeCell(tr, v) {
    const cls = v.outcome === 'allow' ? 'outcome allow' : v.outcome === 'deny' ? 'outcome deny' : 'outcome';
    cell(tr, 'outcome', v.outcome || v.outcomeCode, cls);
  }

  function selectable(tr, ev, label) {
    tr.tabIndex = 0;
    tr.className = 'selectable';
    tr.setAttribute('aria-label', label);
    tr.addEventListener('click', () => openDetail(ev));
    tr.addEventListener('keydown', (e) => {
      if (e.key === 'Enter' || e.key === ' ') {
        e.preventDefault();
        openDetail(ev);
      }
    });
  }

  function entries(bundle) {
    return arr(obj(bundle).entry)
      .map((e) => obj(obj(e).resource))
      .filter((r) => r.resourceType === 'AuditEvent');
  }

  function nextLink(bundle) {
    const l = arr(obj(bundle).link).map(obj).find((x) => x.relation === 'next');
    return l && l.url ? sameOrigin(l.url) : '';
  }

  function bump(el, state) {
    el.dataset.state = state;
    el.dataset.loads = String(Number(el.dataset.loads || '0') + 1);
  }

  // ---------- decisions ----------

  const paging = { pages: [], at: -1, next: '' };

  function searchURL() {
    const q = new URLSearchParams();
    const val = (id) => $(id).value.trim();
    if (val('from')) q.append('date', 'ge' + val('from'));
    if (val('to')) q.append('date', 'le' + val('to'));
    if (val('actor')) q.append('agent', val('actor'));
    if (val('purpose')) q.append('purpose', val('purpose'));
    if (val('outcome')) q.append('outcome', val('outcome'));
    if (val('patient')) q.append('patient', val('patient'));
    q.append('_count', PAGE_SIZE);
    return new URL('AuditEvent?' + q.toString(), API).href;
  }

  async function loadPage(url) {
    const results = $('results');
    const rows = $('decision-rows');
    results.dataset.state = 'loading';
    results.setAttribute('aria-busy', 'true');
    $('summary').textContent = 'Loading…';
    clearAlert();
    try {
      const bundle = await api(url);
      const events = entries(bundle);
      rows.replaceChildren();
      for (const ev of events) {
        const v = view(ev);
        const tr = document.createElement('tr');
        timeCell(tr, v.recorded);
        cell(tr, 'actor', v.actorType);
        cell(tr, 'purpose', v.purpose);
        cell(tr, 'interaction', v.interaction);
        cell(tr, 'resource', v.resourceType);
        outcomeCell(tr, v);
        cell(tr, 'patient', v.patient, 'mono');
        cell(tr, 'decision', v.decisionId, 'mono');
        selectable(tr, ev, 'Decision ' + text(v.decisionId));
        rows.appendChild(tr);
      }
      paging.next = nextLink(bundle);
      const total = typeof bundle.total === 'number' ? bundle.total : undefined;
      const first = paging.at * Number(PAGE_SIZE) + 1;
      $('summary').textContent = events.length === 0
        ? 'No decision matches these filters.'
        : 'Decisions ' + first + '–' + (first + events.length - 1) +
          (total !== undefined ? ' of ' + total : '') + ', newest first.';
      bump(results, 'done');
    } catch (e) {
      rows.replaceChildren();
      paging.next = '';
      $('summary').textContent = 'The search failed.';
      showAlert(e instanceof ConsoleError ? e.message : 'Unexpected error: ' + e);
      bump(results, 'error');
    } finally {
      results.removeAttribute('aria-busy');
      $('next').disabled = !paging.next;
      $('prev').disabled = paging.at <= 0;
    }
  }

  function search(e) {
    if (e) e.preventDefault();
    paging.pages = [searchURL()];
    paging.at = 0;
    loadPage(paging.pages[0]);
  }

  function next() {
    if (!paging.next) return;
    paging.pages = paging.pages.slice(0, paging.at + 1);
    paging.pages.push(paging.next);
    paging.at++;
    loadPage(paging.next);
  }

  function prev() {
    if (paging.at <= 0) return;
    paging.at--;
    loadPage(paging.pages[paging.at]);
  }

  function clearFilters() {
    $('filters').reset();
    $('actor').focus();
  }

  // ---------- detail ----------

  function pretty(s) {
    if (!s) return DASH;
    try {
      return JSON.stringify(JSON.parse(s), null, 2);
    } catch (e) {
      return String(s);
    }
  }

  function openDetail(ev) {
    const v = view(ev);
    $('detail-decision-id').textContent = text(v.decisionId);
    $('detail-recorded').textContent = text(v.recorded);
    $('detail-actor').textContent = v.sub || v.actorType
      ? text(v.sub) + ' (' + text(v.actorType) + ')'
      : DASH;
    $('detail-purpose').textContent = v.purposes.length ? v.purposes.join(' / ') : DASH;
    $('detail-interaction').textContent = v.breakGlass
      ? 'break-glass (DICOM 110127)' + (v.action ? ', ' + v.action : '')
      : text(v.interaction);
    $('detail-resource').textContent = text(v.resource || v.query || v.resourceType);
    const out = $('detail-outcome');
    out.textContent = text(v.outcome || v.outcomeCode);
    out.className = v.outcome === 'allow' ? 'outcome allow' : v.outcome === 'deny' ? 'outcome deny' : 'outcome';
    $('detail-revision').textContent = text(v.revision);
    $('detail-reasons').textContent = text(v.reasons);
    $('detail-obligations').textContent = pretty(v.obligations);
    $('detail-legal-basis').textContent = text(v.legalBasis);
    $('detail-hash').textContent = text(v.hash);
    $('detail-raw').textContent = JSON.stringify(ev, null, 2);
    const d = $('detail');
    d.hidden = false;
    d.focus();
  }

  function closeDetail() {
    $('detail').hidden = true;
  }

  // ---------- verify ----------

  function parameter(params, name) {
    const p = arr(obj(params).parameter).map(obj).find((x) => x.name === name);
    if (!p) return undefined;
    for (const k of ['valueBoolean', 'valueInteger', 'valueUnsignedInt', 'valuePositiveInt', 'valueString', 'valueDecimal']) {
      if (p[k] !== undefined) return p[k];
    }
    return undefined;
  }

  async function verify() {
    const out = $('verify-result');
    const button = $('verify');
    button.disabled = true;
    out.className = 'status';
    out.textContent = 'Verifying…';
    clearAlert();
    try {
      const params = await api(new URL('$audit-verify', API).href);
      const ok = parameter(params, 'ok');
      const records = parameter(params, 'records');
      if (ok === true) {
        out.textContent = 'Log intact: ' + text(records) + ' records';
        out.className = 'status good';
      } else if (ok === false) {
        const detail = parameter(params, 'detail');
        out.textContent = 'Log BROKEN at record ' + text(parameter(params, 'firstBad')) + ': ' +
          text(parameter(params, 'problem')) + (detail ? ' (' + detail + ')' : '');
        out.className = 'status bad';
      } else {
        out.textContent = 'Verification answer without an ok parameter.';
        out.className = 'status bad';
      }
    } catch (e) {
      out.textContent = 'Verification failed.';
      out.className = 'status bad';
      showAlert(e instanceof ConsoleError ? e.message : 'Unexpected error: ' + e);
    } finally {
      button.disabled = false;
    }
  }

  // ---------- event lists ----------

  // loadEvents lists the AuditEvents of one subtype in the region prefix
  // (prefix, prefix-rows, prefix-summary): row makes an event's table row,
  // summary says what the list holds, failure what to show when it cannot
  // be read.
  async function loadEvents(prefix, subtype, row, summary, failure) {
    const box = $(prefix);
    const rows = $(prefix + '-rows');
    box.dataset.state = 'loading';
    box.setAttribute('aria-busy', 'true');
    $(prefix + '-summary').textContent = 'Loading…';
    try {
      const q = new URLSearchParams({ subtype: subtype, _count: PAGE_SIZE });
      // Every page, up to MAX_EVENT_PAGES (the list once stopped at the
      // newest 50 without saying so: black-box review).
      let url = new URL('AuditEvent?' + q.toString(), API).href;
      const events = [];
      let pages = 0;
      while (url && pages < MAX_EVENT_PAGES) {
        const bundle = await api(url);
        events.push(...entries(bundle));
        url = nextLink(bundle);
        pages++;
      }
      rows.replaceChildren(...events.map(row));
      // Count what is shown: Bundle.total may count before the subtype
      // filter on some hubs.
      $(prefix + '-summary').textContent = summary(events) +
        (url ? ' Only the newest ' + events.length + ' are listed: search the decisions by period for the others.' : '');
      bump(box, 'done');
    } catch (e) {
      rows.replaceChildren();
      $(prefix + '-summary').textContent = failure;
      showAlert(e instanceof ConsoleError ? e.message : 'Unexpected error: ' + e);
      bump(box, 'error');
    } finally {
      box.removeAttribute('aria-busy');
    }
  }

  // eventRow starts an event's row: time, actor, actor type, patient.
  function eventRow(v) {
    const tr = document.createElement('tr');
    timeCell(tr, v.recorded);
    cell(tr, 'actor', v.sub);
    cell(tr, 'actor-type', v.actorType);
    cell(tr, 'patient', v.patient, 'mono');
    return tr;
  }

  function plural(n, one) {
    return n + ' ' + one + (n === 1 ? '' : 's');
  }

  // ---------- break-the-glass ----------

  function loadBreakGlass() {
    return loadEvents('bg', BREAK_GLASS, (ev) => {
      const v = view(ev);
      const review = reviewOf(ev);
      const tr = eventRow(v);
      outcomeCell(tr, v);
      cell(tr, 'decision', v.decisionId, 'mono');
      const td = cell(tr, 'review', review || DASH, review === 'requested' ? 'outcome deny' : 'outcome allow');
      if (review === 'requested') {
        const button = document.createElement('button');
        button.type = 'button';
        button.className = 'secondary';
        button.dataset.testid = 'bg-review';
        button.textContent = 'Mark reviewed';
        button.setAttribute('aria-label', 'Mark break-the-glass decision ' + text(v.decisionId) + ' reviewed');
        button.addEventListener('click', (e) => {
          e.stopPropagation();
          markReviewed(v.decisionId, button);
        });
        button.addEventListener('keydown', (e) => e.stopPropagation());
        td.append(' ', button);
      }
      selectable(tr, ev, 'Break-the-glass decision ' + text(v.decisionId));
      return tr;
    }, (events) => {
      const open = events.filter((ev) => reviewOf(ev) === 'requested').length;
      return events.length === 0
        ? 'No break-the-glass event.'
        : plural(events.length, 'break-the-glass event') + ', ' + open + ' awaiting review.';
    }, 'The break-the-glass list could not be read.');
  }

  // ---------- care relationships declared ----------

  function loadDeclared() {
    return loadEvents('cr', 'care-relation-declared', (ev) => {
      const v = view(ev);
      const tr = eventRow(v);
      cell(tr, 'resource', v.resource, 'mono');
      cell(tr, 'decision', v.decisionId, 'mono');
      selectable(tr, ev, 'Declared care relationship ' + text(v.decisionId));
      return tr;
    }, (events) => events.length === 0
      ? 'No care relationship declared.'
      : plural(events.length, 'care relationship') + ' declared by the writer.',
    'The declared care relationships could not be read.');
  }

  // reviewOf is the status of a break-the-glass access's review
  // (requested, completed), or '' when the hub does not say.
  function reviewOf(ev) {
    const x = arr(obj(ev).extension).map(obj).find((e) => typeof e.url === 'string' && e.url.endsWith(REVIEW_EXTENSION));
    return x && typeof x.valueCode === 'string' ? x.valueCode : '';
  }

  // markReviewed completes the review of a break-the-glass access (the
  // hub records the auditor and the time), then lists them again.
  async function markReviewed(decisionId, button) {
    button.disabled = true;
    try {
      await api(new URL('AuditEvent/' + encodeURIComponent(decisionId) + '/$review', API).href, 'POST');
      clearAlert();
    } catch (e) {
      showAlert(e instanceof ConsoleError ? e.message : 'Unexpected error: ' + e);
    }
    await loadBreakGlass();
  }

  // ---------- sign in ----------

  function showSignedIn() {
    const tok = token();
    const status = $('signed-in');
    $('sign-out').hidden = !tok;
    if (!tok) {
      status.textContent = 'Not signed in.';
      status.className = 'status';
      return;
    }
    const c = claims(tok);
    let s = 'Signed in as ' + text(c.sub) + ' (' + text(c.actor_type) + ')';
    if (typeof c.exp === 'number') s += ', token valid until ' + new Date(c.exp * 1000).toISOString();
    if (c.actor_type !== 'auditor') s += ' — not an auditor token: the hub will refuse most requests';
    status.textContent = s + '.';
    status.className = c.actor_type === 'auditor' ? 'status good' : 'status bad';
  }

  function signIn(e) {
    e.preventDefault();
    let tok = $('token').value.trim();
    tok = tok.replace(/^Bearer\s+/i, '');
    if (tok.split('.').length !== 3) {
      showAlert('This is not a JWT: a bearer token has three dot-separated parts.');
      return;
    }
    clearAlert();
    sessionStorage.setItem(TOKEN_KEY, tok);
    $('token').value = '';
    showSignedIn();
    loadBreakGlass();
    loadDeclared();
  }

  function signOut() {
    sessionStorage.removeItem(TOKEN_KEY);
    $('decision-rows').replaceChildren();
    $('bg-rows').replaceChildren();
    $('cr-rows').replaceChildren();
    $('cr-summary').textContent = 'Sign in to list them.';
    $('summary').textContent = 'No search yet.';
    $('bg-summary').textContent = 'Sign in to list them.';
    $('verify-result').textContent = '';
    paging.pages = [];
    paging.at = -1;
    paging.next = '';
    $('next').disabled = true;
    $('prev').disabled = true;
    closeDetail();
    clearAlert();
    showSignedIn();
  }

  // ---------- wiring ----------

  function start() {
    $('signin-form').addEventListener('submit', signIn);
    $('sign-out').addEventListener('click', signOut);
    $('filters').addEventListener('submit', search);
    $('clear').addEventListener('click', clearFilters);
    $('next').addEventListener('click', next);
    $('prev').addEventListener('click', prev);
    $('detail-close').addEventListener('click', closeDetail);
    $('verify').addEventListener('click', verify);
    $('bg-refresh').addEventListener('click', () => {
      loadBreakGlass();
      loadDeclared();
    });
    showSignedIn();
    if (token()) {
      loadBreakGlass();
      loadDeclared();
    }
  }

  if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', start);
  else start();
})();
