// The one tfjs instance every @mcp-medsam package uses. Importing tfjs-core from several
// places is fine (it is a singleton per process), but going through here keeps the
// backends registered before any op runs.
import * as tf from '@tensorflow/tfjs-core';
// The Node build of tfjs-core registers no gradient functions; the union package's build
// registers all of them on the same tfjs-core instance (it is also what tfjs-node loads).
import '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-cpu';
import '@tensorflow/tfjs-backend-wasm';

// Production mode silences tfjs's console advice to install tfjs-node (it cannot be installed here).
tf.env().set('PROD', true);

export { tf };
export type Tensor = tf.Tensor;
export type Variable = tf.Variable;
