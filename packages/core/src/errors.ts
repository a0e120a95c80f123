/**
 * Every error the project throws on purpose is a MedsamError: `code` says what kind of
 * problem it is and `file`, where known, which input it came from.
 */
export class MedsamError extends Error {
  readonly code: string;
  readonly file?: string;
  constructor(code: string, message: string, options: { file?: string; cause?: unknown } = {}) {
    super(options.file ? `${options.file}: ${message}` : message, { cause: options.cause });
    this.name = new.target.name;
    this.code = code;
    this.file = options.file;
  }
}

/** A tensor backend could not be chosen or initialised. */
export class BackendError extends MedsamError {
  constructor(message: string) {
    super('E_BACKEND', message);
  }
}

/** An input has the wrong shape, dtype or values (NaN, out of range, inverted boxes...). */
export class InputError extends MedsamError {
  constructor(message: string, options: { file?: string; cause?: unknown } = {}) {
    super('E_INPUT', message, options);
  }
}

/** A state dict does not fit a module: missing or unexpected keys, shape mismatches. */
export class StateDictError extends MedsamError {
  readonly missing: string[];
  readonly unexpected: string[];
  readonly mismatched: { key: string; expected: number[]; got: number[] }[];
  constructor(
    report: {
      missing: string[];
      unexpected: string[];
      mismatched: { key: string; expected: number[]; got: number[] }[];
    },
    options: { file?: string } = {},
  ) {
    const parts: string[] = [];
    const list = (xs: string[]) =>
      xs.slice(0, 10).join(', ') + (xs.length > 10 ? `, ... (${xs.length} in all)` : '');
    if (report.missing.length) parts.push(`missing keys: ${list(report.missing)}`);
    if (report.unexpected.length) parts.push(`unexpected keys: ${list(report.unexpected)}`);
    if (report.mismatched.length)
      parts.push(
        `shape mismatches: ${list(report.mismatched.map((m) => `${m.key} expected [${m.expected}] got [${m.got}]`))}`,
      );
    super('E_STATE_DICT', `state dict does not match the model: ${parts.join('; ')}`, options);
    this.missing = report.missing;
    this.unexpected = report.unexpected;
    this.mismatched = report.mismatched;
  }
}

/** A file is corrupt, truncated, of an unknown format, or larger than the allowed bounds. */
export class FormatError extends MedsamError {
  constructor(message: string, options: { file?: string; cause?: unknown } = {}) {
    super('E_FORMAT', message, options);
  }
}

/** A checkpoint holds something a weights-only loader must not accept (a foreign pickle global...). */
export class UnsafeCheckpointError extends MedsamError {
  constructor(message: string, options: { file?: string } = {}) {
    super('E_UNSAFE', message, options);
  }
}
