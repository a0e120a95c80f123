/** Worker-thread entry of the loader: builds samples and transfers their buffers back. */
import { parentPort } from 'node:worker_threads';
import { runBuildJob, sampleTransferList, type BuildJob } from './build_job.js';

if (!parentPort) throw new Error('@mcp-medsam/samplers worker: must run in a worker thread');
const port = parentPort;
port.on('message', (job: BuildJob) => {
  void runBuildJob(job).then((res) => {
    port.postMessage(res, res.ok ? sampleTransferList(res.sample) : []);
  });
});
