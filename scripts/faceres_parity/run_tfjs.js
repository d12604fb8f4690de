/**
 * Run a tfjs graph model (model.json + shards) with pure-JavaScript tfjs (CPU backend, no native
 * code, no network) on raw float32 inputs, for the parity test of the PyTorch port.
 *
 * Usage (from this folder, after `npm install`):
 *   node run_tfjs.js MODEL_JSON INPUT_F32 N H W C OUTPUT_JSON [NODE]
 *
 * INPUT_F32 holds N*H*W*C little-endian float32 values (NHWC, what the graph's placeholder
 * takes). OUTPUT_JSON receives {"output": name, "shape": [...], "values": [...]} for node NODE
 * (default: the graph's first output; the parity test asks for global_pooling/Mean).
 */
const fs = require('fs');
const path = require('path');
const tf = require('@tensorflow/tfjs');

function fileHandler(modelJson) {
  return {
    load: async () => {
      const doc = JSON.parse(fs.readFileSync(modelJson, 'utf8'));
      const dir = path.dirname(modelJson);
      const specs = [];
      const parts = [];
      for (const group of doc.weightsManifest) {
        specs.push(...group.weights);
        for (const p of group.paths) parts.push(fs.readFileSync(path.join(dir, p)));
      }
      const data = Buffer.concat(parts);
      return {
        modelTopology: doc.modelTopology,
        weightSpecs: specs,
        weightData: data.buffer.slice(data.byteOffset, data.byteOffset + data.byteLength),
        format: doc.format,
        generatedBy: doc.generatedBy,
        convertedBy: doc.convertedBy,
        signature: doc.signature,
        userDefinedMetadata: doc.userDefinedMetadata,
      };
    },
  };
}

async function main() {
  const [modelJson, inputFile, n, h, w, c, outFile, node] = process.argv.slice(2);
  if (!outFile) throw new Error('usage: node run_tfjs.js MODEL_JSON INPUT_F32 N H W C OUTPUT_JSON [NODE]');
  await tf.setBackend('cpu');
  await tf.ready();
  const model = await tf.loadGraphModel(fileHandler(path.resolve(modelJson)));
  const raw = fs.readFileSync(inputFile);
  const values = new Float32Array(raw.buffer.slice(raw.byteOffset, raw.byteOffset + raw.byteLength));
  const x = tf.tensor4d(values, [Number(n), Number(h), Number(w), Number(c)], 'float32');
  const name = node || model.outputs[0].name;
  const y = model.execute(x, name);
  const out = Array.isArray(y) ? y[0] : y;
  const result = { output: name, backend: tf.getBackend(), tfjs: tf.version_core,
                   shape: out.shape, values: Array.from(await out.data()) };
  fs.writeFileSync(outFile, JSON.stringify(result));
}

main().catch((e) => { console.error(`error: ${e.message}`); process.exit(1); });
