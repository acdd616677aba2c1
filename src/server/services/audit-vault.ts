// Where audit captures wait for the auditor: vectors (an update as its node sent it, or the model a round trained
// from) held in memory up to a byte bound, past it in scratch files (the AuditSpill port), past the disk bound
// refused. Why: see AUDIT_MEMORY_BYTES in core/audit.ts. A vector is reference-counted, because one copy of a
// round's model serves every capture of that round.
//
// hold() decides synchronously (capture runs while the round aggregates, and the slot is reused right after),
// so a spilled vector stays in memory until its write has finished: the transient is a round's worth of
// captures at most. Reads of a spilled vector happen when its audit runs, one at a time on the audit chain.
import type { AuditSpill } from '../core/audit-ports';

export interface Held {
  readonly length: number;
  /** In memory: held here; spilled: only until the write finishes. */
  data: Float32Array | null;
  /** Spilled: the file's name, and the write that must end before it is read or removed. */
  file: string | null;
  written: Promise<boolean> | null;
  refs: number;
}

export interface VaultLimits {
  memoryBytes: number;
  diskBytes: number;
}

export interface VaultStats {
  memoryBytes: number;
  diskBytes: number;
  /** Vectors written to disk so far. */
  spilled: number;
  /** Vectors refused (both bounds full). */
  refused: number;
  /** Most bytes in memory / on disk at once. */
  peakMemoryBytes: number;
  peakDiskBytes: number;
}

export class AuditVault {
  private memory = 0;
  private disk = 0;
  private next = 1;
  private readonly counts = { spilled: 0, refused: 0, peakMemoryBytes: 0, peakDiskBytes: 0 };

  constructor(
    private readonly spill: AuditSpill | null,
    private readonly limits: VaultLimits,
    private readonly log: (message: string) => void,
  ) {}

  /**
   * Takes ownership of `data` (a copy the caller made) with no reference yet, or returns null when neither bound
   * has room for it (the caller records the audit as not done).
   */
  hold(data: Float32Array): Held | null {
    const bytes = data.byteLength;
    if (this.memory + bytes <= this.limits.memoryBytes) {
      this.memory += bytes;
      this.counts.peakMemoryBytes = Math.max(this.counts.peakMemoryBytes, this.memory);
      return { length: data.length, data, file: null, written: null, refs: 0 };
    }
    if (!this.spill || this.disk + bytes > this.limits.diskBytes) {
      this.counts.refused++;
      return null;
    }
    this.disk += bytes;
    this.counts.spilled++;
    this.counts.peakDiskBytes = Math.max(this.counts.peakDiskBytes, this.disk);
    const held: Held = { length: data.length, data, file: `${this.next++}.f32`, written: null, refs: 0 };
    held.written = this.spill.write(held.file!, data).then(
      () => {
        held.data = null;
        return true;
      },
      (error: unknown) => {
        // Kept in memory rather than lost: the audit still runs; the disk bytes were never used.
        this.log(`audit capture could not be spilled (${error instanceof Error ? error.message : String(error)}); kept in memory`);
        this.disk -= bytes;
        this.memory += bytes;
        held.file = null;
        return false;
      },
    );
    return held;
  }

  retain(held: Held): Held {
    held.refs++;
    return held;
  }

  /** The vector's values (read back from its file when spilled). */
  async read(held: Held): Promise<Float32Array> {
    if (held.refs <= 0) throw new Error('audit capture was released before it was read');
    await held.written;
    if (held.data) return held.data;
    return this.spill!.read(held.file!, held.length);
  }

  /** One reference less; the last one frees the memory or removes the file. */
  release(held: Held): void {
    if (held.refs <= 0) return;
    if (--held.refs > 0) return;
    const bytes = held.length * 4;
    if (!held.file) {
      this.memory -= bytes;
      held.data = null;
      return;
    }
    const file = held.file;
    held.file = null;
    void (held.written ?? Promise.resolve(true)).then(async (ok) => {
      if (!ok) {
        this.memory -= bytes;
        held.data = null;
        return;
      }
      await this.spill!.remove(file).catch((error: unknown) => this.log(`audit capture file ${file} could not be removed: ${error instanceof Error ? error.message : String(error)}`));
      this.disk -= bytes;
    });
  }

  /** Frees a vector hold() returned that no one took a reference to. */
  discard(held: Held): void {
    if (held.refs === 0) this.release(this.retain(held));
  }

  stats(): VaultStats {
    return { memoryBytes: this.memory, diskBytes: this.disk, ...this.counts };
  }
}
