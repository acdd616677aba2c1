import { commitPath, roundCloseCompute } from './ingest';
import { createAggregatorPool } from '../src/server/adapters/workers/aggregator-pool';
const pool = await createAggregatorPool({ backend: 'wasm' });
const p = Number(process.argv[2] ?? 1e6);
console.log('staged', await roundCloseCompute(pool, p, 100, 9, true));
console.log('js', await roundCloseCompute(pool, p, 100, 5, false));
console.log('commit', await commitPath(pool, p, 7));
await pool.close();
