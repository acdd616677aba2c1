// A vitest reporter for `npm test`: writes every failure of the run, one block each, to the file named by
// HYPERGPU_FAILURE_SUMMARY, so scripts/test.mjs can repeat them at the very end of the log (CI keeps only its
// tail). Unlike vitest's JSON report it includes what fails outside a test: a beforeAll/afterAll hook of a
// describe block (whose tests are then only "skipped"), a module that did not load, and unhandled errors.
import { appendFileSync } from 'node:fs';
import { relative } from 'node:path';
import type { Reporter, SerializedError, TestModule } from 'vitest/node';

const LINES = 60;
const CHARS = 8000;

function excerpt(error: SerializedError | undefined): string {
  const text = String(error?.message ?? error?.stack ?? error ?? '(no message)');
  return text.split('\n').slice(0, LINES).join('\n      ').slice(0, CHARS);
}

export default class FailureSummaryReporter implements Reporter {
  private readonly file = process.env.HYPERGPU_FAILURE_SUMMARY;

  onTestRunEnd(modules: ReadonlyArray<TestModule>, unhandled: ReadonlyArray<SerializedError>): void {
    if (!this.file) return;
    const blocks: string[] = [];
    for (const module of modules) {
      const name = relative(process.cwd(), module.moduleId);
      for (const error of module.errors()) blocks.push(`${name} (module): ${excerpt(error)}`);
      for (const suite of module.children.allSuites()) {
        for (const error of suite.errors()) blocks.push(`${name} > ${suite.fullName} (hook or suite): ${excerpt(error)}`);
      }
      for (const test of module.children.allTests('failed')) {
        const errors = test.result().errors ?? [];
        // With retry on, the last error is the final attempt's; the first tells whether both failed alike.
        blocks.push(`${name} > ${test.fullName}: ${excerpt(errors.at(-1))}${errors.length > 1 ? `\n      (${errors.length} attempts; first: ${excerpt(errors[0]).split('\n')[0]})` : ''}`);
      }
    }
    for (const error of unhandled) blocks.push(`unhandled error: ${excerpt(error)}`);
    if (blocks.length > 0) appendFileSync(this.file, `${blocks.join('\n')}\n`);
  }
}
