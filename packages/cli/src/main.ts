import { Command } from 'commander';
import { registerConvert } from './commands/convert.js';
import { registerDemo } from './commands/demo.js';
import { registerEvaluate } from './commands/evaluate.js';
import { registerExport } from './commands/export.js';
import { registerInfer } from './commands/infer.js';
import { registerForward } from './commands/forward.js';
import { registerInspect } from './commands/inspect.js';
import { registerTrain } from './commands/train.js';
import { registerTrainStep } from './commands/train_step.js';

/** Builds the `mcp-medsam` command; each sub-command lives in its own module under commands/. */
export function buildProgram(): Command {
  const program = new Command('mcp-medsam')
    .description('MCP-MedSAM: train, export and run the lightweight medical Segment Anything model')
    .version('0.1.0')
    .showHelpAfterError();
  registerDemo(program);
  registerForward(program);
  registerEvaluate(program);
  registerInspect(program);
  registerConvert(program);
  registerTrain(program);
  registerTrainStep(program);
  registerExport(program);
  registerInfer(program);
  return program;
}

export async function main(argv: string[]): Promise<void> {
  await buildProgram().parseAsync(argv);
}
