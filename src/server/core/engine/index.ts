// The round engine: pure state, events, effects and the step function, with its rooms (strategy, node pool,
// accounting) and read models. See README's Architecture section for how one update and one commit travel.
export * from './committed';
export * from './effects';
export * from './events';
export * from './state';
export * from './step';
export * from './strategy';
export * from './views';
export { creditsFrom, closedEpochOf } from './accounting';
export { sweepIntervalMs } from './nodes';
