/**
 * A strict parser for the flat JSON objects of the formats (card snapshots, message payloads).
 * JSON.parse silently keeps the last of duplicate members, so two parsers could read different
 * values out of the same signed bytes; this one rejects duplicates and anything nested.
 */
export type FlatValue = string | number | boolean | null;

const STRING = String.raw`"(?:[^"\\\u0000-\u001f]|\\(?:["\\/bfnrt]|u[0-9a-fA-F]{4}))*"`;
// Every number in the formats is a non-negative integer: accepting only its plain spelling
// ("12", never "12.0", "1.2e1" or "-0") keeps one value from travelling under several texts.
const NUMBER = String.raw`(?:0|[1-9]\d*)`;
const WS = String.raw`[ \t\n\r]*`;
const MEMBER = new RegExp(`${WS}(${STRING})${WS}:${WS}(${STRING}|${NUMBER}|true|false|null)${WS}([,}])`, 'y');
const OPEN = new RegExp(`${WS}\\{${WS}`, 'y');

/**
 * Parses a JSON object whose values are all scalars (numbers: non-negative integers only). Returns null when the text is not such an
 * object or repeats a member name. Members come back in a null-prototype record.
 */
export function parseFlatObject(text: string): Record<string, FlatValue> | null {
  const out: Record<string, FlatValue> = Object.create(null);
  OPEN.lastIndex = 0;
  if (!OPEN.test(text)) return null;
  let pos = OPEN.lastIndex;
  if (text[pos] === '}') return /^[ \t\n\r]*$/.test(text.slice(pos + 1)) ? out : null;
  for (;;) {
    MEMBER.lastIndex = pos;
    const m = MEMBER.exec(text);
    if (!m) return null;
    const key = JSON.parse(m[1]!) as string;
    if (Object.prototype.hasOwnProperty.call(out, key)) return null;
    out[key] = JSON.parse(m[2]!) as FlatValue;
    pos = MEMBER.lastIndex;
    if (m[3] === '}') return /^[ \t\n\r]*$/.test(text.slice(pos)) ? out : null;
  }
}
