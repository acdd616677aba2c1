// Checks every request and WebSocket upgrade passes before any handler sees it, against the attacks a web page the
// operator happens to open can make on a coordinator it cannot reach by itself:
// - DNS rebinding: a name the attacker controls is re-pointed at 127.0.0.1, so the browser treats our server as
//   the attacker's origin. The Host header still carries the attacker's name: only names we serve are answered.
// - Cross-site WebSocket hijacking: browsers let any page open a WebSocket anywhere and send its Origin; an upgrade
//   whose Origin is not this server's own is refused before the handshake. Agents send no Origin and pass.
// - CSRF: a cross-site form or no-cors fetch can only POST text/plain, form bodies or nothing; JSON needs a CORS
//   preflight we never grant. So a POST must say `Content-Type: application/json`. A bodiless POST may instead carry
//   an Authorization header (which a cross-site page cannot add either) or no cookie at all (then it carries no
//   ambient credential to abuse, and is answered like any caller without one: 401 for an operator procedure).
// Pure functions over header strings; runtime.ts applies them and answers refusals through the error table.
import type { IncomingHttpHeaders } from 'node:http';

export interface GuardConfig {
  /** Host names (lower case, no port, IPv6 without brackets) this server answers to. */
  hosts: ReadonlySet<string>;
  /** Origins always accepted on WebSocket upgrades and POSTs (HYPERGPU_ALLOWED_ORIGINS), as `scheme://host[:port]`. */
  origins: ReadonlySet<string>;
}

export interface Refusal {
  code: 'HOST_NOT_ALLOWED' | 'ORIGIN_NOT_ALLOWED' | 'UNSUPPORTED_MEDIA_TYPE';
  message: string;
}

/** localhost forms are always served: rebinding can only ever point a name at them, never make them the name. */
export const LOCAL_HOSTS = ['localhost', '127.0.0.1', '::1'] as const;

export function guardConfig(options: { boundHost: string; publicHosts: readonly string[]; allowedOrigins: readonly string[] }): GuardConfig {
  const hosts = new Set<string>(LOCAL_HOSTS);
  const wildcard = options.boundHost === '0.0.0.0' || options.boundHost === '::' || options.boundHost === '';
  if (!wildcard) hosts.add(normalizeHostname(options.boundHost));
  for (const name of options.publicHosts) if (name.trim()) hosts.add(normalizeHostname(hostnameOf(name.trim()) ?? name.trim()));
  const origins = new Set<string>();
  for (const origin of options.allowedOrigins) {
    const parsed = parseOrigin(origin.trim());
    if (parsed) origins.add(parsed.origin);
  }
  return { hosts, origins };
}

function normalizeHostname(name: string): string {
  return name.toLowerCase().replace(/^\[(.*)\]$/, '$1').replace(/\.$/, '');
}

/** The host name of a Host header value (`name`, `name:port`, `[v6]:port`), or null when it is not one. */
function hostnameOf(host: string): string | null {
  try {
    const url = new URL(`http://${host}`);
    if (url.username || url.password || url.pathname !== '/' || url.search || url.hash) return null;
    return normalizeHostname(url.hostname);
  } catch {
    return null;
  }
}

const IPV4 = /^(?:\d{1,3}\.){3}\d{1,3}$/;

/**
 * Whether a Host header names this server. IP literals always pass: rebinding needs a name the attacker controls,
 * and a page whose origin is an address of this machine is this server's own page. A missing Host (HTTP/1.0, a
 * bare health probe) passes too: browsers always send one.
 */
export function checkHost(hostHeader: string | undefined, config: GuardConfig): Refusal | null {
  if (hostHeader === undefined) return null;
  const name = hostnameOf(hostHeader);
  if (name !== null && (config.hosts.has(name) || IPV4.test(name) || name.includes(':'))) return null;
  return {
    code: 'HOST_NOT_ALLOWED',
    message:
      `this server does not answer to the host name in "Host: ${hostHeader.slice(0, 100)}" (a guard against DNS rebinding); ` +
      'if that is a name of this machine, add it with --public-host NAME or HYPERGPU_PUBLIC_HOSTS=name1,name2',
  };
}

function parseOrigin(origin: string): URL | null {
  try {
    const url = new URL(origin);
    return url.protocol === 'http:' || url.protocol === 'https:' ? url : null;
  } catch {
    return null;
  }
}

/**
 * Whether a request with this Origin header may proceed: no Origin (not a browser) passes; an Origin passes when it
 * is listed in HYPERGPU_ALLOWED_ORIGINS or is the very host the request was sent to (scheme aside: a TLS proxy in
 * front changes it), that host being one this server answers to. Anything else, `null` included, is refused.
 */
export function checkOrigin(originHeader: string | undefined, hostHeader: string | undefined, config: GuardConfig): Refusal | null {
  if (originHeader === undefined) return null;
  const origin = parseOrigin(originHeader);
  if (origin && config.origins.has(origin.origin)) return null;
  if (origin && hostHeader !== undefined && origin.host.toLowerCase() === hostHeader.toLowerCase() && checkHost(hostHeader, config) === null) {
    return null;
  }
  return {
    code: 'ORIGIN_NOT_ALLOWED',
    message:
      `requests from pages at "${originHeader.slice(0, 100)}" are refused (a guard against cross-site requests); ` +
      'if that page is yours, add its origin to HYPERGPU_ALLOWED_ORIGINS (comma-separated, e.g. https://train.example.com)',
  };
}

/** A POST must carry JSON; see the top of this file for when a bodiless POST passes. */
export function checkPostBody(method: string | undefined, headers: IncomingHttpHeaders): Refusal | null {
  if (method !== 'POST') return null;
  const type = headers['content-type'];
  if (type !== undefined) {
    if (type.split(';')[0].trim().toLowerCase() === 'application/json') return null;
  } else {
    const bodiless = headers['transfer-encoding'] === undefined && (headers['content-length'] === undefined || headers['content-length'] === '0');
    if (bodiless && (headers.authorization !== undefined || headers.cookie === undefined)) return null;
  }
  return {
    code: 'UNSUPPORTED_MEDIA_TYPE',
    message:
      `POST needs "Content-Type: application/json"${type === undefined ? ' (none was sent)' : ` (got ${type.slice(0, 100)})`}; ` +
      'web pages cannot send that to another site without asking first, which is what keeps them from operating this server',
  };
}
