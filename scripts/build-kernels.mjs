// Assembles the WebAssembly text kernels in src/workers/kernels/*.wat into the committed .wasm binaries next to
// them, offline, with the npm `wabt` package (a devDependency: nothing is assembled at run time).
//
//   node scripts/build-kernels.mjs           write every .wasm
//   node scripts/build-kernels.mjs --check   write nothing; exit 1 when a committed .wasm differs from its .wat
//
// The unit tests run --check, so a .wat edited without rebuilding fails CI instead of shipping a stale binary.
import { readdirSync, readFileSync, writeFileSync, existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import path from 'node:path';
import wabtInit from 'wabt';

const kernelsDir = fileURLToPath(new URL('../src/workers/kernels/', import.meta.url));

// Exactly the proposals the kernels use; anything else fails to assemble rather than slipping in unnoticed.
const FEATURES = { simd: true, threads: true, bulk_memory: true };

async function assemble(wabt, watPath) {
  const text = readFileSync(watPath, 'utf8');
  const mod = wabt.parseWat(path.basename(watPath), text, FEATURES);
  try {
    mod.resolveNames();
    mod.validate(FEATURES); // validate takes its own feature set (missing from wabt's typings)
    // No debug names: the binary depends only on the code, so rebuilding is byte-for-byte reproducible.
    return mod.toBinary({ log: false, canonicalize_lebs: true, relocatable: false, write_debug_names: false }).buffer;
  } finally {
    mod.destroy();
  }
}

async function main() {
  const check = process.argv.includes('--check');
  const wabt = await wabtInit();
  const sources = readdirSync(kernelsDir).filter((f) => f.endsWith('.wat')).sort();
  if (sources.length === 0) throw new Error(`no .wat kernels in ${kernelsDir}`);
  let stale = 0;
  for (const name of sources) {
    const watPath = path.join(kernelsDir, name);
    const wasmPath = watPath.replace(/\.wat$/, '.wasm');
    const bytes = await assemble(wabt, watPath);
    if (check) {
      const committed = existsSync(wasmPath) ? readFileSync(wasmPath) : null;
      if (!committed || !Buffer.from(bytes).equals(committed)) {
        stale++;
        console.error(`${path.relative(process.cwd(), wasmPath)} is stale: run node scripts/build-kernels.mjs`);
      } else {
        console.log(`${path.relative(process.cwd(), wasmPath)} matches its .wat (${bytes.length} bytes)`);
      }
    } else {
      writeFileSync(wasmPath, bytes);
      console.log(`wrote ${path.relative(process.cwd(), wasmPath)} (${bytes.length} bytes)`);
    }
  }
  if (stale > 0) process.exit(1);
}

main().catch((err) => {
  console.error(err instanceof Error ? err.message : err);
  process.exit(1);
});
