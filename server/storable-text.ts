/**
 * Which strings the stores keep exactly as given: a rule of the data, used by the HTTP schemas
 * (server/schemas.ts), the token check (server/plugin.ts) and the local relay alike.
 */

/**
 * Well-formed UTF-16 without NUL (a pattern for JSON schema, so written with escapes). Both
 * stores write text as UTF-8: a lone surrogate would be stored as U+FFFD, so two identities would
 * share one row, and PostgreSQL text cannot hold NUL at all (it was a 500). No real identity
 * contains either.
 */
export const STORABLE_TEXT_PATTERN = '^(?:[^\\u0000\\ud800-\\udfff]|[\\ud800-\\udbff][\\udc00-\\udfff])*$';
const STORABLE_TEXT = new RegExp(STORABLE_TEXT_PATTERN);

/** Whether `text` is stored exactly as given (see STORABLE_TEXT_PATTERN). */
export function isStorableText(text: string): boolean {
  return STORABLE_TEXT.test(text);
}
