/**
 * CPU time of this process (user + system, all its threads), in milliseconds. The in-process
 * benchmarks time their loops with it rather than with the wall clock: on a machine shared with
 * other work, wall time also counts the time other processes held the core.
 */
export function cpuMs(): number {
  const c = process.cpuUsage();
  return (c.user + c.system) / 1000;
}
