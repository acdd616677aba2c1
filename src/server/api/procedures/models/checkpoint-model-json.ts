// model.json of one checkpoint (by round), TensorFlow.js layers format; weights.bin lies beside it.
import { layersModelJson, type LayersModelJson, WEIGHTS_FILE } from '../../dto';
import { checkpointInput } from '../../inputs';
import { defineQuery } from '../../procedure';

export const checkpointModelJson = defineQuery({
  input: checkpointInput,
  output: layersModelJson,
  rest: { method: 'GET', path: '/api/sessions/:sessionId/checkpoints/:round/model.json' },
  resolve: ({ ctx, input }) => ctx.control.modelFiles(input.sessionId, input.round, WEIGHTS_FILE).then((files) => files.modelJson as LayersModelJson),
});
