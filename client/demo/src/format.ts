/** Formatting helpers: times, safety numbers, card fingerprints, device names. */

const time = new Intl.DateTimeFormat(undefined, { hour: 'numeric', minute: '2-digit' });
const day = new Intl.DateTimeFormat(undefined, { weekday: 'long', month: 'short', day: 'numeric' });
const date = new Intl.DateTimeFormat(undefined, { year: 'numeric', month: 'short', day: 'numeric' });

export function formatTime(d: Date | null): string {
  return d ? time.format(d) : '';
}

export function formatDate(d: Date): string {
  return date.format(d);
}

/** "Today", "Yesterday" or the weekday and date, for day separators. */
export function formatDay(d: Date): string {
  const start = (x: Date) => new Date(x.getFullYear(), x.getMonth(), x.getDate()).getTime();
  const days = Math.round((start(new Date()) - start(d)) / 86_400_000);
  if (days === 0) return 'Today';
  if (days === 1) return 'Yesterday';
  return day.format(d);
}

/** A short time for the conversation list: the time today, else the date. */
export function formatWhen(ms: number): string {
  if (!ms) return '';
  const d = new Date(ms);
  return new Date().toDateString() === d.toDateString() ? time.format(d) : date.format(d);
}

/** A safety number (60 digits) or an organization key fingerprint (30) in groups of 5. */
export function safetyGroups(digits: string): string[] {
  return digits.match(/\d{5}/g) ?? [];
}

/** A card id as people compare it: the first 16 hex digits in groups of 4. */
export function fingerprint(cardId: string): string {
  return (cardId.slice(0, 16).match(/.{4}/g) ?? []).join(' ');
}

/** "Chrome on macOS", from the user agent: the default name of this browser's device. */
export function defaultDeviceName(ua = navigator.userAgent): string {
  const browser = /Edg\//.test(ua)
    ? 'Edge'
    : /Firefox\//.test(ua)
      ? 'Firefox'
      : /Chrom(e|ium)\//.test(ua)
        ? 'Chrome'
        : /Safari\//.test(ua)
          ? 'Safari'
          : 'Browser';
  const os = /Android/.test(ua)
    ? 'Android'
    : /iPhone|iPad/.test(ua)
      ? 'iOS'
      : /Mac OS X/.test(ua)
        ? 'macOS'
        : /Windows/.test(ua)
          ? 'Windows'
          : /Linux/.test(ua)
            ? 'Linux'
            : '';
  return os ? `${browser} on ${os}` : browser;
}

/** "840 bytes", "12 KB", "3.4 MB": decimal units, as Twilio states its media limit. */
export function formatSize(bytes: number): string {
  if (bytes < 1000) return plural(bytes, 'byte');
  if (bytes < 1_000_000) return `${(bytes / 1000).toFixed(bytes < 10_000 ? 1 : 0)} KB`;
  return `${(bytes / 1_000_000).toFixed(1)} MB`;
}

export function plural(n: number, one: string, many = `${one}s`): string {
  return `${n} ${n === 1 ? one : many}`;
}

/**
 * What a conversation's loaded messages hold besides verified ones: "2 unencrypted messages",
 * "1 message could not be verified", or both kinds, short enough for the header chip, "2
 * unencrypted and 1 unverified messages"; null when every one verified.
 */
export function unverifiedSummary({ unencrypted, failed }: { unencrypted: number; failed: number }): string | null {
  if (unencrypted && failed) return `${unencrypted} unencrypted and ${failed} unverified ${unencrypted + failed === 1 ? 'message' : 'messages'}`;
  if (unencrypted) return plural(unencrypted, 'unencrypted message');
  if (failed) return `${plural(failed, 'message')} could not be verified`;
  return null;
}

/** "alice, bob and carol" */
export function listNames(names: readonly string[]): string {
  if (names.length <= 1) return names[0] ?? '';
  return `${names.slice(0, -1).join(', ')} and ${names[names.length - 1]}`;
}

export function isAgent(identity: string): boolean {
  return identity.startsWith('agent-');
}
