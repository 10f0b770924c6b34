/**
 * The settings every test server starts from: one AppKey, OrgKey and LogKey per test process, and every
 * rate limit off.
 */
import { randomBytes } from 'node:crypto';
import { seedToB64u } from '../../shared/index.js';

/** One AppKey and OrgKey for the whole test process, so several instances agree as in production. */
export const TEST_APP_KEY = seedToB64u(randomBytes(32));
export const TEST_ORG_KEY = seedToB64u(randomBytes(32));
/** The LogKey of every test server, as instances of one service share it. */
export const TEST_LOG_KEY = seedToB64u(randomBytes(32));

/**
 * Every rate limit off: a test opens more sessions, cards and requests a minute than a person
 * would. The rate-limit tests turn theirs back on in their own environment.
 */
export const RATE_LIMITS_OFF: Readonly<Record<string, string>> = {
  RATE_LIMIT_SESSION: '0',
  RATE_LIMIT_CARD_REGISTRATION: '0',
  RATE_LIMIT_LOOKUP: '0',
  RATE_LIMIT_HISTORY_READ: '0',
  RATE_LIMIT_HISTORY_BACKUP: '0',
  RATE_LIMIT_RELAY: '0',
  RATE_LIMIT_LOG: '0',
};
