/**
 * docs/API.md says, for every public member of the SDK's classes, whether the wrapper encrypts it,
 * passes it through or refuses it: this checks the table against the SDK's own declarations, so
 * a member the SDK adds shows up here as undocumented.
 */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { expect, it } from 'vitest';

const CLASSES = ['Client', 'Conversation', 'Message', 'Participant', 'Paginator', 'MessageBuilder'] as const;

/** The public members of `name` in the SDK's declarations (no private, static, constructor or _internal ones). */
function sdkMembers(declarations: string, name: string): string[] {
  const start = declarations.search(new RegExp(`(declare class ${name}\\b[^{]*|interface ${name}<T> )\\{`));
  expect(start, `${name} is declared`).toBeGreaterThanOrEqual(0);
  let depth = 0;
  let end = declarations.indexOf('{', start);
  do {
    const c = declarations[end++];
    if (c === '{') depth++;
    else if (c === '}') depth--;
  } while (depth > 0);
  const body = declarations.slice(declarations.indexOf('{', start) + 1, end - 1).replace(/\/\*[\s\S]*?\*\//g, '');
  const members = new Set<string>();
  let nesting = 0;
  for (const line of body.split('\n')) {
    const match = nesting === 0 && /^\s*(?:readonly |get |set )*([A-Za-z$][\w$]*)\??\s*[(:<]/.exec(line);
    if (match && !/^\s*(private|static|constructor)\b/.test(line) && !match[1]!.startsWith('_')) members.add(match[1]!);
    nesting += (line.match(/\{/g)?.length ?? 0) - (line.match(/\}/g)?.length ?? 0);
  }
  return [...members].sort();
}

/** Class.member pairs the API.md table names: a bare name in a cell belongs to the class named last before it. */
function documented(markdown: string): Set<string> {
  const section = markdown.slice(markdown.indexOf('**Every member of the SDK'), markdown.indexOf('**Push notifications.**'));
  const pairs = new Set<string>();
  for (const row of section.split('\n').filter((line) => line.startsWith('| `'))) {
    let current = '';
    for (const [, name] of row.split('|')[1]!.matchAll(/`([\w.*]+)(?:\([^`]*\))?`/g)) {
      const [cls, member] = name!.includes('.') ? name!.split('.') : [current, name!];
      current = cls!;
      pairs.add(`${cls}.${member}`);
    }
  }
  return pairs;
}

it('docs/API.md classifies every public member of the SDK classes the wrapper intercepts', () => {
  const require = createRequire(import.meta.url);
  const sdk = readFileSync(join(require.resolve('@twilio/conversations/package.json'), '..', 'builds', 'lib.d.ts'), 'utf8');
  const docs = documented(readFileSync(new URL('../../docs/API.md', import.meta.url), 'utf8'));
  const missing: string[] = [];
  let total = 0;
  for (const cls of CLASSES) {
    for (const member of sdkMembers(sdk, cls)) {
      total++;
      if (!docs.has(`${cls}.${member}`)) missing.push(`${cls}.${member}`);
    }
  }
  expect(total).toBeGreaterThan(100);
  expect(missing, 'members missing from the table in docs/API.md "Client API"').toEqual([]);
});
