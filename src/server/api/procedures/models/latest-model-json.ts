// model.json of a session's model (its latest checkpoint), TensorFlow.js layers format: `tf.loadLayersModel(
// 'http://HOST/api/sessions/1/model/model.json')` fetches weights.bin beside it (see src/ml/layers-export.ts).
import { layersModelJson, type LayersModelJson, WEIGHTS_FILE } from '../../dto';
import { sessionIdInput } from '../../inputs';
import { defineQuery } from '../../procedure';

export const latestModelJson = defineQuery({
  input: sessionIdInput,
  output: layersModelJson,
  rest: { method: 'GET', path: '/api/sessions/:sessionId/model/model.json' },
  resolve: ({ ctx, input }) => ctx.control.modelFiles(input.sessionId, null, WEIGHTS_FILE).then((files) => files.modelJson as LayersModelJson),
});
