// Where audit captures wait for the auditor: vectors (an update as its node sent it, or the model a round trained
// from) held in memory up to a byte bound, past it in scratch files (the AuditSpill port), past the disk bound
// refused. Why: see AUDIT_MEMORY_BYTES in core/audit.ts. A vector is reference-counted, because one copy of a
// round's model serves every capture of that round.
//
// hold() runs while the round aggregates, and the caller's vector (an aggregator slot, the live model) changes
// right after, so it decides synchronously and takes what it keeps: a copy in memory, or a file. A file is
// written in the background from a copy while such copies stay under `inFlightBytes`; past that (the first
// round of an epoch picks every node's update for its reservoir: 100 nodes, 44 MB for the MLP at once) it is
// written before hold() returns, straight from the caller's vector: a few ms of page-cache writes instead of a
// second copy of the round's updates. Reads of a spilled vector happen when its audit runs, one at a time.
import type { AuditSpill } from '../core/audit-ports';

export interface Held {
  readonly length: number;
  /** In memory: held here; spilled in the background: only until the write finishes. */
  data: Float32Array | null;
  /** Spilled: the file's name, and the write that must end before it is read or removed (true: written). */
  file: string | null;
  written: Promise<boolean> | null;
  refs: number;
}

export interface VaultLimits {
  memoryBytes: number;
  diskBytes: number;
  /** Copies waiting for their background write; past it, writes are synchronous. Default 8 MiB. */
  inFlightBytes?: number;
}

export interface VaultStats {
  memoryBytes: number;
  diskBytes: number;
  /** Vectors written to disk so far (in the background / synchronously). */
  spilled: number;
  spilledSync: number;
  /** Vectors refused (both bounds full, or a synchronous write failed). */
  refused: number;
  /** Most bytes in memory (held and in flight) / on disk at once. */
  peakMemoryBytes: number;
  peakDiskBytes: number;
}

const DEFAULT_IN_FLIGHT_BYTES = 8 * 2 ** 20;
const message = (error: unknown) => (error instanceof Error ? error.message : String(error));

export class AuditVault {
  private memory = 0;
  private inFlight = 0;
  private disk = 0;
  private next = 1;
  private readonly counts = { spilled: 0, spilledSync: 0, refused: 0, peakMemoryBytes: 0, peakDiskBytes: 0 };

  constructor(
    private readonly spill: AuditSpill | null,
    private readonly limits: VaultLimits,
    private readonly log: (message: string) => void,
  ) {}

  /**
   * Keeps the values of `source` (copied or written now: the caller may change it once this returns) with no
   * reference yet, or returns null when neither bound has room (the caller records the audit as not done).
   */
  hold(source: Float32Array): Held | null {
    const bytes = source.byteLength;
    if (this.memory + bytes <= this.limits.memoryBytes) {
      this.memory += bytes;
      this.peaks();
      return { length: source.length, data: source.slice(), file: null, written: null, refs: 0 };
    }
    if (!this.spill || this.disk + bytes > this.limits.diskBytes) {
      this.counts.refused++;
      return null;
    }
    const file = `${this.next++}.f32`;
    if (this.inFlight + bytes > (this.limits.inFlightBytes ?? DEFAULT_IN_FLIGHT_BYTES)) {
      try {
        this.spill.writeSync(file, source);
      } catch (error) {
        this.log(`audit capture could not be spilled (${message(error)}); not held`);
        this.counts.refused++;
        return null;
      }
      this.disk += bytes;
      this.counts.spilledSync++;
      this.peaks();
      return { length: source.length, data: null, file, written: Promise.resolve(true), refs: 0 };
    }
    const data = source.slice();
    this.disk += bytes;
    this.inFlight += bytes;
    this.counts.spilled++;
    this.peaks();
    const held: Held = { length: source.length, data, file, written: null, refs: 0 };
    held.written = this.spill.write(file, data).then(
      () => {
        this.inFlight -= bytes;
        held.data = null;
        return true;
      },
      (error: unknown) => {
        // Kept in memory rather than lost: the audit still runs; the disk bytes were never used.
        this.log(`audit capture could not be spilled (${message(error)}); kept in memory`);
        this.inFlight -= bytes;
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
        // The write failed after release took the name: it was counted in memory since.
        this.memory -= bytes;
        held.data = null;
        return;
      }
      await this.spill!.remove(file).catch((error: unknown) => this.log(`audit capture file ${file} could not be removed: ${message(error)}`));
      this.disk -= bytes;
    });
  }

  /** Frees a vector hold() returned that no one took a reference to. */
  discard(held: Held): void {
    if (held.refs === 0) this.release(this.retain(held));
  }

  stats(): VaultStats {
    return { memoryBytes: this.memory + this.inFlight, diskBytes: this.disk, ...this.counts };
  }

  private peaks(): void {
    this.counts.peakMemoryBytes = Math.max(this.counts.peakMemoryBytes, this.memory + this.inFlight);
    this.counts.peakDiskBytes = Math.max(this.counts.peakDiskBytes, this.disk);
  }
}
