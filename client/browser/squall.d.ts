// Types of /squall.js, the browser client served by a Squall hub.

/** Defaults of the SquallStream options, in milliseconds and bytes. */
export declare const defaults: Readonly<{
  initialDelay: number;
  maxDelay: number;
  probeTimeout: number;
  maxRetries: number;
  maxIdBytes: number;
  maxJSONChars: number;
}>;

/**
 * The wait before reconnect number `attempt` (0 first): exponential backoff
 * with full jitter, uniform in [0, min(max, initial * 2^attempt)).
 */
export declare function backoffDelay(attempt: number, initial?: number, max?: number, random?: () => number): number;

/** A Retry-After header of delay-seconds, in ms; 0 for a date or anything else. */
export declare function retryAfter(value: string | null): number;

export type SquallErrorKind = "auth" | "refused" | "retries" | "network" | "token" | "parse" | "oversize";

/** What onError receives. `fatal` errors closed the stream. */
export declare class SquallError extends Error {
  readonly name: "SquallError";
  /** auth: 401/403; refused: another 4xx; retries: maxRetries reached; network: connection lost (retrying); token: the token callback failed; parse: data not JSON; oversize: an id or data over the bounds. */
  readonly kind: SquallErrorKind;
  /** The HTTP status of a refusal, else 0. */
  readonly status: number;
  /** True when the stream is closed for good (state "closed"). */
  readonly fatal: boolean;
  /** The event name and id, for parse and oversize errors. */
  readonly event: string;
  readonly id: string;
}

export type SquallState = "connecting" | "open" | "reconnecting" | "closed";

export interface SquallStreamOptions {
  /** Send cookies with a cross-origin stream (the hub's squall_token cookie). Default false. */
  withCredentials?: boolean;
  /** Called before every connect and reconnect; a non-empty result is sent as access_token. */
  token?: () => string | null | undefined | Promise<string | null | undefined>;
  /** JSON-parse the data of these event names, or of every event with true. Default none. */
  json?: boolean | readonly string[];
  /** Resume from this id on the first connect (e.g. one kept in sessionStorage). */
  lastEventId?: string;
  /** First backoff ceiling, in ms; it doubles per failed attempt. Default 1000. */
  initialDelay?: number;
  /** Largest backoff ceiling, in ms; also the longest Retry-After honoured. Default 30000. */
  maxDelay?: number;
  /** Consecutive failed reconnects before giving up (error kind "retries"). Default Infinity. */
  maxRetries?: number;
  /** How long the fetch that asks why a stream was refused may take, in ms. Default 5000. */
  probeTimeout?: number;
  /** Data longer than this is not JSON-parsed (error kind "oversize"). Default 4 Mi characters. */
  maxJSONChars?: number;
  onOpen?: () => void;
  onError?: (error: SquallError) => void;
  onState?: (state: SquallState) => void;
}

export interface SquallEventMeta {
  /** The event name, "message" for unnamed events. */
  readonly event: string;
  /** The event's id ("" when none). */
  readonly id: string;
  readonly raw: MessageEvent;
}

/** One subscription to a Squall hub that resumes after every reconnect. */
export declare class SquallStream {
  constructor(url: string | URL, options?: SquallStreamOptions);
  readonly state: SquallState;
  /** The id of the last event received, sent as lastEventId on every reconnect. */
  readonly lastEventId: string;
  /** The error that closed the stream, or null. */
  readonly error: SquallError | null;
  /** Calls handler for every event named name; returns a function that removes it. */
  on<T = unknown>(name: string, handler: (data: T, meta: SquallEventMeta) => void): () => void;
  /** Ends the stream for good. */
  close(): void;
  /** Connects again now (after a fatal error too), resuming from lastEventId. */
  reconnect(): void;
}

// The API of tempest-react-sdk's createEventStream, which this one
// replaces: same options, callbacks and controller, plus resume.

export type EventStreamStatus = "idle" | "connecting" | "open" | "closed" | "error";

export interface EventStreamMessage<T> {
  event: string;
  data: T;
  id?: string;
  raw: MessageEvent;
}

export interface CreateEventStreamOptions<T> {
  withCredentials?: boolean;
  namedEvents?: readonly string[];
  /** Default ["ping"]. */
  heartbeatEvents?: readonly string[];
  /** Default 10; 0 disables reconnects. */
  maxRetries?: number;
  /** Default 1000 ms. */
  initialBackoff?: number;
  /** Default 30000 ms. */
  maxBackoff?: number;
  /** Default: JSON, or the raw string when it is not JSON. */
  parser?: (raw: string) => T;
  onOpen?: () => void;
  onMessage?: (message: EventStreamMessage<T>) => void;
  /** Receives a SquallError where tempest-react-sdk passes the EventSource's error Event. */
  onError?: (error: SquallError) => void;
  onStatusChange?: (status: EventStreamStatus) => void;
}

export interface EventStreamController {
  close: () => void;
  reconnect: () => void;
  readonly status: EventStreamStatus;
}

export declare function createEventStream<T = unknown>(url: string, options?: CreateEventStreamOptions<T>): EventStreamController;
