// @ts-self-types="./squall.d.ts"
// squall.js: the browser client of a Squall hub, served by the hub at
// GET /squall.js. An ES module with no dependency and no build step.
//
// EventSource resumes with Last-Event-ID only while it reconnects by
// itself; any client that closes it and opens a new one (after a fatal
// error, a page restored from the back/forward cache, its own backoff)
// starts from live and silently loses what was published meanwhile.
// SquallStream owns every reconnect instead: it keeps the last id it saw
// and sends it as the lastEventId query parameter of each new EventSource,
// which the hub reads when there is no Last-Event-ID header.
//
// Everything the server controls is treated as hostile: ids and data are
// bounded, JSON is only parsed (never evaluated) and handlers are looked
// up in a Map, so no event name or JSON key reaches an object prototype.

/** Defaults of the options of SquallStream, in milliseconds and bytes. */
export const defaults = Object.freeze({
  initialDelay: 1000,
  maxDelay: 30000,
  probeTimeout: 5000,
  maxRetries: Infinity,
  // The hub refuses a Last-Event-ID over 8 KiB: a longer id could never
  // resume, so it is not kept.
  maxIdBytes: 8192,
  maxJSONChars: 4 << 20,
});

// A connection that lived this long, or delivered an event, was a
// success: the next loss starts the backoff over.
const STABLE_MS = 5000;
// The reason of a refusal shown to the page is cut to this many characters;
// the probe reads at most PROBE_BODY bytes of the answer.
const MAX_REASON = 300;
const PROBE_BODY = 4096;
// A token longer than this cannot fit in a URL that proxies accept.
const MAX_TOKEN = 16384;
// How long the token callback may take before the attempt counts as failed.
const TOKEN_TIMEOUT = 10000;

/**
 * backoffDelay returns the wait before reconnect number attempt (0 first):
 * exponential backoff with full jitter, uniform in [0, min(max, initial*2^attempt)).
 */
export function backoffDelay(attempt, initial = defaults.initialDelay, max = defaults.maxDelay, random = Math.random) {
  const n = Math.max(0, Math.min(Number(attempt) || 0, 52));
  const ceiling = Math.max(0, Math.min(Number(max) || 0, (Number(initial) || 0) * 2 ** n));
  const r = Math.min(Math.max(Number(random()) || 0, 0), 1);
  return Math.min(Math.floor(r * ceiling), Math.max(0, ceiling - 1));
}

/** SquallError is what onError receives. */
export class SquallError extends Error {
  /**
   * @param {string} kind "auth", "refused", "retries", "network", "token", "parse" or "oversize"
   * @param {string} message shown to people
   * @param {{status?: number, fatal?: boolean, event?: string, id?: string}} [details]
   */
  constructor(kind, message, details = {}) {
    super(message);
    this.name = 'SquallError';
    this.kind = kind;
    this.status = details.status ?? 0;
    this.fatal = details.fatal ?? false;
    this.event = details.event ?? '';
    this.id = details.id ?? '';
  }
}

const utf8 = new TextEncoder();

function byteLength(s) {
  // Most ids are short: count exactly only when the length could matter.
  return s.length * 3 <= defaults.maxIdBytes ? s.length : utf8.encode(s).length;
}

function positive(v, fallback) {
  const n = Number(v);
  return Number.isFinite(n) && n >= 0 ? n : fallback;
}

/**
 * SquallStream is one subscription to a Squall hub over EventSource that
 * resumes after every reconnect. See squall.d.ts for the options.
 */
export class SquallStream {
  #url;
  #opts;
  #handlers = new Map(); // event name -> Set of handlers
  #json; // true, or a Set of event names whose data is JSON
  #es = null;
  #timer = 0;
  #gen = 0;
  #attempt = 0;
  #state = 'connecting';
  #error = null;
  #lastEventId = '';
  #openedAt = 0;
  #delivered = false;
  #probe = null;
  #listening = false;
  #dispatch = (e) => this.#deliver(e);
  #onWindow = (e) => this.#windowEvent(e);

  /**
   * @param {string | URL} url the hub's /events URL, with its channel parameters
   * @param {object} [options] see squall.d.ts
   */
  constructor(url, options = {}) {
    this.#url = new URL(url, globalThis.location?.href);
    const o = options ?? {};
    this.#opts = {
      withCredentials: Boolean(o.withCredentials),
      token: typeof o.token === 'function' ? o.token : null,
      initialDelay: positive(o.initialDelay, defaults.initialDelay),
      maxDelay: positive(o.maxDelay, defaults.maxDelay),
      maxRetries: positive(o.maxRetries, defaults.maxRetries),
      probeTimeout: positive(o.probeTimeout, defaults.probeTimeout),
      maxJSONChars: positive(o.maxJSONChars, defaults.maxJSONChars),
      onOpen: typeof o.onOpen === 'function' ? o.onOpen : null,
      onError: typeof o.onError === 'function' ? o.onError : null,
      onState: typeof o.onState === 'function' ? o.onState : null,
    };
    this.#json = o.json === true ? true : new Set(Array.isArray(o.json) ? o.json.map(String) : []);
    if (typeof o.lastEventId === 'string' && this.#fits(o.lastEventId)) this.#lastEventId = o.lastEventId;
    this.#listen();
    this.#connect();
  }

