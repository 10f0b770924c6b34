/**
 * The drop-in promise, checked by the compiler: an app written only against the
 * @twilio/conversations 3 types (drop-in-app/chat-app.ts) runs on a wrapped client with one line
 * changed (drop-in-app/wrapped.ts), with no cast. The app is type-checked with the repo's
 * tsconfig through the TypeScript compiler API, and the SDK members it uses are counted so that
 * the check covers the SDK's surface, not a corner of it.
 */
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { API, type Project } from 'typescript/unstable/sync';
import { type Node, type SourceFile, SyntaxKind, isCallExpression, isPropertyAccessExpression, isPropertySignatureDeclaration, isStringLiteral, isTypeAliasDeclaration, isTypeLiteralNode } from 'typescript/unstable/ast';

const ROOT = resolve(import.meta.dirname, '../..');
const APP_DIR = join(ROOT, 'test/client/drop-in-app');
const APP = join(APP_DIR, 'chat-app.ts');
const APP_FILES = [APP, join(APP_DIR, 'wrapped.ts')];
const SDK_TYPES = join(ROOT, 'node_modules/@twilio/conversations/builds/lib.d.ts');
/** The classes the issue names: the app must use each of them. */
const SDK_CLASSES = ['Client', 'Conversation', 'Message', 'Participant', 'User', 'Media', 'Paginator'];
const MIN_MEMBERS = 60;
/** Ways to make the compiler look away: none of them may appear in the app. */
const ESCAPES = new Map([
  [SyntaxKind.AsExpression, '`as` cast'],
  [SyntaxKind.TypeAssertionExpression, '<T> cast'],
  [SyntaxKind.NonNullExpression, 'non-null assertion'],
  [SyntaxKind.AnyKeyword, '`any`'],
]);

let api: API;
let project: Project;

beforeAll(() => {
  api = new API({ cwd: ROOT });
  const found = api.updateSnapshot({ openProjects: [join(ROOT, 'tsconfig.json')] }).getProjects()[0];
  if (!found) throw new Error('tsconfig.json did not load');
  project = found;
});
afterAll(() => api?.close());

function sourceFile(path: string): SourceFile {
  const file = project.program.getSourceFile(path);
  if (!file) throw new Error(`${path} is not in the program of tsconfig.json`);
  return file;
}

function walk(node: Node, visit: (node: Node) => void): void {
  visit(node);
  node.forEachChild((child) => walk(child, visit));
}

function where(file: SourceFile, pos: number): string {
  const { line, character } = file.getLineAndCharacterOfPosition(pos);
  return `${file.fileName.slice(ROOT.length + 1)}:${line + 1}:${character + 1}`;
}

/** Members used, as `Class.member`, wherever the receiver's type is declared in the SDK's types. */
function sdkMembersUsed(file: SourceFile): { members: Set<string>; events: Set<string> } {
  const accesses: { receiver: Node; member: string; event?: string }[] = [];
  walk(file, (node) => {
    if (!isPropertyAccessExpression(node)) return;
    const call = node.parent;
    const first = isCallExpression(call) && call.expression === node ? call.arguments[0] : undefined;
    const event = node.name.text === 'on' && first && isStringLiteral(first) ? first.text : undefined;
    accesses.push({ receiver: node.expression, member: node.name.text, event });
  });
  const { checker } = project;
  const types = checker.getTypeAtLocation(accesses.map((a) => a.receiver));
  const members = new Set<string>();
  const events = new Set<string>();
  accesses.forEach(({ member, event }, i) => {
    const type = types[i] && checker.getNonNullableType(types[i]);
    // A type alias of an object literal (ConnectionError) is named by its alias; other anonymous types are not counted.
    const symbol = type && (type.getAliasSymbol() ?? type.getSymbol());
    if (!symbol || symbol.name.startsWith('__') || !symbol.declarations.some((d) => d.path === SDK_TYPES)) return;
    members.add(`${symbol.name}.${member}`);
    if (event) events.add(`${symbol.name}#${event}`);
  });
  return { members, events };
}

/** The event names of a `type XEvents = {...}` map in the SDK's types. */
function sdkEvents(alias: string): string[] {
  const names: string[] = [];
  walk(sourceFile(SDK_TYPES), (node) => {
    if (!isTypeAliasDeclaration(node) || node.name.text !== alias || !isTypeLiteralNode(node.type)) return;
    for (const member of node.type.members) if (isPropertySignatureDeclaration(member)) names.push(member.name.getText());
  });
  return names;
}

describe('an SDK app on the wrapped client', () => {
  test(`the app uses at least ${MIN_MEMBERS} members across the SDK's classes, and every client event`, () => {
    const { members, events } = sdkMembersUsed(sourceFile(APP));
    const list = [...members].sort().join('\n');
    expect(members.size, `SDK members used by chat-app.ts:\n${list}`).toBeGreaterThanOrEqual(MIN_MEMBERS);
    const classes = new Set([...members].map((m) => m.split('.')[0]));
    expect(SDK_CLASSES.filter((c) => !classes.has(c)), `classes not used; members used:\n${list}`).toEqual([]);

    const clientEvents = sdkEvents('ClientEvents');
    expect(clientEvents).toContain('messageAdded');
    expect(clientEvents.filter((e) => !events.has(`Client#${e}`)), 'client events the app does not listen to').toEqual([]);
  });

  test('the app and its wrapped start-up type-check with the repo tsconfig, with no cast and no any', () => {
    const problems: string[] = [];
    for (const path of APP_FILES) {
      const file = sourceFile(path);
      const diagnostics = [...project.program.getSyntacticDiagnostics(path), ...project.program.getSemanticDiagnostics(path)];
      for (const d of diagnostics) problems.push(`${where(file, d.pos)} TS${d.code}: ${d.text}`);
      walk(file, (node) => {
        const escape = ESCAPES.get(node.kind);
        if (escape) problems.push(`${where(file, node.getStart(file))} ${escape}: ${node.getText(file)}`);
      });
      for (const match of file.text.matchAll(/@ts-(ignore|expect-error|nocheck)/g)) problems.push(`${where(file, match.index)} ${match[0]}`);
    }
    expect(problems).toEqual([]);
  });
});
