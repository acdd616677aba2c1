// The soak's swing analysis (bench/lib/rss-swings.ts): falls read off block medians, and the lows of each half.
import { describe, expect, it } from 'vitest';
import { rssSwings, type RssBlock } from '../../bench/lib/rss-swings';

const series = (mbs: number[]): RssBlock[] => mbs.map((rssMb, i) => ({ t: 2 + i * 0.5, rssMb }));

describe('rssSwings', () => {
  it('finds each fall of a sawtooth from its peak to its trough, and lows that stay', () => {
    // Two teeth: climb 260 -> 300, fall to 262, climb to 298, fall to 261, climb again.
    const teeth = series([260, 270, 280, 290, 300, 280, 262, 270, 285, 298, 275, 261, 270, 280]);
    const { falls, halfLows } = rssSwings(teeth);
    expect(falls).toEqual([
      { fromT: 4, fromMb: 300, toT: 5, toMb: 262 },
      { fromT: 6.5, fromMb: 298, toT: 7.5, toMb: 261 },
    ]);
    expect(halfLows).toEqual([{ t: 2, rssMb: 260 }, { t: 7.5, rssMb: 261 }]);
  });

  it('finds no fall in a steady climb, whose lows rise with it', () => {
    const leak = series([260, 262, 263, 266, 267, 270, 271, 274, 276, 279]);
    const { falls, halfLows } = rssSwings(leak);
    expect(falls).toEqual([]);
    expect(halfLows![1].rssMb - halfLows![0].rssMb).toBe(10);
  });

  it('ignores wiggles under the threshold, and reports a fall still under way at the end', () => {
    expect(rssSwings(series([270, 262, 271, 263, 270, 264])).falls).toEqual([]);
    expect(rssSwings(series([270, 290, 285, 268])).falls).toEqual([{ fromT: 2.5, fromMb: 290, toT: 3.5, toMb: 268 }]);
    expect(rssSwings(series([270])).halfLows).toBeNull();
  });
});
