import { mkdtempSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { TokenStore } from '../../src/agent/token-store';

describe('agent token store', () => {
  it('keeps the token in a file only its owner can read, and finds it again', () => {
    const dir = path.join(mkdtempSync(path.join(os.tmpdir(), 'hypergpu-token-')), 'state');
    const file = path.join(dir, 'host_3000_node.token');
    const lines: string[] = [];
    const store = new TokenStore(file, (l) => lines.push(l));
    expect(store.get()).toBeNull();
    // A leftover temp file with loose permissions must not leak its mode into the token file.
    store.save('a'.repeat(32));
    writeFileSync(`${file}.tmp`, 'junk', { mode: 0o644 });
    store.save('b'.repeat(32));
    expect(readFileSync(file, 'utf8')).toBe(`${'b'.repeat(32)}\n`);
    expect(statSync(file).mode & 0o777).toBe(0o600);
    expect(statSync(dir).mode & 0o777).toBe(0o700);
    expect(new TokenStore(file, () => {}).get()).toBe('b'.repeat(32));
    expect(lines[0]).toMatch(/saved this node's token/);
  });

  it('ignores a file that does not hold a token, saying so', () => {
    const file = path.join(mkdtempSync(path.join(os.tmpdir(), 'hypergpu-token-')), 'x.token');
    writeFileSync(file, 'short\n');
    const lines: string[] = [];
    expect(new TokenStore(file, (l) => lines.push(l)).get()).toBeNull();
    expect(lines.join('\n')).toMatch(/does not hold a node token/);
  });

  it('keeps the token in memory when there is no file', () => {
    const store = new TokenStore(null, () => {});
    expect(store.get()).toBeNull();
    store.save('c'.repeat(20));
    expect(store.get()).toBe('c'.repeat(20));
  });
});
