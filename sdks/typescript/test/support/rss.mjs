// Peak resident memory of this process, sampled every 5 ms by a worker thread
// (so a busy event loop cannot skip samples) from process.memoryUsage.rss().

import { Worker } from "node:worker_threads";

const SAMPLER = `
const { workerData } = require("node:worker_threads");
const peak = new BigInt64Array(workerData);
setInterval(() => {
  const rss = BigInt(process.memoryUsage.rss());
  if (rss > Atomics.load(peak, 0)) Atomics.store(peak, 0, rss);
}, 5);
`;

export class PeakRss {
  constructor() {
    this.shared = new SharedArrayBuffer(8);
    this.peak = new BigInt64Array(this.shared);
    this.worker = new Worker(SAMPLER, { eval: true, workerData: this.shared });
    this.worker.unref();
  }

  /** Start a window: the baseline is the resident memory now. */
  begin() {
    const now = BigInt(process.memoryUsage.rss());
    Atomics.store(this.peak, 0, now);
    this.baseline = now;
  }

  /** MiB the peak rose above the baseline since `begin()`. */
  growthMiB() {
    const now = BigInt(process.memoryUsage.rss());
    const peak = now > Atomics.load(this.peak, 0) ? now : Atomics.load(this.peak, 0);
    return Number(peak - this.baseline) / 2 ** 20;
  }

  async close() {
    await this.worker.terminate();
  }
}
