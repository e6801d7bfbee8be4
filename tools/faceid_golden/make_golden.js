// face-api's own descriptors (FaceRecognitionNet.computeFaceDescriptor on
// TF.js's pure-JS CPU backend) of the raw 150x150 RGB inputs that
// //tools/faceid_golden:write_inputs wrote, printed as the golden text of
// //dmue:face_descriptor_net_test: "<name> <fnv1a64 of the pixels> <128 floats>".
//
//   node make_golden.js --inputs=/tmp/faceid_inputs [--model_dir=DIR] > golden.txt
//
// --model_dir defaults to the model folder of the installed face-api package.
'use strict';

const fs = require('fs');
const path = require('path');
const tf = require('@tensorflow/tfjs');
// The build that takes plain @tensorflow/tfjs (no native tfjs-node); it also
// registers the wasm backend, which is not used here.
const faceapi = require('@vladmandic/face-api/dist/face-api.node-wasm.js');

const SIDE = 150;

function flag(name, fallback) {
  const prefix = `--${name}=`;
  const arg = process.argv.find((a) => a.startsWith(prefix));
  if (arg) return arg.slice(prefix.length);
  if (fallback === undefined) throw new Error(`${prefix}... is required`);
  return fallback;
}

// FNV-1a 64 over the bytes, continuing from `h`, as dmue::Fnv1a64 (dmue/base/hash.h).
function fnv1a64(bytes, h = 14695981039346656037n) {
  for (const b of bytes) h = BigInt.asUintN(64, (h ^ BigInt(b)) * 1099511628211n);
  return h;
}

function hex(h) {
  return h.toString(16).padStart(16, '0');
}

// The hash of every weight as TF.js decodes it (dequantized float32 bytes,
// manifest order), so the C++ reader can be checked bit for bit.
function weightsHash(modelDir) {
  const manifest = JSON.parse(fs.readFileSync(path.join(modelDir, 'face_recognition_model-weights_manifest.json'), 'utf8'));
  let h;
  for (const group of manifest) {
    const data = Buffer.concat(group.paths.map((p) => fs.readFileSync(path.join(modelDir, p))));
    const buffer = data.buffer.slice(data.byteOffset, data.byteOffset + data.length);
    const tensors = tf.io.decodeWeights(buffer, group.weights);
    for (const spec of group.weights) {
      const values = tensors[spec.name].dataSync();
      h = fnv1a64(new Uint8Array(values.buffer, values.byteOffset, values.byteLength), h);
      tensors[spec.name].dispose();
    }
  }
  return hex(h);
}

async function describe(net, file) {
  const bytes = fs.readFileSync(file);
  if (bytes.length !== SIDE * SIDE * 3) throw new Error(`${file}: ${bytes.length} bytes, expected ${SIDE * SIDE * 3}`);
  const image = tf.tensor3d(Int32Array.from(bytes), [SIDE, SIDE, 3], 'int32');
  const descriptor = await net.computeFaceDescriptor(image);
  image.dispose();
  return { hash: hex(fnv1a64(bytes)), values: Array.from(descriptor) };
}

async function main() {
  const inputs = flag('inputs');
  const packageDir = path.dirname(require.resolve('@vladmandic/face-api/package.json'));
  const modelDir = flag('model_dir', path.join(packageDir, 'model'));
  await tf.setBackend('cpu');
  await tf.ready();
  const net = faceapi.nets.faceRecognitionNet;
  await net.loadFromDisk(modelDir);
  const faceapiVersion = require('@vladmandic/face-api/package.json').version;
  console.log(`# face-api ${faceapiVersion}, @tensorflow/tfjs ${tf.version.tfjs}, backend ${tf.getBackend()}, node ${process.version}`);
  console.log('# @weights <fnv1a64 of all decoded float32 weights, manifest order>');
  console.log(`@weights ${weightsHash(modelDir)}`);
  console.log('# <name> <fnv1a64 of the 150x150x3 RGB bytes> <128 descriptor values>');
  const lines = fs.readFileSync(path.join(inputs, 'inputs.txt'), 'utf8').trim().split('\n');
  for (const line of lines) {
    const [name, expectedHash] = line.split(' ');
    const { hash, values } = await describe(net, path.join(inputs, `${name}.rgb`));
    if (hash !== expectedHash) throw new Error(`${name}: pixel hash ${hash}, inputs.txt says ${expectedHash}`);
    console.log([name, hash, ...values.map((v) => v.toPrecision(9))].join(' '));
  }
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
