// The Squall demo: one SquallStream (/squall.js, the hub's browser client)
// on a channel, and a publish form. No framework, no build step;
// everything shown goes through textContent.
// Relative paths: the page also works with the hub mounted under a prefix.
import { SquallStream } from '../squall.js';

const MAX_SHOWN = 200;
const $ = (id) => document.getElementById(id);
const statusEl = $('status');
const log = $('log');
let stream = null;
let shown = 0;

function setState(state, text) {
  statusEl.dataset.state = state;
  statusEl.textContent = text;
  document.body.dataset.state = state;
}

function names(list) {
  return list.split(',').map((s) => s.trim()).filter(Boolean);
}

function subscribe() {
  if (stream) stream.close();
  const channel = $('sub-channel').value.trim();
  const url = new URL('events', location.href);
  url.searchParams.set('channel', channel);

  setState('connecting', `connecting to ${channel}…`);
  // SquallStream reconnects by itself with backoff and resumes from the
  // last id it saw; a 401 or 403 stops it with the hub's reason.
  const s = new SquallStream(url, {
    withCredentials: true,
    token: () => $('token').value.trim(),
    onState: (state) => {
      if (state === 'open') setState('open', `live on ${channel}`);
      else if (state === 'reconnecting') setState('connecting', `reconnecting to ${channel}…`);
    },
    onError: (err) => {
      if (err.fatal) setState('closed', `refused: ${err.message}`);
    },
  });
  stream = s;
  for (const name of new Set(['message', 'reset', ...names($('sub-events').value)])) {
    s.on(name, (data, meta) => show(name, data, meta.id));
  }
  const q = new URLSearchParams(location.search);
  q.set('channel', channel);
  history.replaceState(null, '', `?${q}`);
}

function pretty(data) {
  try {
    const v = JSON.parse(data);
    if (v !== null && typeof v === 'object') return JSON.stringify(v, null, 2);
  } catch (_) { /* not JSON: shown as sent */ }
  return data;
}

function el(tag, className, text) {
  const e = document.createElement(tag);
  if (className) e.className = className;
  if (text !== undefined) e.textContent = text;
  return e;
}

function show(name, data, id) {
  const li = el('li', name === 'reset' ? 'event reset' : 'event');
  li.dataset.event = name;
  if (id) li.dataset.id = id;
  const meta = el('div', 'meta');
  meta.append(el('span', 'name', name), el('time', 'time', new Date().toLocaleTimeString()));
  if (id) meta.append(el('span', 'id', `id ${id}`));
  li.append(meta, el('pre', 'data', pretty(data)));
  log.prepend(li);
  while (log.children.length > MAX_SHOWN) log.lastElementChild.remove();
  $('count').textContent = String(++shown);
  $('empty').hidden = true;
}

async function publish(ev) {
  ev.preventDefault();
  const out = $('pub-result');
  out.className = '';
  const text = $('pub-data').value;
  const body = { channel: $('pub-channel').value.trim() };
  if (document.querySelector('input[name="as"]:checked').value === 'json') {
    try {
      body.data = JSON.parse(text);
    } catch (err) {
      out.className = 'error';
      out.textContent = `not JSON: ${err.message}`;
      return;
    }
  } else {
    body.data = text;
  }
  const event = $('pub-event').value.trim();
  if (event) body.event = event;
  const headers = { 'Content-Type': 'application/json' };
  const token = $('token').value.trim();
  if (token) headers.Authorization = `Bearer ${token}`;
  try {
    const resp = await fetch('publish', { method: 'POST', headers, body: JSON.stringify(body), credentials: 'same-origin' });
    const answer = await resp.json().catch(() => ({}));
    if (resp.ok) {
      out.className = 'ok';
      out.textContent = `published, id ${answer.id}`;
    } else {
      out.className = 'error';
      out.textContent = `${resp.status}: ${answer.error || resp.statusText}`;
    }
  } catch (err) {
    out.className = 'error';
    out.textContent = `network error: ${err.message}`;
  }
}

const q = new URLSearchParams(location.search);
if (q.get('channel')) {
  $('sub-channel').value = q.get('channel');
  $('pub-channel').value = q.get('channel');
}
if (q.get('events')) $('sub-events').value = q.get('events');

$('subscribe').addEventListener('submit', (e) => { e.preventDefault(); subscribe(); });
$('publish').addEventListener('submit', publish);
$('clear').addEventListener('click', () => {
  log.replaceChildren();
  shown = 0;
  $('count').textContent = '0';
  $('empty').hidden = false;
});
subscribe();
