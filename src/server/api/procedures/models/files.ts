// The trained model as TensorFlow.js layers files: model.json and weights.bin side by side under one folder-like
// path, so `tf.loadLayersModel('http://HOST/api/sessions/1/model/model.json')` finds the weights next to it.
// Two folders per session: model/ (its latest checkpoint) and checkpoints/{round}/ (one checkpoint).
// model.json is a JSON procedure (tRPC too); weights.bin is bytes, served by REST only (procedures/index.ts).
import { binaryBody, layersModelJson, type LayersModelJson } from '../../dto';
import { checkpointInput, sessionIdInput } from '../../inputs';
import { defineQuery } from '../../procedure';

/** The weights file's name, relative to model.json (tfjs resolves it against model.json's URL). */
export const WEIGHTS_FILE = 'weights.bin';

export const latestModelJson = defineQuery({
  input: sessionIdInput,
  output: layersModelJson,
  rest: { method: 'GET', path: '/api/sessions/:sessionId/model/model.json' },
  resolve: ({ ctx, input }) => ctx.control.modelFiles(input.sessionId, null, WEIGHTS_FILE).then((files) => files.modelJson as LayersModelJson),
});

export const latestModelWeights = defineQuery({
  input: sessionIdInput,
  output: binaryBody,
  rest: { method: 'GET', path: '/api/sessions/:sessionId/model/weights.bin', contentType: 'application/octet-stream' },
  resolve: ({ ctx, input }) => ctx.control.modelFiles(input.sessionId, null, WEIGHTS_FILE).then((files) => files.weights),
});

export const checkpointModelJson = defineQuery({
  input: checkpointInput,
  output: layersModelJson,
  rest: { method: 'GET', path: '/api/sessions/:sessionId/checkpoints/:round/model.json' },
  resolve: ({ ctx, input }) => ctx.control.modelFiles(input.sessionId, input.round, WEIGHTS_FILE).then((files) => files.modelJson as LayersModelJson),
});

export const checkpointModelWeights = defineQuery({
  input: checkpointInput,
  output: binaryBody,
  rest: { method: 'GET', path: '/api/sessions/:sessionId/checkpoints/:round/weights.bin', contentType: 'application/octet-stream' },
  resolve: ({ ctx, input }) => ctx.control.modelFiles(input.sessionId, input.round, WEIGHTS_FILE).then((files) => files.weights),
});
