// What the soak's RSS does besides its trend. The server's RSS does not grow smoothly: it climbs for several
// minutes and falls back by tens of MB at once (V8's pages and the malloc arenas of its threads; see
// src/server/node-flags.ts). A straight line fitted to a 30-minute window of such a sawtooth has a slope that
// depends on where in the cycle the window ends. This reads the falls off the block medians, and the lowest block
// of each half of the window, so a reader can tell a leak (lows that rise with the rest) from a sawtooth (lows
// that stay while the line through everything climbs).

export interface RssBlock {
  /** Minutes since the session started (block centre). */
  t: number;
  rssMb: number;
}

export interface RssFall {
  fromT: number;
  fromMb: number;
  toT: number;
  toMb: number;
}

export interface RssSwings {
  /** Falls of at least `minFallMb` from a running peak to the trough after it, in time order. */
  falls: RssFall[];
  /** The lowest block of the first half of the window and of the second half (null with fewer than 2 blocks). */
  halfLows: [RssBlock, RssBlock] | null;
}

export function rssSwings(blocks: readonly RssBlock[], options: { minFallMb?: number } = {}): RssSwings {
  const minFall = options.minFallMb ?? 15;
  const falls: RssFall[] = [];
  // Walk the blocks keeping the highest point since the last fall; a fall runs from that peak down to the lowest
  // block before the series climbs minFall/3 above that low again.
  let peak: RssBlock | null = null;
  let low: RssBlock | null = null;
  for (const b of blocks) {
    if (low && b.rssMb >= low.rssMb + minFall / 3) {
      falls.push({ fromT: peak!.t, fromMb: peak!.rssMb, toT: low.t, toMb: low.rssMb });
      peak = b;
      low = null;
      continue;
    }
    if (!peak || (!low && b.rssMb > peak.rssMb)) {
      peak = b;
      continue;
    }
    if (low ? b.rssMb < low.rssMb : b.rssMb <= peak.rssMb - minFall) low = b;
  }
  if (peak && low) falls.push({ fromT: peak.t, fromMb: peak.rssMb, toT: low.t, toMb: low.rssMb });

  const lowest = (part: readonly RssBlock[]) => part.reduce((a, b) => (b.rssMb < a.rssMb ? b : a));
  const half = Math.floor(blocks.length / 2);
  const halfLows: [RssBlock, RssBlock] | null = half >= 1 ? [lowest(blocks.slice(0, half)), lowest(blocks.slice(half))] : null;
  return { falls, halfLows };
}