  /** The connection state: "connecting", "open", "reconnecting" or "closed". */
  get state() { return this.#state; }

  /** The id of the last event received, sent as lastEventId on every reconnect. */
  get lastEventId() { return this.#lastEventId; }

  /** The error that closed the stream, or null. */
  get error() { return this.#error; }

  /**
   * on calls handler(data, {event, id, raw}) for every event named name
   * ("message" for unnamed ones) and returns a function that removes it.
   */
  on(name, handler) {
    if (typeof name !== 'string' || name === '' || name === 'open' || name === 'error') {
      throw new TypeError('squall: on() takes an event name other than "open" and "error" (use onOpen and onError)');
    }
    if (typeof handler !== 'function') throw new TypeError('squall: on() takes a function');
    let set = this.#handlers.get(name);
    if (!set) {
      set = new Set();
      this.#handlers.set(name, set);
      this.#es?.addEventListener(name, this.#dispatch);
    }
    set.add(handler);
    return () => { set.delete(handler); };
  }

  /** close ends the stream for good; no callback is called afterwards. */
  close() {
    this.#halt();
    this.#unlisten();
    this.#setState('closed');
  }

  /** reconnect opens a new connection now (after a fatal error too), resuming from lastEventId. */
  reconnect() {
    this.#halt();
    this.#error = null;
    this.#attempt = 0;
    this.#listen();
    this.#connect();
  }

  #fits(id) { return byteLength(id) <= defaults.maxIdBytes; }

  #halt() {
    this.#gen++;
    clearTimeout(this.#timer);
    this.#timer = 0;
    this.#probe?.abort();
    this.#probe = null;
    if (this.#es) {
      this.#es.close();
      this.#es = null;
    }
  }

  #setState(s) {
    if (this.#state === s) return;
    this.#state = s;
    this.#call(this.#opts.onState, s);
  }

  #call(f, ...args) {
    if (!f) return;
    try {
      f(...args);
    } catch (err) {
      // A page's callback must not break the stream: report and go on.
      globalThis.reportError?.(err);
    }
  }

  #report(err) { this.#call(this.#opts.onError, err); }

  async #connect() {
    const gen = ++this.#gen;
    this.#setState(this.#state === 'open' || this.#state === 'closed' ? 'connecting' : this.#state);
    const url = new URL(this.#url);
    if (this.#lastEventId !== '') url.searchParams.set('lastEventId', this.#lastEventId);
    if (this.#opts.token) {
      let token;
      let timer = 0;
      try {
        // A callback that never settles must not stall the stream forever.
        token = await Promise.race([
          this.#opts.token(),
          new Promise((_, reject) => { timer = setTimeout(() => reject(new Error(`no answer in ${TOKEN_TIMEOUT} ms`)), TOKEN_TIMEOUT); }),
        ]);
      } catch (err) {
        clearTimeout(timer);
        if (gen !== this.#gen) return;
        this.#report(new SquallError('token', `token callback failed: ${err?.message ?? err}`));
        this.#retry();
        return;
      }
      clearTimeout(timer);
      if (gen !== this.#gen) return; // closed or restarted meanwhile
      if (token !== undefined && token !== null && token !== '') {
        token = String(token);
        if (token.length > MAX_TOKEN) {
          this.#stop(new SquallError('token', `token over ${MAX_TOKEN} characters`, { fatal: true }));
          return;
        }
        url.searchParams.set('access_token', token);
      }
    }
    const es = new EventSource(url, { withCredentials: this.#opts.withCredentials });
    this.#es = es;
    this.#openedAt = 0;
    this.#delivered = false;
    es.onopen = () => {
      if (es !== this.#es) return;
      this.#openedAt = Date.now();
      this.#setState('open');
      this.#call(this.#opts.onOpen);
    };
    es.onerror = () => {
      if (es !== this.#es) return;
      this.#lost(es.readyState === EventSource.CLOSED, url, gen);
    };
    for (const name of this.#handlers.keys()) es.addEventListener(name, this.#dispatch);
  }

  // lost handles the end of a connection. EventSource would come back by
  // itself after a network error, but with the URL (and token) it had, and
  // after a refusal it gives up without telling why: so every loss is
  // handled here, with a fresh URL and the hub's answer when it refused.
  async #lost(refused, url, gen) {
    this.#es.close();
    this.#es = null;
    if (this.#delivered || (this.#openedAt && Date.now() - this.#openedAt >= STABLE_MS)) this.#attempt = 0;
    this.#setState('reconnecting');
    let after = 0;
    if (refused) {
      const answer = await this.#ask(url);
      if (gen !== this.#gen) return;
      if (answer.err) {
        this.#stop(answer.err);
        return;
      }
      after = answer.after;
    }
    if (this.#attempt >= this.#opts.maxRetries) {
      this.#stop(new SquallError('retries', `gave up after ${this.#attempt} reconnects`, { fatal: true }));
      return;
    }
    this.#report(new SquallError('network', 'connection lost; reconnecting'));
    if (gen !== this.#gen) return; // the page called close() or reconnect() from onError
    this.#retry(after);
  }

  // ask fetches url once to learn why the hub refused it (EventSource hides
  // the status). It returns the error that must stop retrying, if any, and
  // how long the hub asked the client to wait (Retry-After), in ms.
  async #ask(url) {
    const ctl = new AbortController();
    this.#probe = ctl;
    const timer = setTimeout(() => ctl.abort(), this.#opts.probeTimeout);
    try {
      const resp = await fetch(url, {
        credentials: this.#opts.withCredentials ? 'include' : 'same-origin',
        headers: { Accept: 'text/event-stream' },
        cache: 'no-store',
        signal: ctl.signal,
      });
      if (resp.ok) return { err: null, after: 0 }; // a stream again: the refusal was transient
      const s = resp.status;
      const permanent = s === 401 || s === 403 || (s >= 400 && s < 500 && s !== 408 && s !== 429);
      if (!permanent) return { err: null, after: retryAfter(resp.headers.get('Retry-After')) };
      const reason = await readReason(resp);
      const err = new SquallError(s === 401 || s === 403 ? 'auth' : 'refused', reason || `HTTP ${s}`, { status: s, fatal: true });
      return { err, after: 0 };
    } catch {
      return { err: null, after: 0 }; // unreachable, or too slow: retry with backoff
    } finally {
      clearTimeout(timer);
      ctl.abort(); // ends a probe that opened a stream
      if (this.#probe === ctl) this.#probe = null;
    }
  }

  // retry schedules the next connect after the backoff, or after the
  // hub's Retry-After when that is longer, never longer than maxDelay.
  #retry(after = 0) {
    if (this.#attempt >= this.#opts.maxRetries) {
      this.#stop(new SquallError('retries', `gave up after ${this.#attempt} reconnects`, { fatal: true }));
      return;
    }
    const backoff = backoffDelay(this.#attempt++, this.#opts.initialDelay, this.#opts.maxDelay);
    const delay = Math.max(backoff, Math.min(after, this.#opts.maxDelay));
    this.#setState('reconnecting');
    clearTimeout(this.#timer);
    this.#timer = setTimeout(() => {
      this.#timer = 0;
      this.#connect();
    }, delay);
  }

  #stop(err) {
    this.#halt();
    this.#unlisten();
    this.#error = err;
    this.#setState('closed');
    this.#report(err);
  }

  #deliver(e) {
    if (e.target !== this.#es) return;
    const name = e.type;
    const id = typeof e.lastEventId === 'string' ? e.lastEventId : '';
    if (id !== this.#lastEventId) {
      if (this.#fits(id)) this.#lastEventId = id;
      else this.#report(new SquallError('oversize', `event id over ${defaults.maxIdBytes} bytes: not kept for resume`, { event: name }));
    }
    this.#delivered = true;
    const set = this.#handlers.get(name);
    if (!set || set.size === 0) return;
    let data = e.data;
    if (this.#json === true || this.#json.has(name)) {
      if (data.length > this.#opts.maxJSONChars) {
        this.#report(new SquallError('oversize', `event data over ${this.#opts.maxJSONChars} characters: not parsed`, { event: name, id }));
        return;
      }
      try {
        data = JSON.parse(data);
      } catch (err) {
        this.#report(new SquallError('parse', `event data is not JSON: ${err.message}`, { event: name, id }));
        return;
      }
    }
    const meta = Object.freeze({ event: name, id, raw: e });
    for (const h of [...set]) this.#call(h, data, meta);
  }

  #listen() {
    if (this.#listening || typeof globalThis.addEventListener !== 'function') return;
    this.#listening = true;
    for (const t of ['online', 'pageshow', 'pagehide', 'freeze', 'resume']) globalThis.addEventListener(t, this.#onWindow);
    globalThis.document?.addEventListener('visibilitychange', this.#onWindow);
  }

  #unlisten() {
    if (!this.#listening) return;
    this.#listening = false;
    for (const t of ['online', 'pageshow', 'pagehide', 'freeze', 'resume']) globalThis.removeEventListener(t, this.#onWindow);
    globalThis.document?.removeEventListener('visibilitychange', this.#onWindow);
  }

  // windowEvent closes the connection while the page is frozen or in the
  // back/forward cache, and reconnects at once (resuming) when the page
  // comes back, goes online or becomes visible while waiting to reconnect.
  #windowEvent(e) {
    if (this.#state === 'closed') return;
    switch (e.type) {
      case 'pagehide':
        if (e.persisted) this.#freeze();
        return;
      case 'freeze':
        this.#freeze();
        return;
      case 'pageshow':
        if (e.persisted) this.#resume();
        return;
      case 'resume':
        this.#resume();
        return;
      case 'visibilitychange':
        if (globalThis.document?.visibilityState === 'visible' && this.#state === 'reconnecting') this.#resume();
        return;
      case 'online':
        if (this.#state === 'reconnecting') this.#resume();
    }
  }

  #freeze() {
    this.#halt();
    this.#setState('reconnecting');
  }

  #resume() {
    if (this.#es || this.#probe) return; // connected, or asking the hub
    this.#halt();
    this.#connect();
  }
}

// retryAfter reads a Retry-After of delay-seconds, in ms; a date, or a
// value that is not a small number, counts as none.
export function retryAfter(value) {
  if (typeof value !== 'string' || !/^\d{1,6}$/.test(value.trim())) return 0;
  return Number(value.trim()) * 1000;
}

async function readReason(resp) {
  try {
    const reader = resp.body?.getReader();
    if (!reader) return '';
    const chunks = [];
    let n = 0;
    while (n < PROBE_BODY) {
      const { done, value } = await reader.read();
      if (done) break;
      chunks.push(value);
      n += value.length;
    }
    reader.cancel().catch(() => {});
    const bytes = new Uint8Array(Math.min(n, PROBE_BODY));
    let at = 0;
    for (const c of chunks) {
      const part = c.subarray(0, bytes.length - at);
      bytes.set(part, at);
      at += part.length;
    }
    const text = new TextDecoder().decode(bytes);
    let reason = text;
    try {
      const v = JSON.parse(text);
      if (v !== null && typeof v === 'object' && typeof v.error === 'string') reason = v.error;
    } catch { /* not the hub's JSON: shown as text */ }
    return reason.slice(0, MAX_REASON).trim();
  } catch {
    return '';
  }
}

function defaultParser(raw) {
  try {
    return JSON.parse(raw);
  } catch {
    return raw;
  }
}

/**
 * createEventStream takes the options and callbacks of tempest-react-sdk's
 * function of the same name, and resumes with lastEventId where that one
 * starts over from live.
 */
export function createEventStream(url, options = {}) {
  const o = options ?? {};
  const parser = typeof o.parser === 'function' ? o.parser : defaultParser;
  const heartbeats = new Set(Array.isArray(o.heartbeatEvents) ? o.heartbeatEvents.map(String) : ['ping']);
  const onMessage = typeof o.onMessage === 'function' ? o.onMessage : null;
  const onStatusChange = typeof o.onStatusChange === 'function' ? o.onStatusChange : null;
  const onError = typeof o.onError === 'function' ? o.onError : null;
  let status = 'idle';
  let closing = false;
  const setStatus = (next) => {
    if (status === next) return;
    status = next;
    onStatusChange?.(next);
  };
  let stream = null;
  stream = new SquallStream(url, {
    withCredentials: o.withCredentials,
    maxRetries: o.maxRetries ?? 10,
    initialDelay: o.initialBackoff ?? 1000,
    maxDelay: o.maxBackoff ?? 30000,
    onOpen: o.onOpen,
    onError: (err) => onError?.(err),
    onState: (s) => {
      if (s === 'open' || s === 'connecting') setStatus(s);
      else if (s === 'reconnecting') setStatus('closed');
      else if (s === 'closed') setStatus(closing || !stream?.error ? 'closed' : 'error');
    },
  });
  // SquallStream connects in its constructor, before onState could see
  // the stream: the first status is set here.
  setStatus(stream.state === 'open' ? 'open' : 'connecting');
  const names = new Set(['message', ...(Array.isArray(o.namedEvents) ? o.namedEvents.map(String) : [])]);
  for (const name of names) {
    if (heartbeats.has(name) || name === 'open' || name === 'error' || name === '') continue;
    stream.on(name, (raw, meta) => onMessage?.({ event: name, data: parser(raw), id: meta.id || undefined, raw: meta.raw }));
  }
  // Heartbeat events are listened to only so that their ids are kept.
  for (const name of heartbeats) if (name !== '' && name !== 'open' && name !== 'error') stream.on(name, () => {});
  return {
    close() {
      closing = true;
      stream.close();
    },
    reconnect() {
      closing = false;
      stream.reconnect();
    },
    get status() { return status; },
  };
}
