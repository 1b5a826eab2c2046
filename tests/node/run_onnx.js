#!/usr/bin/env node
// Runs an ONNX model in ONNX Runtime (CPU) on raw float32 input and writes
// the float32 output: the consumer side of qnas's ONNX export.
//
//   node run_onnx.js MODEL.onnx INPUT.f32 N,C,H,W OUTPUT.f32
//   node run_onnx.js MODEL.onnx --bench N,C,H,W WARMUP RUNS THREADS   (prints JSON latency)
'use strict';
const fs = require('fs');
const path = require('path');

let ort;
try {
  ort = require(path.join(__dirname, 'node_modules', 'onnxruntime-node'));
} catch (e) {
  console.error('run_onnx: onnxruntime-node is not installed in tests/node; run scripts/install-deps.sh');
  process.exit(2);
}

function shapeOf(text) {
  const dims = text.split(',').map(Number);
  if (dims.length !== 4 || dims.some((d) => !Number.isInteger(d) || d <= 0)) {
    throw new Error(`shape '${text}': expected N,C,H,W positive integers`);
  }
  return dims;
}

async function session(model, threads) {
  return ort.InferenceSession.create(model, {
    executionProviders: ['cpu'],
    graphOptimizationLevel: process.env.QNAS_ORT_OPT || 'all',
    intraOpNumThreads: threads,
    interOpNumThreads: 1,
  });
}

async function run(model, input, shapeText, output) {
  const dims = shapeOf(shapeText);
  const buf = fs.readFileSync(input);
  const data = new Float32Array(buf.buffer, buf.byteOffset, buf.byteLength / 4);
  if (data.length !== dims.reduce((a, b) => a * b)) throw new Error(`${input}: ${data.length} floats; expected ${dims.join('x')}`);
  const s = await session(model, 1);
  const out = await s.run({ [s.inputNames[0]]: new ort.Tensor('float32', data, dims) });
  const y = out[s.outputNames[0]];
  fs.writeFileSync(output, Buffer.from(y.data.buffer, y.data.byteOffset, y.data.byteLength));
  console.log(JSON.stringify({ output: s.outputNames[0], dims: y.dims }));
}

async function bench(model, shapeText, warmup, runs, threads) {
  const dims = shapeOf(shapeText);
  const s = await session(model, Number(threads));
  const data = new Float32Array(dims.reduce((a, b) => a * b)).fill(0.5);
  const feeds = { [s.inputNames[0]]: new ort.Tensor('float32', data, dims) };
  for (let i = 0; i < Number(warmup); ++i) await s.run(feeds);
  const ms = [];
  for (let i = 0; i < Number(runs); ++i) {
    const t0 = process.hrtime.bigint();
    await s.run(feeds);
    ms.push(Number(process.hrtime.bigint() - t0) / 1e6);
  }
  ms.sort((a, b) => a - b);
  const q = (p) => ms[Math.min(ms.length - 1, Math.round(p * (ms.length - 1)))];
  console.log(JSON.stringify({ batch: dims[0], threads: Number(threads), median_ms: q(0.5), p10_ms: q(0.1), p90_ms: q(0.9) }));
}

const args = process.argv.slice(2);
const main = args[1] === '--bench' ? bench(args[0], args[2], args[3], args[4], args[5]) : run(...args);
main.catch((e) => {
  console.error(`run_onnx: ${e.message}`);
  process.exit(1);
});
