// What the node pool keeps of each node's link and speed, fed by events with timestamps (no clock of its own).
import { describe, expect, it } from 'vitest';
import { delivered, measuredLink, registerNode, EMPTY_POOL, assign, type PoolNode } from '../../src/server/core/engine/node-pool';
import { nodeSnapshot } from '../../src/server/core/engine/views';
import { CAPS, EngineDriver } from '../support/engine-driver';

function fresh(samplesPerSecond = 100): PoolNode {
  return registerNode(EMPTY_POOL, { id: 1, name: 'n1', capabilities: { ...CAPS, samplesPerSecond }, connection: 1, at: 0, heartbeatMs: 100 }).pool.get(1)!;
}

describe('link measurements', () => {
  it('start unknown, take the first value as it is, then smooth (one odd sample moves them little)', () => {
    let n = fresh();
    expect([n.rttMs, n.uploadBytesPerSecond]).toEqual([null, null]);
    n = measuredLink(n, { rttMs: 100 });
    expect(n.rttMs).toBe(100);
    n = measuredLink(n, { rttMs: 1000 });
    expect(n.rttMs).toBeCloseTo(370, 6);
    n = measuredLink(n, { uploadBytesPerSecond: 1e6 });
    expect(n.uploadBytesPerSecond).toBe(1e6);
    expect(n.rttMs).toBeCloseTo(370, 6);
  });

  it('ignore nonsense (negative, NaN, infinite)', () => {
    const n = measuredLink(measuredLink(fresh(), { rttMs: 50 }), { rttMs: -1, uploadBytesPerSecond: NaN });
    expect([n.rttMs, n.uploadBytesPerSecond]).toEqual([50, null]);
    expect(measuredLink(n, { rttMs: Infinity }).rttMs).toBe(50);
  });

  it('a delivery measures speed without the link’s round trip, from the calibration at join onwards', () => {
    const joined = fresh(1000);
    expect(joined.samplesPerSecond).toBe(1000);
    // 100 samples delivered 1.1 s after the assignment over a 100 ms link: 100 samples/s of training.
    const near = delivered(assign(joined, 1, 0), 1, 100, 1100);
    const far = delivered(assign(measuredLink(joined, { rttMs: 100 }), 1, 0), 1, 100, 1100);
    expect(far.samplesPerSecond).toBeCloseTo(0.7 * 1000 + 0.3 * 100, 6);
    expect(near.samplesPerSecond).toBeLessThan(far.samplesPerSecond);
    // A round trip as long as the round itself (an agent delaying its pongs) makes it look at most twice as fast.
    const absurd = delivered(assign(measuredLink(joined, { rttMs: 10_000 }), 1, 0), 1, 100, 1000);
    expect(absurd.samplesPerSecond).toBeCloseTo(0.7 * 1000 + 0.3 * 200, 6);
    expect([joined.speedMeasured, absurd.speedMeasured]).toEqual([false, true]);
    // The update's upload at the measured rate is link time too: 1 MB at 10 MB/s plus a 100 ms round trip.
    const thin = delivered(assign(measuredLink(joined, { rttMs: 100, uploadBytesPerSecond: 1e7 }), 1, 0), 1, 100, 1200, 1e6);
    expect(thin.samplesPerSecond).toBeCloseTo(0.7 * 1000 + 0.3 * 100, 6);
  });

  it('the engine keeps the gateway’s measurements on the node it shows, and ignores a replaced connection', () => {
    const d = new EngineDriver();
    const first = d.join(1);
    d.send({ type: 'link-measured', at: d.now, nodeId: 1, connection: first, rttMs: 42, uploadBytesPerSecond: 5e6 });
    expect(nodeSnapshot(d.state, 1)).toMatchObject({ rttMs: 42, uploadBytesPerSecond: 5e6 });
    d.join(1);
    d.send({ type: 'link-measured', at: d.now, nodeId: 1, connection: first, rttMs: 9999 });
    expect(nodeSnapshot(d.state, 1)!.rttMs).toBe(42);
  });
});
