/**
 * `npm run bench:audit`: the cost of the recipient-set audit (client/recipient-audit.ts) when
 * nothing is wrong, beside opening the message it audits: one device of a 100-device envelope
 * (20 people with 5 devices each) opened from its text form (parse, unwrap, decrypt, verify),
 * then the audit with a warm client (the members' cards cached by the card directory, the
 * participants listed within the cache time). The issue's bound: at most 10% added.
 */
import { MemoryKeyStore } from '../client/key-store.js';
import { RecipientAudit } from '../client/recipient-audit.js';
import { openEnvelope, parseEnvelope, ready, sealEnvelope } from '../shared/index.js';
import { makeApp, makeDevice, type DeviceFixture } from '../test/support/crypto.js';
import { median, round, timeMsAsync } from './stats.js';

const PEOPLE = 20;
const DEVICES_EACH = 5;
const RUNS = 400;
const CONVERSATION_SID = 'CH' + '0'.repeat(32);

await ready();
const app = makeApp();
const people = Array.from({ length: PEOPLE }, (_, p) => Array.from({ length: DEVICES_EACH }, () => makeDevice(app, `person-${p}`)));
const devices: DeviceFixture[] = people.flat();
const sender = devices[0]!;
const me = devices[devices.length - 1]!;
const text = sealEnvelope({ sender: sender.sender, recipients: devices.map((d) => d.card), conversationSid: CONVERSATION_SID, body: 'x'.repeat(1024), content: { attributes: {} } }).text;

const cards = new Map(people.map((group) => [group[0]!.identity, group.map((d) => d.card)]));
const participants = [...cards.keys()].map((identity, i) => ({ sid: `MB${i}`, identity, type: 'chat' }));
const own = new Set(people[PEOPLE - 1]!.map((d) => d.card.id));
const audit = new RecipientAudit(
  {
    me: me.identity,
    ownCards: async () => own,
    cachedCards: (identities) => new Map(identities.filter((i) => cards.has(i)).map((i) => [i, cards.get(i)!])),
    activeCards: async () => cards,
    seenCards: async () => [],
  },
  new MemoryKeyStore(),
  60_000,
);
const conversation = { sid: CONVERSATION_SID, getParticipants: async () => participants };

const open = (parsed = parseEnvelope(text)) => openEnvelope(parsed, { recipient: me.opener, senderCard: sender.card, conversationSid: CONVERSATION_SID, author: sender.identity });
const openAndAudit = async () => {
  const envelope = parseEnvelope(text); // parsed once, as MessageCrypto.decrypt does
  const opened = open(envelope);
  const findings = await audit.audit({ conversation, envelope, sentAt: opened.payload.sentAt, sender: sender.identity });
  if (findings.length > 0) throw new Error(`bench: the honest envelope has findings: ${JSON.stringify(findings)}`);
};

/** Median ms of `subject` and of opening alone, timed alternately after a warm-up. */
async function measure(subject: () => Promise<void>): Promise<{ openMs: number; openAndAuditMs: number; added: string }> {
  for (let i = 0; i < 50; i++) {
    open();
    await subject();
  }
  const alone: number[] = [];
  const audited: number[] = [];
  for (let i = 0; i < RUNS; i++) {
    // Alternated, in both orders, so drift in machine load affects both alike.
    if (i % 2 === 0) {
      alone.push(await timeMsAsync(async () => open()));
      audited.push(await timeMsAsync(subject));
    } else {
      audited.push(await timeMsAsync(subject));
      alone.push(await timeMsAsync(async () => open()));
    }
  }
  const [a, b] = [median(alone), median(audited)];
  return { openMs: round(a), openAndAuditMs: round(b), added: `${round(((b - a) / a) * 100)}%` };
}

// The usual case: the same devices as the conversation's last message. Then another list each time
// (two envelopes with the slots in other orders, alternating): every card known, each key id looked up.
const other = sealEnvelope({ sender: sender.sender, recipients: [...devices].reverse().map((d) => d.card), conversationSid: CONVERSATION_SID, body: 'x'.repeat(1024), content: { attributes: {} } }).text;
let turn = 0;
const alternating = async () => {
  const envelope = parseEnvelope(turn++ % 2 === 0 ? text : other);
  openEnvelope(envelope, { recipient: me.opener, senderCard: sender.card, conversationSid: CONVERSATION_SID, author: sender.identity });
  const findings = await audit.audit({ conversation, envelope, sentAt: Date.now(), sender: sender.identity });
  if (findings.length > 0) throw new Error('bench: the honest envelope has findings');
};
const sameRecipients = await measure(openAndAudit);
const otherRecipients = await measure(alternating);
console.log(JSON.stringify({ envelopeRecipients: devices.length, runs: RUNS, target: 'added <= 10%', sameRecipients, otherRecipients }, null, 1));
