// KNOWN ARCHITECTURE VIOLATIONS: the allow-list that lets `npm test` pass while the layering refactor is in
// flight. Each entry is one exact import (rule, from -> to) that breaks scripts/architecture-rules.mjs today.
//
// This list may only shrink:
//   - a violation NOT listed here fails `npm run lint:arch` and `npm test`;
//   - an entry here that no longer occurs ALSO fails (reported as stale), so delete it in the commit that fixes it.
// Do not add entries to let a new import through: fix the import (every report says what to do instead).
// When this list is empty, delete nothing else: keep the file with an empty array.
//
// Cycles are listed as { rule: 'no-cycle', members: [...] } (the files of one strongly connected component).

/** @type {({ rule: string, from: string, to: string } | { rule: 'no-cycle', members: string[] })[]} */
export const KNOWN_VIOLATIONS = [
];
