// The AuditSpill port on a local folder (<data>/audit-spill): one file per spilled audit capture, written and read
// whole, never fsync'd (a scratch file is worthless after a crash: its capture's audit is recorded as not done,
// see services/audits.ts). The folder belongs to one coordinator process: creating the store empties it of what
// a previous process left (a crash or kill -9 skips every cleanup).
import { writeFileSync } from 'node:fs';
import { mkdir, readFile, rm, unlink, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import type { AuditSpill } from '../core/audit-ports';

const NAME = /^[a-z0-9][a-z0-9.-]{0,63}$/;

function checkName(name: string): void {
  if (!NAME.test(name)) throw new RangeError(`audit spill name ${JSON.stringify(name)} is not 1-64 characters of [a-z0-9.-]`);
}

export async function createAuditSpill(dir: string): Promise<AuditSpill & { readonly root: string }> {
  const root = resolve(dir);
  await rm(root, { recursive: true, force: true });
  await mkdir(root, { recursive: true });
  return {
    root,
    async write(name, data) {
      checkName(name);
      await writeFile(join(root, name), new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
    },
    writeSync(name, data) {
      checkName(name);
      writeFileSync(join(root, name), new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
    },
    async read(name, length) {
      checkName(name);
      const bytes = await readFile(join(root, name));
      if (bytes.byteLength !== length * 4) throw new Error(`audit spill file ${name} holds ${bytes.byteLength} bytes, expected ${length * 4}`);
      // readFile gives a buffer of its own for a file this size; copied only if it is not 4-byte aligned.
      return bytes.byteOffset % 4 === 0 ? new Float32Array(bytes.buffer, bytes.byteOffset, length) : new Float32Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + length * 4));
    },
    async remove(name) {
      checkName(name);
      await unlink(join(root, name)).catch((error: NodeJS.ErrnoException) => {
        if (error.code !== 'ENOENT') throw error;
      });
    },
  };
}
