import type { StandardSchemaV1 } from '@standard-schema/spec';

/** A validation failure as toni reports it: the validator's message and where it applies. */
export interface ValidationIssue {
  readonly message: string;
  readonly path?: readonly (string | number)[];
}

/** The outcome of `validate`: the schema's output, or the issues. */
export type ValidationOutcome = { readonly ok: true; readonly value: unknown } | { readonly ok: false; readonly issues: ValidationIssue[] };

/** True for a Standard Schema (zod, valibot, arktype, …): an object or function with a `~standard` object. */
export function isStandardSchema(value: unknown): value is StandardSchemaV1 {
  return (typeof value === 'object' || typeof value === 'function') && value !== null && typeof (value as { '~standard'?: unknown })['~standard'] === 'object';
}

/**
 * Runs a Standard Schema (zod, valibot, arktype, …) on `value`. Synchronous schemas answer
 * synchronously, so that a route or event without async validation costs no promise.
 * A schema that throws rejects (or throws): that is a bug in the schema, not bad input.
 */
export function validate(schema: StandardSchemaV1, value: unknown): ValidationOutcome | Promise<ValidationOutcome> {
  const result = schema['~standard'].validate(value);
  return result instanceof Promise ? result.then(toOutcome) : toOutcome(result);
}

function toOutcome(result: StandardSchemaV1.Result<unknown>): ValidationOutcome {
  return result.issues === undefined ? { ok: true, value: result.value } : { ok: false, issues: result.issues.map(toIssue) };
}

/** An issue as it is sent to clients: the path flattened to keys. */
export function toIssue(issue: StandardSchemaV1.Issue): ValidationIssue {
  if (issue.path === undefined) return { message: issue.message };
  const path = issue.path.map((segment) => {
    const key = typeof segment === 'object' ? segment.key : segment;
    return typeof key === 'symbol' ? String(key) : key;
  });
  return { message: issue.message, path };
}
