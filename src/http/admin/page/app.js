// The device-sync admin page: the live feed from /admin/events (server-sent events read with
// fetch, so the admin token goes in the Authorization header, never in a URL), and the two
// actions, a manual election and demoting the master, through the REST API.
'use strict';

const TOKEN_KEY = 'device-sync-admin-token';
const CHART_POINTS = 120;
const $ = (id) => document.getElementById(id);

const page = {
  token: sessionStorage.getItem(TOKEN_KEY),
  fleet: null,
  history: [], // [{received, sent}], oldest first
  feed: null, // the AbortController of the open feed
};

// ---- the token --------------------------------------------------------------------------

function askForToken(message) {
  page.token = null;
  sessionStorage.removeItem(TOKEN_KEY);
  $('board').hidden = true;
  $('login').hidden = false;
  $('login-error').textContent = message || '';
  $('token').focus();
}

$('login-form').addEventListener('submit', (event) => {
  event.preventDefault();
  page.token = $('token').value.trim();
  $('token').value = '';
  sessionStorage.setItem(TOKEN_KEY, page.token);
  open();
});

function authorized(init = {}) {
  const headers = Object.assign({}, init.headers, { Authorization: `Bearer ${page.token}` });
  return Object.assign({}, init, { headers });
}

// ---- the feed -----------------------------------------------------------------------------

function open() {
  if (!page.token) return askForToken();
  $('login').hidden = true;
  $('board').hidden = false;
  if (page.feed) page.feed.abort();
  page.feed = new AbortController();
  follow(page.feed.signal);
}

async function follow(signal) {
  try {
    const response = await fetch('/admin/events', authorized({ cache: 'no-store', signal }));
    if (response.status === 401 || response.status === 403) {
      return askForToken('That token does not open the admin page.');
    }
    if (!response.ok || !response.body) throw new Error(`the feed answered ${response.status}`);
    setLive(true);
    const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
    let buffer = '';
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buffer += value;
      let end;
      while ((end = buffer.indexOf('\n\n')) >= 0) {
        dispatch(buffer.slice(0, end));
        buffer = buffer.slice(end + 2);
      }
    }
  } catch (error) {
    if (signal.aborted) return;
    console.warn('admin feed:', error);
  }
  setLive(false);
  // The server restarted or the network dropped: follow it again.
  setTimeout(() => { if (!signal.aborted) open(); }, 2000);
}

function dispatch(block) {
  let name = 'message';
  const data = [];
  for (const line of block.split('\n')) {
    if (line.startsWith('event: ')) name = line.slice(7);
    else if (line.startsWith('data: ')) data.push(line.slice(6));
  }
  if (data.length === 0) return;
  const body = JSON.parse(data.join('\n'));
  if (name === 'fleet') showFleet(body);
  else if (name === 'stats') showFigures(body);
}

function setLive(on) {
  const live = $('live');
  live.textContent = on ? 'live' : 'offline';
  live.className = `badge ${on ? 'on' : 'off'}`;
}

// ---- rendering (text only: names and ids come from devices) ------------------------------

function cell(row, text) {
  const td = document.createElement('td');
  td.textContent = text === null || text === undefined ? '–' : String(text);
  row.appendChild(td);
  return td;
}

function when(timestamp) {
  if (!timestamp) return '–';
  const at = new Date(timestamp);
  const seconds = Math.round((Date.now() - at.getTime()) / 1000);
  if (seconds < 60) return `${Math.max(seconds, 0)} s ago`;
  if (seconds < 3600) return `${Math.round(seconds / 60)} min ago`;
  return at.toLocaleString();
}

function fill(tbody, rows, render) {
  tbody.replaceChildren(...rows.map((item) => {
    const tr = document.createElement('tr');
    render(tr, item);
    return tr;
  }));
}

function showFleet(fleet) {
  page.fleet = fleet;
  $('master').textContent = fleet.master || 'none';
  $('term').textContent = fleet.term;
  const health = $('health');
  health.textContent = fleet.health.status;
  health.className = `badge ${fleet.health.status}`;
  const db = fleet.health.database_error ? `${fleet.health.database} (${fleet.health.database_error})` : fleet.health.database;
  $('health-detail').textContent =
    `database ${db} · head seq ${fleet.health.head_seq} · oldest kept ${fleet.health.oldest_seq} · epoch ${fleet.health.epoch}` +
    (fleet.election_failed ? ' · the last election failed' : '');

  fill($('devices').querySelector('tbody'), fleet.devices, (tr, d) => {
    tr.dataset.device = d.device_id;
    if (d.device_id === fleet.master) tr.classList.add('master');
    if (!d.is_active) tr.classList.add('inactive');
    cell(tr, d.device_id);
    cell(tr, d.name);
    const role = cell(tr, d.role);
    role.className = 'role';
    if (d.role === 'master') role.replaceChildren(Object.assign(document.createElement('span'), { className: 'badge master', textContent: 'master' }));
    cell(tr, d.priority);
    cell(tr, d.is_active ? 'yes' : 'no').className = 'active';
    cell(tr, when(d.last_seen));
    cell(tr, d.sync_lag).className = 'lag';
    cell(tr, d.transport ? d.transport + (d.rtt_ms !== null ? ` · ${d.rtt_ms} ms` : '') : 'offline');
    const actions = cell(tr, '');
    if (d.device_id === fleet.master) {
      const demote = Object.assign(document.createElement('button'), { className: 'small demote', textContent: 'Demote' });
      demote.addEventListener('click', () => act(demote, 'PUT', `/device/roles/${encodeURIComponent(d.device_id)}`,
        { role: 'client', reason: 'demoted from the admin page' }));
      actions.replaceChildren(demote);
    }
  });
  $('no-devices').hidden = fleet.devices.length > 0;

  // The candidates for the election form, keeping the choice.
  const select = $('preferred');
  const chosen = select.value;
  const options = [Object.assign(document.createElement('option'), { value: '', textContent: 'highest priority' })];
  for (const d of fleet.devices.filter((d) => d.is_active)) {
    options.push(Object.assign(document.createElement('option'), { value: d.device_id, textContent: d.name ? `${d.device_id} (${d.name})` : d.device_id }));
  }
  select.replaceChildren(...options);
  if (options.some((o) => o.value === chosen)) select.value = chosen;

  fill($('elections').querySelector('tbody'), fleet.elections || [], (tr, e) => {
    cell(tr, when(e.election_timestamp));
    cell(tr, e.term);
    cell(tr, e.new_master_id);
    cell(tr, e.previous_master_id);
    cell(tr, e.election_reason);
  });
  fill($('audit').querySelector('tbody'), fleet.audit || [], (tr, a) => {
    cell(tr, when(a.timestamp));
    cell(tr, a.event_type);
    cell(tr, a.device_id);
    cell(tr, a.status);
    cell(tr, [a.operation, a.details].filter(Boolean).join(': '));
  });
}

