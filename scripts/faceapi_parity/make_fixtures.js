/**
 * Run the ORIGINAL @vladmandic/face-api 1.7.15 models (tfjs 4.22, wasm backend) on the committed
 * fixture images and write their outputs as JSON, for the PyTorch parity tests.
 *
 * Usage (from this folder):
 *   npm install            # @tensorflow/tfjs, @tensorflow/tfjs-backend-wasm, face-api, pngjs
 *   node make_fixtures.js ../../tests/fixtures/faceapi
 *
 * Reads <dir>/images/*.png and writes <dir>/outputs.json with, per image:
 *   descriptor (128 floats), landmarks (68 [x, y] in image pixels), expressions (7 probabilities in
 *   face-api's label order), age (years), p_male, detections (tiny face detector, inputSize 416 and
 *   224, scoreThreshold 0.5: score and box [x, y, width, height] in image pixels).
 */
const fs = require('fs');
const path = require('path');
const { PNG } = require('pngjs');
const tf = require('@tensorflow/tfjs');
const wasm = require('@tensorflow/tfjs-backend-wasm');
const faceapi = require('@vladmandic/face-api/dist/face-api.node-wasm.js');

function readPng(file) {
  const png = PNG.sync.read(fs.readFileSync(file));
  const rgb = new Int32Array(png.width * png.height * 3);
  for (let i = 0; i < png.width * png.height; i++) {
    for (let c = 0; c < 3; c++) rgb[i * 3 + c] = png.data[i * 4 + c];
  }
  return tf.tensor3d(rgb, [png.height, png.width, 3], 'int32');
}

const round = (v) => Number(v.toFixed(7));

async function main() {
  const dir = path.resolve(process.argv[2] || '../../tests/fixtures/faceapi');
  wasm.setWasmPaths(`${path.dirname(require.resolve('@tensorflow/tfjs-backend-wasm'))}/`);
  await tf.setBackend('wasm');
  await tf.ready();
  const modelDir = path.join(path.dirname(require.resolve('@vladmandic/face-api/package.json')), 'model');
  const { nets } = faceapi;
  await nets.faceRecognitionNet.loadFromDisk(modelDir);
  await nets.faceLandmark68Net.loadFromDisk(modelDir);
  await nets.faceExpressionNet.loadFromDisk(modelDir);
  await nets.ageGenderNet.loadFromDisk(modelDir);
  await nets.tinyFaceDetector.loadFromDisk(modelDir);

  const files = fs.readdirSync(path.join(dir, 'images')).filter((f) => f.endsWith('.png')).sort();
  const results = {};
  for (const f of files) {
    const img = readPng(path.join(dir, 'images', f));
    const descriptor = await nets.faceRecognitionNet.computeFaceDescriptor(img);
    const lm = await nets.faceLandmark68Net.detectLandmarks(img);
    const expr = await nets.faceExpressionNet.predictExpressions(img);
    const ag = nets.ageGenderNet.forwardInput(await faceapi.toNetInput(img));
    const age = (await ag.age.data())[0];
    const pMale = (await ag.gender.data())[0];
    ag.age.dispose(); ag.gender.dispose();
    const detections = {};
    for (const inputSize of [416, 224]) {
      const dets = await nets.tinyFaceDetector.locateFaces(img, new faceapi.TinyFaceDetectorOptions({ inputSize, scoreThreshold: 0.5 }));
      detections[inputSize] = dets.map((d) => ({
        score: round(d.score),
        box: [d.box.x, d.box.y, d.box.width, d.box.height].map(round),
      }));
    }
    results[f] = {
      height: img.shape[0],
      width: img.shape[1],
      descriptor: Array.from(descriptor).map(round),
      landmarks: lm.positions.map((p) => [round(p.x), round(p.y)]),
      expressions: faceapi.FACE_EXPRESSION_LABELS.map((k) => round(expr[k])),
      age: round(age),
      p_male: round(pMale),
      detections,
    };
    img.dispose();
    process.stdout.write(`${f}: age ${age.toFixed(1)} p_male ${pMale.toFixed(3)} faces@416 ${detections[416].length}\n`);
  }
  const out = {
    generator: 'scripts/faceapi_parity/make_fixtures.js',
    face_api: faceapi.version,
    tfjs: tf.version_core,
    backend: tf.getBackend(),
    expression_labels: faceapi.FACE_EXPRESSION_LABELS,
    images: results,
  };
  fs.writeFileSync(path.join(dir, 'outputs.json'), `${JSON.stringify(out, null, 1)}\n`);
  process.stdout.write(`wrote ${path.join(dir, 'outputs.json')}\n`);
}

main().catch((e) => { process.stderr.write(`${e.stack}\n`); process.exit(1); });
