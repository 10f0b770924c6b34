import { isE2EEError } from '../../shared/errors.js';

/**
 * The E2EEError code `fn` throws, or 'ok' when it returns; any other exception is rethrown, so a
 * TypeError never passes for a typed refusal.
 */
export function errorCodeOf(fn: () => unknown): string {
  try {
    fn();
    return 'ok';
  } catch (err) {
    if (!isE2EEError(err)) throw err;
    return err.code;
  }
}
