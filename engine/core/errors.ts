/**
 * Typed errors of the engine. Each sets `name`, keeps `cause`, and says what a person can do.
 * Tests check the class, never the wording.
 */

export class LinewatchError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
  }
}

/** The kernel module is missing, does not compile, or an assertion inside it failed. */
export class KernelLoadError extends LinewatchError {}

/** A configuration value is out of range or inconsistent with another. */
export class ConfigError extends LinewatchError {
  constructor(
    readonly option: string,
    message: string,
  ) {
    super(`${option}: ${message}`);
  }
}

/** A bounded structure is full: the caller must wait, shed or raise the named limit. */
export class CapacityError extends LinewatchError {
  constructor(
    readonly limit: string,
    readonly value: number,
    message: string,
  ) {
    super(`${limit} (${value}) reached: ${message}`);
  }
}

/** A batch failed the checks at the WASM boundary (non-finite value, unknown key, too long). */
export class BatchRejectedError extends LinewatchError {}

/** A kernel task failed in the worker pool. */
export class KernelTaskError extends LinewatchError {
  constructor(
    readonly group: number,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(`key group ${group}: ${message}`, options);
  }
}

/** Input that cannot be read: the file, row and column say where. */
export class InputError extends LinewatchError {}

/** A checkpoint cannot be decoded, or does not fit the engine it is restored into. */
export class CheckpointError extends LinewatchError {}

/**
 * A model file is not one linewatch can run: not ONNX, the wrong graph, metadata missing or
 * invalid; or a forest model that breaks its format (ModelError, operators/iforest).
 */
export class ModelLoadError extends LinewatchError {
  constructor(
    readonly source: string,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(`${source}: ${message}`, options);
  }
}

/** Why the model registry refused a request: stable strings that tests and callers branch on. */
export type RegistryRefusal =
  /** The file is not a model of the kind it was pushed as (an ONNX file pushed as iforest). */
  | "wrong_kind"
  /** The kind is not one the registry knows (rul, iforest, quality). */
  | "unknown_kind"
  /** No entry has this id or id prefix. */
  | "unknown_id"
  /** More than one entry starts with this id prefix. */
  | "ambiguous_id"
  /** The stage is not candidate, production or archived. */
  | "unknown_stage"
  /** A model file, the notes or the registry's own record is over its size limit. */
  | "too_large"
  /** A job asked for a kind's production model and the registry has none. */
  | "no_production"
  /** The store did not answer in time (a read cut short by a concurrent write, a slow network). */
  | "unavailable"
  /** `rollback` on a kind whose promotion history holds no earlier production model. */
  | "nothing_to_roll_back"
  /** The registry's record is not one this version reads (damaged, or another format). */
  | "bad_record"
  /** Another writer changed the registry between this one's read and write. */
  | "concurrent_change";

/** The model registry refused a push, a look-up or a stage change; `reason` says why. */
export class RegistryError extends LinewatchError {
  constructor(
    readonly reason: RegistryRefusal,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}
