// What the agent accepts from a coordinator: every malformed or forged input gives a reason, never a throw.
import { describe, expect, it } from 'vitest';
import { MAX_CONTROL_TEXT_BYTES, readInbound } from '../../src/agent/inbound';
import { encodeFrame, FrameKind } from '../../src/protocol/frame';

const text = (value: unknown) => Buffer.from(typeof value === 'string' ? value : JSON.stringify(value));
const session = { sessionId: 3, model: 'mlp', dataset: 'mnist', seed: 7, paramCount: 109_386 };
const assignment = { sessionId: 3, round: 4, modelVersion: 4, nodeId: 2, attempt: 1, epoch: 0, shardStart: 128, shardCount: 64, batchSize: 64, deadlineAt: 1_700_000_000_000 };
const modelFields = { kind: FrameKind.Model, sessionId: 3, round: 4, nodeId: 0, attempt: 0, modelVersion: 4, sampleCount: 0, trainLoss: Number.NaN };

function rejected(data: Uint8Array, isBinary: boolean) {
  let result;
  expect(() => (result = readInbound(data, isBinary))).not.toThrow();
  expect(result!.ok).toBe(false);
  return result as unknown as { ok: false; reason: string; reconnect: boolean };
}

describe('agent inbound validation', () => {
  it('accepts the coordinator messages of the protocol, typed', () => {
    const welcome = readInbound(text({ v: 1, type: 'welcome', nodeId: 2, heartbeatMs: 200, session, token: 't'.repeat(32) }), false);
    expect(welcome).toMatchObject({ ok: true, kind: 'control', message: { type: 'welcome', nodeId: 2, session } });
    const a = readInbound(text({ v: 1, type: 'assignment', assignment }), false);
    expect(a).toEqual({ ok: true, kind: 'control', message: { v: 1, type: 'assignment', assignment } });
    expect(readInbound(text({ v: 1, type: 'cancel', round: 4, reason: 'deadline' }), false).ok).toBe(true);
    expect(readInbound(text({ v: 1, type: 'session', session: null }), false).ok).toBe(true);
    // An accepted update, and one accepted clipped to the coordinator's relative norm limit.
    expect(readInbound(text({ v: 1, type: 'accepted', round: 4, samples: 128 }), false)).toEqual({ ok: true, kind: 'control', message: { v: 1, type: 'accepted', round: 4, samples: 128 } });
    expect(readInbound(text({ v: 1, type: 'accepted', round: 4, samples: 128, clippedTo: 0.25 }), false)).toMatchObject({ ok: true, message: { clippedTo: 0.25 } });
  });

  it('rejects malformed and forged control messages with a reason', () => {
    expect(rejected(text('not json'), false).reason).toMatch(/not JSON/);
    expect(rejected(text({ v: 1, type: 'launch-missiles' }), false).reason).toMatch(/BAD_MESSAGE/);
    expect(rejected(text(null), false).reason).toMatch(/BAD_MESSAGE/);
    expect(rejected(text([1, 2]), false).reason).toMatch(/BAD_MESSAGE/);
    // Forged assignments: a negative shard, a fractional round, a string where a number goes, a missing field.
    const forged = [
      { ...assignment, shardStart: -1 },
      { ...assignment, round: 1.5 },
      { ...assignment, shardCount: '64' },
      { ...assignment, nodeId: 2 ** 32 },
      (({ attempt: _attempt, ...rest }) => rest)(assignment),
    ];
    for (const bad of forged) {
      const r = rejected(text({ v: 1, type: 'assignment', assignment: bad }), false);
      expect(r.reason).toMatch(/assignment\./);
      expect(r.reconnect).toBe(false);
    }
    expect(rejected(text({ v: 1, type: 'welcome', nodeId: 2, heartbeatMs: 0, session: null }), false).reason).toMatch(/heartbeatMs/);
    expect(rejected(text({ v: 1, type: 'welcome', nodeId: 2, heartbeatMs: 200, session: { ...session, model: 'resnet' } }), false).reason).toMatch(/session\.model/);
    expect(rejected(text({ v: 1, type: 'welcome', nodeId: 2, heartbeatMs: 200, session: null, token: 'short' }), false).reason).toMatch(/token/);
    for (const clippedTo of [0, -1, 'small', null]) expect(rejected(text({ v: 1, type: 'accepted', round: 4, samples: 128, clippedTo }), false).reason).toMatch(/clippedTo/);
  });

  it('asks to drop the link for another protocol version, in text or in a frame', () => {
    const r = rejected(text({ v: 2, type: 'welcome', nodeId: 1 }), false);
    expect(r.reconnect).toBe(true);
    expect(r.reason).toMatch(/PROTOCOL_VERSION.*upgrade/);
    const frame = encodeFrame(modelFields, new Float32Array(8));
    new DataView(frame.buffer).setUint16(4, 9, true);
    const f = rejected(frame, true);
    expect(f.reconnect).toBe(true);
    expect(f.reason).toMatch(/protocol version 9, this agent speaks 1/);
  });

  it('refuses oversized control text before parsing it', () => {
    const huge = Buffer.alloc(MAX_CONTROL_TEXT_BYTES + 1, 0x20);
    expect(rejected(huge, false).reason).toMatch(/over the 65536-byte limit/);
  });

  it('accepts a model frame into memory of its own, and rejects anything else binary', () => {
    const values = Float32Array.from({ length: 10 }, (_, i) => i / 3);
    const bytes = encodeFrame(modelFields, values);
    const r = readInbound(bytes, true);
    if (!r.ok || r.kind !== 'model') throw new Error(`expected a model frame, got ${JSON.stringify(r)}`);
    expect(r.frame.header).toMatchObject({ sessionId: 3, modelVersion: 4, paramCount: 10 });
    expect(r.frame.values).toEqual(values);
    expect(r.frame.values.buffer).not.toBe(bytes.buffer);
    // The same frame at an odd offset (as ws may hand it over) decodes with one copy, not two.
    const shifted = new Uint8Array(bytes.length + 1);
    shifted.set(bytes, 1);
    const u = readInbound(shifted.subarray(1), true);
    expect(u.ok && u.kind === 'model' && Array.from(u.frame.values)).toEqual(Array.from(values));

    expect(rejected(encodeFrame({ ...modelFields, kind: FrameKind.Gradient, trainLoss: 1 }, values), true).reason).toMatch(/expected a model frame.*Gradient/);
    const corrupted = bytes.slice();
    corrupted[70] ^= 1;
    expect(rejected(corrupted, true).reason).toMatch(/bad model frame: CHECKSUM/);
    expect(rejected(bytes.subarray(0, 30), true).reason).toMatch(/FRAME_TRUNCATED/);
    expect(rejected(new Uint8Array(0), true).reason).toMatch(/FRAME_TRUNCATED/);
    expect(rejected(text({ v: 1, type: 'cancel', round: 1, reason: '' }), true).reason).toMatch(/FRAME_(TRUNCATED|BAD_MAGIC)/);
  });

  it('never throws on random bytes', () => {
    let seed = 42;
    const rand = () => ((seed = (Math.imul(seed, 1664525) + 1013904223) >>> 0) / 2 ** 32);
    for (let i = 0; i < 500; i++) {
      const bytes = new Uint8Array(Math.floor(rand() * 200));
      for (let j = 0; j < bytes.length; j++) bytes[j] = Math.floor(rand() * 256);
      if (i % 2 === 0 && bytes.length >= 8) new DataView(bytes.buffer).setUint32(0, 0x55504748, true);
      expect(() => readInbound(bytes, i % 3 !== 0)).not.toThrow();
    }
  });
});
