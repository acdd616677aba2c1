// The AuditSpill port in memory, for unit tests of the audit vault and service: what was written, read and removed,
// and a switch that makes writes fail (a full or read-only disk).
import type { AuditSpill } from '../../src/server/core/audit-ports';

export class FakeAuditSpill implements AuditSpill {
  readonly files = new Map<string, Float32Array>();
  readonly log: string[] = [];
  failWrites: string | null = null;
  /** Writes wait for this when set (to look at the vault while a write is in flight). */
  gate: Promise<void> | null = null;

  async write(name: string, data: Float32Array): Promise<void> {
    this.log.push(`write ${name}`);
    if (this.gate) await this.gate;
    if (this.failWrites) throw new Error(this.failWrites);
    this.files.set(name, data.slice());
  }

  writeSync(name: string, data: Float32Array): void {
    this.log.push(`writeSync ${name}`);
    if (this.failWrites) throw new Error(this.failWrites);
    this.files.set(name, data.slice());
  }

  async read(name: string, length: number): Promise<Float32Array> {
    this.log.push(`read ${name}`);
    const data = this.files.get(name);
    if (!data) throw new Error(`no spill file ${name}`);
    if (data.length !== length) throw new Error(`spill file ${name} holds ${data.length} values, expected ${length}`);
    return data.slice();
  }

  async remove(name: string): Promise<void> {
    this.log.push(`remove ${name}`);
    this.files.delete(name);
  }
}
