// weights.bin of one checkpoint (by round). Bytes, so REST only (procedures/index.ts restOnlyTree).
import { binaryBody, WEIGHTS_FILE } from '../../dto';
import { checkpointInput } from '../../inputs';
import { defineQuery } from '../../procedure';

export const checkpointModelWeights = defineQuery({
  input: checkpointInput,
  output: binaryBody,
  rest: { method: 'GET', path: '/api/sessions/:sessionId/checkpoints/:round/weights.bin', contentType: 'application/octet-stream' },
  resolve: ({ ctx, input }) => ctx.control.modelFiles(input.sessionId, input.round, WEIGHTS_FILE).then((files) => files.weights),
});
