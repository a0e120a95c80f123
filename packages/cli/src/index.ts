export { buildProgram, main } from './main.js';
export * from './demo/index.js';
