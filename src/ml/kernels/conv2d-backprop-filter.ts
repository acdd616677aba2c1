// The wasm backend of tfjs 4.22 has no Conv2DBackpropFilter kernel, so training any conv layer on wasm
// throws "Kernel 'Conv2DBackpropFilter' not registered". This supplies one built from kernels wasm does
// have, and registers it for 'wasm' only when it is missing (a future tfjs that ships its own wins).
//
// dW[kh,kw,c,o] = sum_{n,i,j} x[n, i*s+kh-pt, j*s+kw-pl, c] * dy[n,i,j,o] is itself a conv2d: of x with
// channels as batch and batch as channels, by dy used as the filter, dilated by the stride; a transpose
// puts the result in filter layout. wasm's Conv2D (XNNPACK) makes this about as fast as the forward conv.
// (wasm's native Conv3DBackpropFilterV2 with a depth of 1 looked like a shortcut, but measured here it gave
// wrong results with stride 2 and was 8x slower on the CNN's second layer.)
//
// Kernels run inside the engine, so they call other kernels' functions directly on TensorInfos and free
// intermediates through the backend (calling tf ops here would record them on the gradient tape).

import type { Tf } from '../backend';

type TensorInfo = import('@tensorflow/tfjs-core').TensorInfo;
type KernelBackend = import('@tensorflow/tfjs-core').KernelBackend;
type KernelFunc = import('@tensorflow/tfjs-core').KernelFunc;
type ExplicitPadding = [[number, number], [number, number], [number, number], [number, number]];

/** Attributes of tfjs' Conv2DBackpropFilter kernel (NHWC only; the only layout wasm supports). */
interface BackpropFilterAttrs {
  strides: number | [number, number];
  pad: 'valid' | 'same' | number | ExplicitPadding;
  dataFormat?: 'NHWC' | 'NCHW';
  dimRoundingMode?: 'floor' | 'round' | 'ceil';
  filterShape: [number, number, number, number];
}

/** Registers the kernel for the wasm backend unless it already exists. Returns whether it registered. */
export function registerWasmConv2DBackpropFilter(tf: Tf): boolean {
  if (tf.getKernel('Conv2DBackpropFilter', 'wasm')) return false;
  tf.registerKernel({
    kernelName: 'Conv2DBackpropFilter',
    backendName: 'wasm',
    kernelFunc: makeConv2DBackpropFilter(tf),
  });
  return true;
}

/** The kernel function; it runs on whichever backend is current (only wasm registers it). */
export function makeConv2DBackpropFilter(tf: Tf): KernelFunc {
  return ({ inputs, backend, attrs }) => {
    const x = inputs.x as TensorInfo;
    const dy = inputs.dy as TensorInfo;
    const a = attrs as unknown as BackpropFilterAttrs;
    if (a.dataFormat === 'NCHW') throw new Error('Conv2DBackpropFilter on wasm supports NHWC only');
    if (x.dtype !== 'float32' || dy.dtype !== 'float32') {
      throw new Error(`Conv2DBackpropFilter on wasm needs float32 inputs, got ${x.dtype} and ${dy.dtype}`);
    }
    return filterGradViaConv2d(tf, x, dy, a, backend as KernelBackend);
  };
}

function pair(v: number | [number, number]): [number, number] {
  return typeof v === 'number' ? [v, v] : v;
}

function kernel(tf: Tf, name: string, backendName: string): KernelFunc {
  const config = tf.getKernel(name, backendName);
  if (!config) throw new Error(`kernel ${name} is missing on ${backendName}`);
  return config.kernelFunc;
}

function filterGradViaConv2d(tf: Tf, x: TensorInfo, dy: TensorInfo, a: BackpropFilterAttrs, backend: KernelBackend): TensorInfo {
  const backendName = tf.getBackend();
  const transpose = kernel(tf, 'Transpose', backendName);
  const slice = kernel(tf, 'Slice', backendName);
  const conv2d = kernel(tf, 'Conv2D', backendName);
  const [n, h, w, c] = x.shape;
  const [, oh, ow] = dy.shape;
  const [fh, fw] = a.filterShape;
  const [sh, sw] = pair(a.strides);
  // Same geometry as the forward conv, so the top/left padding matches what the forward pass used.
  const info = tf.backend_util.computeConv2DInfo(
    x.shape as [number, number, number, number],
    a.filterShape,
    [sh, sw],
    1,
    a.pad,
    a.dimRoundingMode,
  );
  const top = info.padInfo.top;
  const left = info.padInfo.left;
  // Rows the dilated dy "filter" spans, and the padding that leaves exactly fh output rows. When the
  // forward conv dropped trailing rows (valid padding, stride not dividing), that padding is negative:
  // crop x instead.
  const spanH = (oh - 1) * sh + 1;
  const spanW = (ow - 1) * sw + 1;
  const bottom = fh - 1 + spanH - h - top;
  const right = fw - 1 + spanW - w - left;

  const temps: TensorInfo[] = [];
  try {
    let input = x;
    if (bottom < 0 || right < 0) {
      input = slice({
        inputs: { x },
        backend,
        attrs: { begin: [0, 0, 0, 0], size: [n, h + Math.min(bottom, 0), w + Math.min(right, 0), c] },
      }) as TensorInfo;
      temps.push(input);
    }
    const xT = transpose({ inputs: { x: input }, backend, attrs: { perm: [3, 1, 2, 0] } }) as TensorInfo;
    temps.push(xT);
    const dyT = transpose({ inputs: { x: dy }, backend, attrs: { perm: [1, 2, 0, 3] } }) as TensorInfo;
    temps.push(dyT);
    const pad: ExplicitPadding = [
      [0, 0],
      [top, Math.max(bottom, 0)],
      [left, Math.max(right, 0)],
      [0, 0],
    ];
    // [C, fh, fw, O]
    const grad = conv2d({
      inputs: { x: xT, filter: dyT },
      backend,
      attrs: { strides: [1, 1], pad, dataFormat: 'NHWC', dilations: [sh, sw] },
    }) as TensorInfo;
    temps.push(grad);
    return transpose({ inputs: { x: grad }, backend, attrs: { perm: [1, 2, 0, 3] } }) as TensorInfo;
  } finally {
    for (const t of temps) backend.disposeData(t.dataId);
  }
}
