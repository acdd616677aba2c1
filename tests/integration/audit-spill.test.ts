// The AuditSpill port on a real folder: what is written is read back bit for bit, removal deletes the file, a file
// of the wrong size is refused, names outside the vault's own are refused, and creating the store sweeps the
// files a previous (killed) process left.
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { createAuditSpill } from '../../src/server/adapters/audit-spill';

const root = mkdtempSync(join(tmpdir(), 'hypergpu-audit-spill-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

describe('audit spill files', () => {
  it('round-trips float32 values exactly, and removes the file', async () => {
    const spill = await createAuditSpill(join(root, 'a', 'audit-spill'));
    const values = Float32Array.from({ length: 109_386 }, (_, i) => Math.fround(Math.sin(i) * 1e-3));
    values[7] = -0;
    values[8] = Number.MIN_VALUE;
    await spill.write('1.f32', values);
    expect(readdirSync(spill.root)).toEqual(['1.f32']);
    const back = await spill.read('1.f32', values.length);
    expect(Buffer.from(back.buffer, back.byteOffset, back.byteLength).equals(Buffer.from(values.buffer))).toBe(true);
    await spill.remove('1.f32');
    expect(readdirSync(spill.root)).toEqual([]);
    await spill.remove('1.f32'); // already gone: not an error
  });

  it('refuses a file of the wrong size and names that are not the vault’s', async () => {
    const spill = await createAuditSpill(join(root, 'b'));
    await spill.write('2.f32', new Float32Array(8));
    await expect(spill.read('2.f32', 9)).rejects.toThrow(/holds 32 bytes, expected 36/);
    await expect(spill.read('missing.f32', 1)).rejects.toThrow(/ENOENT/);
    for (const name of ['../x', '.hidden', 'a/b', '', 'UPPER']) await expect(spill.write(name, new Float32Array(1))).rejects.toThrow(RangeError);
  });

  it('sweeps what a previous process left when it is created', async () => {
    const dir = join(root, 'c');
    mkdirSync(join(dir, 'sub'), { recursive: true });
    writeFileSync(join(dir, '17.f32'), Buffer.alloc(64));
    writeFileSync(join(dir, 'sub', 'x'), 'x');
    const spill = await createAuditSpill(dir);
    expect(existsSync(dir)).toBe(true);
    expect(readdirSync(dir)).toEqual([]);
    await expect(spill.read('17.f32', 16)).rejects.toThrow(/ENOENT/);
  });
});
