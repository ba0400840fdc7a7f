// JSON-RPC 2.0 over HTTP to the node that served this page (POST /). See docs/api.md.

export const NOT_FOUND = -32004;
export const INVALID_PARAMS = -32602;

export class RpcError extends Error {
  constructor(code, message, data) {
    super(message);
    this.name = "RpcError";
    this.code = code;
    this.data = data;
  }
}

const ENDPOINT = new URL("/", location.href).toString();
const TIMEOUT_MS = 10000;
let nextId = 1;

async function post(body) {
  const ctl = new AbortController();
  const timer = setTimeout(() => ctl.abort(), TIMEOUT_MS);
  try {
    const res = await fetch(ENDPOINT, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify(body),
      signal: ctl.signal,
      cache: "no-store",
    });
    const text = await res.text();
    try {
      return JSON.parse(text);
    } catch (_) {
      throw new RpcError(-32700, `node answered HTTP ${res.status} with non-JSON`);
    }
  } catch (e) {
    if (e instanceof RpcError) throw e;
    throw new RpcError(0, e && e.name === "AbortError" ? "the node did not answer in time" : "cannot reach the node");
  } finally {
    clearTimeout(timer);
  }
}

function unwrap(reply) {
  if (reply && typeof reply === "object" && "result" in reply) return reply.result;
  const e = (reply && reply.error) || {};
  throw new RpcError(e.code ?? -32603, e.message || "malformed reply", e.data);
}

/** One call; resolves to `result`, rejects with RpcError. */
export async function call(method, params = []) {
  const reply = await post({ jsonrpc: "2.0", id: nextId++, method, params });
  return unwrap(reply);
}

/**
 * Several calls in one HTTP request. Resolves to one entry per call, in order:
 * `{ok: true, value}` or `{ok: false, error: RpcError}`.
 */
export async function batch(calls) {
  if (!calls.length) return [];
  const first = nextId;
  nextId += calls.length;
  const body = calls.map(([method, params], i) => ({ jsonrpc: "2.0", id: first + i, method, params: params ?? [] }));
  const replies = await post(body);
  if (!Array.isArray(replies)) {
    // The whole batch was refused (rate limit, body too large).
    const err = (() => {
      try {
        unwrap(replies);
      } catch (e) {
        return e;
      }
      return new RpcError(-32603, "malformed batch reply");
    })();
    return calls.map(() => ({ ok: false, error: err }));
  }
  const byId = new Map(replies.map((r) => [r && r.id, r]));
  return calls.map((_, i) => {
    try {
      return { ok: true, value: unwrap(byId.get(first + i)) };
    } catch (e) {
      return { ok: false, error: e };
    }
  });
}

export function isNotFound(e) {
  return e instanceof RpcError && e.code === NOT_FOUND;
}

/** The WebSocket URL of this node's API. */
export function wsUrl() {
  const u = new URL("/ws", location.href);
  u.protocol = location.protocol === "https:" ? "wss:" : "ws:";
  return u.toString();
}
