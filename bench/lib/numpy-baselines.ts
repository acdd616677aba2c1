// numpy at its best for the sample-weighted mean of N updates of P float32, in a python3 subprocess:
//   - BLAS `w @ X` over the updates stacked in one (N, P) array (sgemv, as many threads as BLAS takes: all cores),
//   - np.average(X, axis=0, weights=w) over the same array,
//   - the streaming form, `acc += w_j * a_j` over N separate arrays (a temporary per input, as written),
// and which BLAS kernel and thread count ran (threadpoolctl; numpy's own build info when it is missing).
// OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE are unset for this command only: some machines set them, and they
// slow a current numpy's OpenBLAS (a forced older core type, a wrong blocking size).
import { spawnSync } from 'node:child_process';

const SCRIPT = `
import json, os, sys, time
import numpy as np
n, p, reps = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
rng = np.random.default_rng(1)
X = (rng.standard_normal((n, p), dtype=np.float32) * np.float32(1e-3))
w = np.array([100 + 37 * (j % 17) for j in range(n)], dtype=np.float32)
w /= w.sum()
xs = [X[j].copy() for j in range(n)]
acc = np.empty(p, dtype=np.float32)
def streaming():
    acc.fill(0)
    for j in range(n):
        np.add(acc, w[j] * xs[j], out=acc)  # acc += w * a
def timed(fn, reps, warm=2):
    for _ in range(warm): fn()
    times = []
    for _ in range(reps):
        t = time.perf_counter(); fn(); times.append((time.perf_counter() - t) * 1e3)
    times.sort()
    return times[len(times) // 2]
info = {"numpy": np.__version__, "cores": os.cpu_count()}
pools = []
try:
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        sys.path.append('/usr/lib/python3/dist-packages')  # Debian's python3-threadpoolctl (pure Python)
        from threadpoolctl import threadpool_info
    import threadpoolctl
    info["threadpoolctl"] = threadpoolctl.__version__
    pools = [{k: d.get(k) for k in ("internal_api", "num_threads", "architecture", "version")} for d in threadpool_info()]
except Exception as e:
    info["threadpoolctlError"] = str(e)
if not pools:
    # An older threadpoolctl does not know numpy's scipy-openblas build: ask the loaded library itself.
    import ctypes
    libs = sorted({l.split()[-1] for l in open('/proc/self/maps') if 'openblas' in l and l.strip().endswith('.so') or 'openblas' in l and '.so' in l.split()[-1]})
    for path in libs:
        lib = ctypes.CDLL(path)
        def call(names, restype):
            for name in names:
                fn = getattr(lib, name, None)
                if fn is not None:
                    fn.restype = restype
                    return fn()
            return None
        config = call(["openblas_get_config", "openblas_get_config64_", "scipy_openblas_get_config64_", "scipy_openblas_get_config"], ctypes.c_char_p)
        core = call(["openblas_get_corename", "openblas_get_corename64_", "scipy_openblas_get_corename64_", "scipy_openblas_get_corename"], ctypes.c_char_p)
        threads = call(["openblas_get_num_threads", "openblas_get_num_threads64_", "scipy_openblas_get_num_threads64_", "scipy_openblas_get_num_threads"], ctypes.c_int)
        if config is not None:
            pools.append({"internal_api": "openblas (asked via ctypes)", "num_threads": threads, "architecture": core.decode() if core else None, "version": config.decode()})
            break
info["threadpools"] = pools or None
out = {
    "info": info,
    "blasMs": timed(lambda: w @ X, reps),
    "averageMs": timed(lambda: np.average(X, axis=0, weights=w), reps),
    "streamingMs": timed(streaming, reps),
}
r = w @ X
print(json.dumps(out))
`;

export interface NumpyBaselines {
  info: { numpy: string; cores: number; threadpools: { internal_api: string; num_threads: number; architecture: string; version: string }[] | null; threadpoolctlError?: string };
  blasMs: number;
  averageMs: number;
  streamingMs: number;
}

export function numpyBaselines(n: number, p: number, reps: number): NumpyBaselines | { error: string } {
  const env = { ...process.env };
  delete env.OPENBLAS_CORETYPE;
  delete env.OPENBLAS_L2_SIZE;
  const result = spawnSync('python3', ['-c', SCRIPT, String(n), String(p), String(reps)], { encoding: 'utf8', timeout: 600_000, env });
  if (result.error) return { error: result.error.message };
  if (result.status !== 0) return { error: (result.stderr || `exit ${result.status}`).trim().split('\n').pop() ?? 'failed' };
  try {
    return JSON.parse(result.stdout.trim()) as NumpyBaselines;
  } catch {
    return { error: `unexpected output: ${result.stdout.slice(0, 200)}` };
  }
}

/** "openblas 0.3.31 (SkylakeX), 2 threads" from the threadpool info, or why it is unknown. */
export function describeBlas(b: NumpyBaselines): string {
  const pools = b.info.threadpools;
  if (!pools) return `numpy ${b.info.numpy}, BLAS threads unknown (threadpoolctl: ${b.info.threadpoolctlError ?? 'missing'})`;
  const blas = pools.filter((t) => t.internal_api !== 'openmp');
  const shown = (blas.length ? blas : pools).map((t) => `${t.internal_api} ${t.version ?? ''} (${t.architecture ?? '?'}), ${t.num_threads} thread${t.num_threads === 1 ? '' : 's'}`);
  return `numpy ${b.info.numpy}: ${shown.join('; ')}`;
}
