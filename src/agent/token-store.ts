// The secret that makes a node name this agent's own: issued by the coordinator at the name's first
// registration, presented in every later hello. Whoever holds it can act as this node, so the file is
// written atomically and readable by its owner only.
import { chmodSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import path from 'node:path';

/** What the protocol accepts as a token (see hello in src/protocol/messages.ts), without whitespace. */
const TOKEN_SHAPE = /^[\x21-\x7e]{16,256}$/;

export class TokenStore {
  private cached: string | null | undefined;

  /** `file` null: keep the token in memory only (the name is held while this process runs). */
  constructor(
    private readonly file: string | null,
    private readonly log: (line: string) => void,
  ) {}

  get(): string | null {
    if (this.cached === undefined) this.cached = this.read();
    return this.cached;
  }

  save(token: string): void {
    this.cached = token;
    const file = this.file;
    if (!file) return;
    try {
      mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 });
      const temp = `${file}.tmp`;
      writeFileSync(temp, `${token}\n`, { mode: 0o600 });
      // The mode above applies only when the file is created; a leftover temp file keeps its own.
      chmodSync(temp, 0o600);
      renameSync(temp, file);
      this.log(`saved this node's token to ${file}`);
    } catch (error) {
      this.log(`could not save the node token to ${file}: ${error instanceof Error ? error.message : String(error)}; the name is held only while this process runs`);
    }
  }

  private read(): string | null {
    if (!this.file) return null;
    let text: string;
    try {
      text = readFileSync(this.file, 'utf8').trim();
    } catch {
      return null; // no token yet: this name registers for the first time
    }
    if (text === '') return null;
    if (!TOKEN_SHAPE.test(text)) {
      // Presenting it would only get the hello refused; without it the coordinator says whether the name is taken.
      this.log(`ignoring ${this.file}: it does not hold a node token (16-256 printable characters)`);
      return null;
    }
    return text;
  }
}
