export * from './dtype.js';
export * from './crc32.js';
export * from './zip.js';
export * from './npy.js';
export * from './npz.js';
export * from './fs.js';
export * from './tensor.js';
