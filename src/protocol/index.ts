// The agent protocol, shared by the node agent and the coordinator: binary tensor frames, JSON control
// messages (zod schemas with inferred types), close codes and coded errors. Pure: no I/O.
export * from './errors';
export * from './frame';
export * from './messages';
export * from './permutation';
