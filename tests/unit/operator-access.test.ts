// The operator credential and the request guards, without sockets: the admin token store (hashed, 0600, shown
// once, reset on request), sessions (hashed ids, expiry), reading credentials from headers, the access decision,
// and the Host / Origin / Content-Type checks that stop DNS rebinding, cross-site WebSockets and CSRF.
import { mkdtempSync, readFileSync, statSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { ADMIN_TOKEN_FILE, createOperatorAuth, SESSION_TTL_MS } from '../../src/server/adapters/operator-auth';
import { checkHost, checkOrigin, checkPostBody, guardConfig } from '../../src/server/api/request-guard';
import { checkAccess, identify, readCookie, readCredential } from '../../src/server/core/operator-access';

const tempDir = () => mkdtempSync(path.join(os.tmpdir(), 'hypergpu-auth-'));

describe('admin token store', () => {
  it('creates a token at first start, keeps only its sha256 in a 0600 file, and never hands it out again', () => {
    const dir = tempDir();
    const first = createOperatorAuth({ dataDir: dir });
    expect(first.source).toBe('created');
    expect(first.createdToken).toMatch(/^hgpu_[\w-]{43}$/);
    const file = path.join(dir, ADMIN_TOKEN_FILE);
    expect(statSync(file).mode & 0o777).toBe(0o600);
    const stored = readFileSync(file, 'utf8');
    expect(stored.trim()).toMatch(/^[0-9a-f]{64}$/);
    expect(stored).not.toContain(first.createdToken!.slice(5));
    const second = createOperatorAuth({ dataDir: dir });
    expect(second).toMatchObject({ source: 'file', createdToken: null });
    expect(second.verifyToken(first.createdToken!)).toBe(true);
    expect(second.verifyToken(`${first.createdToken!}x`)).toBe(false);
    expect(second.verifyToken('')).toBe(false);
  });

  it('replaces the token on reset, and takes HYPERGPU_ADMIN_TOKEN over the file (refusing a short one)', () => {
    const dir = tempDir();
    const first = createOperatorAuth({ dataDir: dir });
    const reset = createOperatorAuth({ dataDir: dir, reset: true });
    expect(reset.source).toBe('created');
    expect(reset.createdToken).not.toBe(first.createdToken);
    expect(createOperatorAuth({ dataDir: dir }).verifyToken(first.createdToken!)).toBe(false);
    const env = createOperatorAuth({ dataDir: dir, envToken: 'a-long-enough-admin-token' });
    expect(env).toMatchObject({ source: 'env', createdToken: null });
    expect(env.verifyToken('a-long-enough-admin-token')).toBe(true);
    expect(env.verifyToken(reset.createdToken!)).toBe(false);
    expect(() => createOperatorAuth({ dataDir: dir, envToken: 'short' })).toThrow(/at least|shorter/);
  });

  it('opens sessions that expire after 12 hours and close on sign-out', () => {
    let now = 1_000_000;
    const auth = createOperatorAuth({ dataDir: tempDir(), envToken: 'a-long-enough-admin-token', now: () => now });
    const session = auth.openSession();
    expect(session.maxAgeSeconds).toBe(12 * 3600);
    expect(auth.sessionValid(session.id)).toBe(true);
    expect(auth.sessionValid(`${session.id}x`)).toBe(false);
    now += SESSION_TTL_MS;
    expect(auth.sessionValid(session.id)).toBe(false);
    const other = auth.openSession();
    auth.closeSession(other.id);
    expect(auth.sessionValid(other.id)).toBe(false);
  });
});

describe('credentials and access', () => {
  const auth = createOperatorAuth({ dataDir: tempDir(), envToken: 'the-right-admin-token' });
  const session = auth.openSession().id;

  it('reads a bearer token and the session cookie from headers', () => {
    expect(readCredential({ authorization: 'Bearer abc' })).toEqual({ bearer: 'abc', malformed: false, session: null });
    expect(readCredential({ authorization: 'Basic abc' }).malformed).toBe(true);
    expect(readCookie('a=1; hypergpu_session=xyz; b=2', 'hypergpu_session')).toBe('xyz');
    expect(readCookie('hypergpu_sessionx=1', 'hypergpu_session')).toBeNull();
  });

  it('tells no credential, a wrong one and a valid one apart', () => {
    expect(identify(readCredential({}), auth)).toEqual({ kind: 'anonymous' });
    expect(identify(readCredential({ authorization: 'Bearer nope' }), auth).kind).toBe('invalid');
    expect(identify(readCredential({ authorization: 'Bearer the-right-admin-token' }), auth)).toEqual({ kind: 'operator', via: 'token' });
    expect(identify(readCredential({ cookie: `hypergpu_session=${session}` }), auth)).toEqual({ kind: 'operator', via: 'session' });
    expect(identify(readCredential({ cookie: 'hypergpu_session=forged' }), auth).kind).toBe('invalid');
  });

  it('refuses operator procedures with UNAUTHORIZED or FORBIDDEN, and reads only when they are private', () => {
    expect(() => checkAccess('training.stop', 'operator', { kind: 'anonymous' }, false)).toThrow(expect.objectContaining({ code: 'UNAUTHORIZED' }));
    expect(() => checkAccess('training.stop', 'operator', { kind: 'invalid', why: 'x' }, false)).toThrow(expect.objectContaining({ code: 'FORBIDDEN' }));
    expect(() => checkAccess('training.stop', 'operator', { kind: 'operator', via: 'token' }, false)).not.toThrow();
    expect(() => checkAccess('training.status', 'public', { kind: 'anonymous' }, false)).not.toThrow();
    expect(() => checkAccess('training.status', 'public', { kind: 'anonymous' }, true)).toThrow(expect.objectContaining({ code: 'UNAUTHORIZED' }));
  });
});

describe('request guards', () => {
  const config = guardConfig({ boundHost: '127.0.0.1', publicHosts: ['train.example.com', 'Box.Local:3000'], allowedOrigins: ['https://ops.example.com'] });

  it('answers only to its own host names (and IP literals), naming the setting to change', () => {
    for (const host of ['localhost:3000', '127.0.0.1:3000', '[::1]:3000', 'LOCALHOST', 'train.example.com', 'box.local:3000', '10.1.2.3:3000', '[fe80::1]:80']) {
      expect(checkHost(host, config), host).toBeNull();
    }
    expect(checkHost(undefined, config)).toBeNull();
    const refused = checkHost('evil.example:3000', config);
    expect(refused?.code).toBe('HOST_NOT_ALLOWED');
    expect(refused?.message).toMatch(/--public-host.*HYPERGPU_PUBLIC_HOSTS/);
    expect(checkHost('localhost.evil.example', config)?.code).toBe('HOST_NOT_ALLOWED');
    expect(checkHost('localhost@evil.example', config)?.code).toBe('HOST_NOT_ALLOWED');
  });

  it('takes a WebSocket or POST from its own pages and listed origins only; agents send no Origin', () => {
    expect(checkOrigin(undefined, 'localhost:3000', config)).toBeNull();
    expect(checkOrigin('http://localhost:3000', 'localhost:3000', config)).toBeNull();
    expect(checkOrigin('https://train.example.com', 'train.example.com', config)).toBeNull();
    expect(checkOrigin('https://ops.example.com', 'localhost:3000', config)).toBeNull();
    // Another port on the same machine is another site's page.
    expect(checkOrigin('http://localhost:8080', 'localhost:3000', config)?.code).toBe('ORIGIN_NOT_ALLOWED');
    expect(checkOrigin('https://evil.example', 'localhost:3000', config)?.message).toMatch(/HYPERGPU_ALLOWED_ORIGINS/);
    expect(checkOrigin('null', 'localhost:3000', config)?.code).toBe('ORIGIN_NOT_ALLOWED');
    // A rebinding page: its Origin matches the Host it sent, but the name is not ours.
    expect(checkOrigin('http://evil.example:3000', 'evil.example:3000', config)?.code).toBe('ORIGIN_NOT_ALLOWED');
  });

  it('takes POSTs with JSON bodies only (a bodiless POST may carry an Authorization header instead)', () => {
    expect(checkPostBody('GET', {})).toBeNull();
    expect(checkPostBody('POST', { 'content-type': 'application/json' })).toBeNull();
    expect(checkPostBody('POST', { 'content-type': 'application/json; charset=utf-8' })).toBeNull();
    expect(checkPostBody('POST', { 'content-type': 'text/plain;charset=UTF-8' })?.code).toBe('UNSUPPORTED_MEDIA_TYPE');
    expect(checkPostBody('POST', { 'content-type': 'application/x-www-form-urlencoded' })?.code).toBe('UNSUPPORTED_MEDIA_TYPE');
    // Bodiless: passes with a bearer header or without any cookie; a cookie (an ambient credential) needs JSON.
    expect(checkPostBody('POST', {})).toBeNull();
    expect(checkPostBody('POST', { cookie: 'hypergpu_session=x' })?.message).toMatch(/Content-Type: application\/json/);
    expect(checkPostBody('POST', { authorization: 'Bearer x', 'content-length': '0' })).toBeNull();
    expect(checkPostBody('POST', { authorization: 'Bearer x', 'content-length': '12' })?.code).toBe('UNSUPPORTED_MEDIA_TYPE');
  });
});
