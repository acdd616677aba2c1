// weights.bin of a session's model (its latest checkpoint): the float32 parameters model.json describes.
// Bytes, so REST only (procedures/index.ts restOnlyTree).
import { binaryBody, WEIGHTS_FILE } from '../../dto';
import { sessionIdInput } from '../../inputs';
import { defineQuery } from '../../procedure';

export const latestModelWeights = defineQuery({
  input: sessionIdInput,
  output: binaryBody,
  rest: { method: 'GET', path: '/api/sessions/:sessionId/model/weights.bin', contentType: 'application/octet-stream' },
  resolve: ({ ctx, input }) => ctx.control.modelFiles(input.sessionId, null, WEIGHTS_FILE).then((files) => files.weights),
});