function showFigures(figures) {
  $('sessions').textContent = `${figures.sessions_ws} ws · ${figures.sessions_socketio} socket.io`;
  page.history.push({ received: figures.received_per_second, sent: figures.sent_per_second });
  if (page.history.length > CHART_POINTS) page.history.shift();
  $('rates').textContent = `now ${figures.received_per_second} in · ${figures.sent_per_second} out`;
  drawChart();
}

function drawChart() {
  const canvas = $('chart');
  const g = canvas.getContext('2d');
  const { width, height } = canvas;
  g.clearRect(0, 0, width, height);
  const top = Math.max(1, ...page.history.map((p) => Math.max(p.received, p.sent)));
  g.fillStyle = '#667085';
  g.font = '11px system-ui, sans-serif';
  g.fillText(`${top}/s`, 4, 12);
  const step = width / (CHART_POINTS - 1);
  const offset = CHART_POINTS - page.history.length;
  for (const [key, colour] of [['received', '#2f6fdb'], ['sent', '#c2410c']]) {
    g.strokeStyle = colour;
    g.lineWidth = 1.5;
    g.beginPath();
    page.history.forEach((point, i) => {
      const x = (offset + i) * step;
      const y = height - 4 - (point[key] / top) * (height - 20);
      if (i === 0) g.moveTo(x, y); else g.lineTo(x, y);
    });
    g.stroke();
  }
}

// ---- the actions ------------------------------------------------------------------------------

$('elect-form').addEventListener('submit', (event) => {
  event.preventDefault();
  const preferred = $('preferred').value;
  const body = { reason: 'manual', initiated_by: 'admin-page' };
  if (preferred) body.preferred_master = preferred;
  act($('elect'), 'POST', '/master-election', body);
});

// A device's own token: issued (shown once, with its QR code) or revoked.
$('enrol-form').addEventListener('submit', async (event) => {
  event.preventDefault();
  const device = $('enrol-device').value.trim();
  const answer = await tokenCall($('enrol'), 'POST', device);
  if (!answer) return;
  $('enrol-token').textContent = answer.token;
  $('enrol-qr').src = `data:image/svg+xml;charset=utf-8,${encodeURIComponent(answer.qr_svg)}`;
  $('enrolled').hidden = false;
  $('enrol-result').textContent = `A token for ${answer.device_id} was issued.`;
});

$('revoke').addEventListener('click', async () => {
  const device = $('enrol-device').value.trim();
  if (!device) return;
  const answer = await tokenCall($('revoke'), 'DELETE', device);
  if (!answer) return;
  $('enrolled').hidden = true;
  $('enrol-token').textContent = '';
  $('enrol-result').textContent = `${answer.revoked} token(s) of ${answer.device_id} revoked; its sessions are closed.`;
});

async function tokenCall(button, method, device) {
  const result = $('enrol-result');
  button.disabled = true;
  result.className = '';
  result.textContent = 'Working…';
  try {
    const response = await fetch(`/device/${encodeURIComponent(device)}/tokens`, authorized({ method }));
    const answer = await response.json().catch(() => ({}));
    if (response.status === 401) { askForToken('That token does not open the admin page.'); return null; }
    if (!response.ok) {
      result.className = 'error';
      result.textContent = `${answer.code || response.status}: ${answer.message || 'the server refused'}`;
      return null;
    }
    return answer;
  } catch (error) {
    result.className = 'error';
    result.textContent = `The server could not be reached (${error.message}).`;
    return null;
  } finally {
    button.disabled = false;
  }
}

async function act(button, method, path, body) {
  const result = $('action-result');
  button.disabled = true;
  result.className = '';
  result.textContent = 'Working…';
  try {
    const response = await fetch(path, authorized({
      method,
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify(body),
    }));
    const answer = await response.json().catch(() => ({}));
    if (response.status === 401 || response.status === 403) return askForToken('That token does not open the admin page.');
    if (!response.ok) {
      result.className = 'error';
      result.textContent = `${answer.code || response.status}: ${answer.message || 'the server refused'}`;
    } else if (answer.new_master_id) {
      result.textContent = `Master is now ${answer.new_master_id} (term ${answer.term}).`;
    } else {
      result.textContent = `Done: ${answer.device_id || ''} is ${answer.new_role || 'changed'}.`;
    }
  } catch (error) {
    result.className = 'error';
    result.textContent = `The server could not be reached (${error.message}).`;
  } finally {
    button.disabled = false;
  }
}

open();
