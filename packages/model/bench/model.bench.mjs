// Inference speed of the tfjs model (mcp-medsam preset). FLOPs from spec §13 (MACs x 2).
// Prints one JSON line per result.
import { initBackend, nn, tf } from '@mcp-medsam/core';
import { McpMedsam, MCP_MEDSAM } from '@mcp-medsam/model';
import { emit, prompts, timeIt } from './common.mjs';

const ENCODER_GFLOP = 2 * 37.5; // image encoder, per image
const DECODER_BOX_GFLOP = 2 * (21.2 + 16.9); // prompt encoder + mask decoder, per box
const backend = (await initBackend({ log: null })).name;

nn.setInitSeed(0);
const model = new McpMedsam(MCP_MEDSAM).eval();
const image = tf.randomUniform([1, 3, 256, 256], 0, 1, 'float32', 4);
// Read the result outside tf.tidy: a tidy returning a typed array walks every element of it as a
// possible tensor container (~2.8 s for the 1M-value embedding, which these numbers once included).
const readOut = (f) => {
  const t = tf.tidy(f);
  t.dataSync();
  t.dispose();
};
const encMs = timeIt(() => readOut(() => model.encodeImage(image)));
emit({
  name: 'tfjs.encoder',
  preset: 'mcp-medsam',
  backend,
  ms: encMs,
  gflops: ENCODER_GFLOP / (encMs / 1000),
});

const emb = model.encodeImage(image);
const p1 = prompts(1);
const decMs = timeIt(() => readOut(() => model.decode(emb, p1).lowResLogits));
emit({
  name: 'tfjs.decoder.box',
  preset: 'mcp-medsam',
  backend,
  ms: decMs,
  gflops: DECODER_BOX_GFLOP / (decMs / 1000),
});
