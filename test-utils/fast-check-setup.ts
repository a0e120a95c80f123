import fc from 'fast-check';

// Property tests run from a fixed seed so CI is repeatable; set MCP_MEDSAM_FC_SEED=random (or a
// number) to explore other draws locally.
const env = process.env.MCP_MEDSAM_FC_SEED;
if (env !== 'random') fc.configureGlobal({ seed: env ? Number(env) : 42 });
