// Preloaded (node --import) into every process the chaos harness starts. If the harness dies, even by
// SIGKILL, this child is re-parented; it notices within half a second and kills itself, so no coordinator
// or agent outlives a crashed or interrupted chaos run. It does nothing else.
const parent = process.ppid;
const timer = setInterval(() => {
  if (process.ppid !== parent) process.kill(process.pid, 'SIGKILL');
}, 500);
timer.unref();
