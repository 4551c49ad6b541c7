/**
 * The project's own UpstreamSimulator in a process of its own, only to measure whether it is fast enough to
 * stand in for the upstream (it is strict, records every request, and parses every URL). run.ts compares
 * its poll throughput with the lean fake's and uses the faster one.
 */
import { UpstreamSimulator } from '../src/simulator/server.js';

const sim = new UpstreamSimulator({ apiKeys: [process.env.BENCH_UPSTREAM_KEY ?? 'bench-upstream-key'], completeAfterMs: 3_600_000 });
const url = await sim.listen(0);
process.on('disconnect', () => process.exit(0));
process.send?.({ ready: true, port: Number(new URL(url).port) });
