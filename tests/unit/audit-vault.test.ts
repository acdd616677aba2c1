// The audit vault: captures held in memory up to its bound, spilled to scratch files past it, refused past the disk
// bound; the values read back are the values held; the last reference frees the memory or removes the file.
import { describe, expect, it } from 'vitest';
import { AuditVault } from '../../src/server/services/audit-vault';
import { FakeAuditSpill } from '../support/fake-audit-spill';
import { flush } from '../support/fakes';

const N = 16; // values per vector: 64 bytes
const vec = (seed: number) => Float32Array.from({ length: N }, (_, i) => Math.sin(seed * 100 + i));

function setup(memoryVectors: number, diskVectors: number, inFlightVectors = 1000) {
  const spill = new FakeAuditSpill();
  const logs: string[] = [];
  const vault = new AuditVault(spill, { memoryBytes: memoryVectors * N * 4, diskBytes: diskVectors * N * 4, inFlightBytes: inFlightVectors * N * 4 }, (m) => logs.push(m));
  return { spill, vault, logs };
}

describe('audit vault', () => {
  it('keeps vectors in memory up to its bound, spills the next ones, refuses past the disk bound', async () => {
    const { spill, vault } = setup(2, 3);
    const held = [1, 2, 3, 4, 5, 6].map((i) => vault.hold(vec(i)));
    expect(held.map((h) => (h === null ? 'refused' : h.file === null ? 'memory' : 'disk'))).toEqual(['memory', 'memory', 'disk', 'disk', 'disk', 'refused']);
    for (const h of held) if (h) vault.retain(h);
    await flush();
    expect(spill.files.size).toBe(3);
    // Once written, a spilled vector is no longer in memory.
    expect(held.slice(2, 5).every((h) => h!.data === null)).toBe(true);
    expect(vault.stats()).toMatchObject({ memoryBytes: 2 * N * 4, diskBytes: 3 * N * 4, spilled: 3, refused: 1 });
    // What comes back is what went in, from memory or from the file.
    for (let i = 0; i < 5; i++) expect(Array.from(await vault.read(held[i]!))).toEqual(Array.from(vec(i + 1)));
  });

  it('frees memory and removes the file with the last reference, and makes room for the next vector', async () => {
    const { spill, vault } = setup(1, 1);
    const a = vault.retain(vault.hold(vec(1))!);
    const b = vault.retain(vault.retain(vault.hold(vec(2))!)); // shared by two captures (a round's model)
    expect(vault.hold(vec(3))).toBeNull();
    await flush();
    vault.release(b);
    await flush();
    expect(spill.files.size).toBe(1); // still referenced once
    vault.release(b);
    await flush();
    expect(spill.files.size).toBe(0);
    expect(spill.log).toEqual(['write 1.f32', 'remove 1.f32']); // file names count spilled vectors only
    vault.release(a);
    expect(vault.stats()).toMatchObject({ memoryBytes: 0, diskBytes: 0 });
    expect(vault.hold(vec(4))).not.toBeNull();
    // A released vector cannot be read (its file is gone): the audit would be recorded as not done.
    await expect(vault.read(a)).rejects.toThrow(/released/);
  });

  it('a vector released while its write is in flight is removed once the write ends; one read during the write comes from memory', async () => {
    const { spill, vault } = setup(0, 4);
    let open!: () => void;
    spill.gate = new Promise<void>((resolve) => (open = resolve));
    const a = vault.retain(vault.hold(vec(1))!);
    const b = vault.retain(vault.hold(vec(2))!);
    const reading = vault.read(a);
    vault.release(b);
    open();
    expect(Array.from(await reading)).toEqual(Array.from(vec(1)));
    await flush();
    expect([...spill.files.keys()]).toEqual(['1.f32']);
    expect(vault.stats().diskBytes).toBe(N * 4);
  });

  it('a failed write keeps the vector in memory (its audit still runs) and says so', async () => {
    const { spill, vault, logs } = setup(0, 4);
    spill.failWrites = 'ENOSPC: no space left on device';
    const a = vault.retain(vault.hold(vec(7))!);
    await flush();
    expect(Array.from(await vault.read(a))).toEqual(Array.from(vec(7)));
    expect(logs.join('\n')).toMatch(/could not be spilled \(ENOSPC.*kept in memory/);
    expect(vault.stats()).toMatchObject({ memoryBytes: N * 4, diskBytes: 0 });
    vault.release(a);
    await flush();
    expect(vault.stats()).toMatchObject({ memoryBytes: 0, diskBytes: 0 });
  });

  it('without a spill, the memory bound is the only bound', () => {
    const vault = new AuditVault(null, { memoryBytes: N * 4, diskBytes: 1 << 30 }, () => undefined);
    expect(vault.hold(vec(1))).not.toBeNull();
    expect(vault.hold(vec(2))).toBeNull();
  });

  it('discard frees a vector no capture took', () => {
    const { vault } = setup(1, 0);
    const a = vault.hold(vec(1))!;
    vault.discard(a);
    expect(vault.stats().memoryBytes).toBe(0);
  });

  it('keeps what it was given, not a view: the caller may change its vector once hold() returns', async () => {
    const { vault } = setup(1, 4, 1);
    const source = vec(1);
    const inMemory = vault.retain(vault.hold(source)!);
    const background = vault.retain(vault.hold(source)!);
    source.fill(0);
    expect(Array.from(await vault.read(inMemory))).toEqual(Array.from(vec(1)));
    expect(Array.from(await vault.read(background))).toEqual(Array.from(vec(1)));
  });

  it('past the bytes waiting for background writes, writes before returning, straight from the caller’s vector', async () => {
    const { spill, vault } = setup(0, 8, 2);
    let open!: () => void;
    spill.gate = new Promise<void>((resolve) => (open = resolve));
    const source = vec(3);
    const held = [1, 2, 3, 4].map(() => vault.retain(vault.hold(source)!));
    // Two copies wait for their writes; the next two are written at once, with no copy kept.
    expect(spill.log).toEqual(['write 1.f32', 'write 2.f32', 'writeSync 3.f32', 'writeSync 4.f32']);
    expect(held.map((h) => h.data !== null)).toEqual([true, true, false, false]);
    expect(vault.stats()).toMatchObject({ memoryBytes: 2 * N * 4, diskBytes: 4 * N * 4, spilled: 2, spilledSync: 2 });
    source.fill(0);
    open();
    for (const h of held) expect(Array.from(await vault.read(h))).toEqual(Array.from(vec(3)));
    expect(vault.stats().memoryBytes).toBe(0);
  });

  it('a failed synchronous write refuses the vector (recorded as not audited) and says why', () => {
    const { spill, vault, logs } = setup(0, 8, 0);
    spill.failWrites = 'EIO';
    expect(vault.hold(vec(1))).toBeNull();
    expect(logs).toEqual(['audit capture could not be spilled (EIO); not held']);
    expect(vault.stats()).toMatchObject({ refused: 1, diskBytes: 0, memoryBytes: 0 });
  });
});
