// Datasets by name. A coordinator and each agent register the datasets of their own machine at start
// (`--dataset name=path`, repeatable, or HYPERGPU_DATASETS=name=path,name2=path2); 'mnist' is built in. Everything
// else refers to a dataset by its id, so no path crosses the network, and the errors this registry throws name the
// dataset, never its folder: a path or an ENOENT in a message is replaced by `<dataset ID>` (the full error goes to
// the `log` of the process that owns the folder, which may show it on its own terminal).

import path from 'node:path';

import { BUILTIN_DATASET_IDS, DATASET_ID_PATTERN } from '../../protocol/dataset-id';
import { describeDataset, loadDataset, type Dataset, type DatasetInfo } from './index';

export class DatasetConfigError extends Error {}

/**
 * Parses `name=path` entries (each may itself hold several, comma-separated: the form HYPERGPU_DATASETS takes).
 * Paths are resolved against `cwd`. Throws DatasetConfigError on a malformed entry, a bad name, a redefinition of a
 * built-in id or a name given twice.
 */
export function parseDatasetSpecs(specs: readonly string[], cwd = process.cwd()): Map<string, string> {
  const out = new Map<string, string>();
  for (const spec of specs.flatMap((s) => s.split(',')).map((s) => s.trim()).filter(Boolean)) {
    const eq = spec.indexOf('=');
    if (eq <= 0 || eq === spec.length - 1) throw new DatasetConfigError(`dataset '${spec}' must be name=path`);
    const name = spec.slice(0, eq).trim();
    const dir = spec.slice(eq + 1).trim();
    if (!DATASET_ID_PATTERN.test(name)) {
      throw new DatasetConfigError(`dataset name '${name}' must be 1-64 letters, digits, dot, dash or underscore, starting with a letter or digit`);
    }
    if (BUILTIN_DATASET_IDS.includes(name)) throw new DatasetConfigError(`dataset '${name}' is built in; pick another name`);
    if (out.has(name)) throw new DatasetConfigError(`dataset '${name}' is given twice`);
    out.set(name, path.resolve(cwd, dir));
  }
  return out;
}

export class UnknownDatasetError extends Error {
  constructor(
    readonly id: string,
    readonly known: readonly string[],
  ) {
    super(`unknown dataset '${id}'; registered: ${known.join(', ')}`);
  }
}

export interface DatasetListing extends DatasetInfo {
  id: string;
}

export class DatasetRegistry {
  private readonly folders: Map<string, string>;

  constructor(
    folders: ReadonlyMap<string, string> = new Map(),
    /** Where the full error (paths included) of a failed load goes; the error thrown carries no path. */
    private readonly log: (line: string) => void = () => {},
  ) {
    this.folders = new Map(folders);
  }

  /** Registered ids, built-in first. */
  ids(): string[] {
    return [...BUILTIN_DATASET_IDS, ...[...this.folders.keys()].sort()];
  }

  has(id: string): boolean {
    return BUILTIN_DATASET_IDS.includes(id) || this.folders.has(id);
  }

  /** The `name=path` entries (for a local agent spawned on the same machine). */
  specs(): string[] {
    return [...this.folders].map(([name, dir]) => `${name}=${dir}`);
  }

  /**
   * The loader's own id for a registered dataset ('mnist' or 'folder:<absolute path>'): only for this process
   * and its worker threads, never for the network. Throws UnknownDatasetError.
   */
  source(id: string): string {
    if (BUILTIN_DATASET_IDS.includes(id)) return id;
    const dir = this.folders.get(id);
    if (dir === undefined) throw new UnknownDatasetError(id, this.ids());
    return `folder:${dir}`;
  }

  load(id: string): Promise<Dataset> {
    return this.guard(id, (source) => loadDataset(source));
  }

  describe(id: string): Promise<DatasetInfo> {
    return this.guard(id, (source) => describeDataset(source));
  }

  /** Every registered dataset with its sizes; one that cannot be read is listed with an error instead. */
  async list(): Promise<Array<DatasetListing | { id: string; error: string }>> {
    return Promise.all(
      this.ids().map(async (id) => {
        try {
          return { id, ...(await this.describe(id)) };
        } catch (error) {
          return { id, error: error instanceof Error ? error.message : String(error) };
        }
      }),
    );
  }

  /** Rewrites a message about dataset `id` so that it names the dataset instead of its folder. */
  redact(id: string, message: string): string {
    const dir = this.folders.get(id);
    let text = message;
    if (dir) {
      text = text.split(`folder:${dir}`).join(`'${id}'`).split(dir).join(`<dataset ${id}>`);
    }
    // Anything still shaped like an absolute path (a resolved symlink, a module folder) goes too.
    return text.replace(/(?:[A-Za-z]:)?[\\/][^\s'",;:()]*[\\/][^\s'",;:()]*/g, '<path>');
  }

  private async guard<T>(id: string, run: (source: string) => Promise<T>): Promise<T> {
    const source = this.source(id);
    try {
      return await run(source);
    } catch (error) {
      const message = error instanceof Error ? error.message : String(error);
      this.log(`dataset '${id}' (${source}) cannot be read: ${message}`);
      throw new Error(`dataset '${id}' cannot be read: ${this.redact(id, message)}`);
    }
  }
}
