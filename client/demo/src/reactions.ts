/**
 * Reactions travel as messages of their own, each sealed and signed by whoever reacted: body =
 * the emoji, attributes `{ "reactionTo": "<message sid>" }` (encrypted and signed like any
 * attributes). Only the author may edit a message, so a reaction cannot be an edit of its target.
 * The timeline groups verified reactions under their target instead of showing them as bubbles.
 */
import type { Message } from '@twilio/conversations';

/** The emoji the demo offers. */
export const REACTIONS = ['👍', '❤️', '😂', '🎉'] as const;

/** Longer bodies are not one emoji (the longest joined sequences are 11 UTF-16 units): such a message stays a bubble. */
const MAX_REACTION_LENGTH = 16;

/** The attributes of a reaction to the message `target` (its sid). */
export function reactionAttributes(target: string): { reactionTo: string } {
  return { reactionTo: target };
}

/**
 * The target and emoji of a verified reaction; null for any other message. An unencrypted or
 * failed message is never taken for a reaction: its attributes are not signed by its author (or
 * not readable), so it stays a bubble with its warning and is never attributed to anyone.
 */
export function reactionOf(message: Message): { target: string; emoji: string } | null {
  if (message.e2ee?.status !== 'verified') return null;
  const attributes = message.attributes;
  if (typeof attributes !== 'object' || attributes === null || Array.isArray(attributes)) return null;
  const target = (attributes as Record<string, unknown>).reactionTo;
  const emoji = message.body?.trim() ?? '';
  if (typeof target !== 'string' || emoji === '' || emoji.length > MAX_REACTION_LENGTH) return null;
  return { target, emoji };
}

/** One emoji under a message and who reacted with it, each person once, in the order they did. */
export interface ReactionGroup {
  emoji: string;
  who: string[];
}

/** Groups reactions (oldest first) by the sid of the message they react to. */
export function groupReactions(reactions: Iterable<Message>): Map<string, ReactionGroup[]> {
  const byTarget = new Map<string, ReactionGroup[]>();
  for (const message of reactions) {
    const reaction = reactionOf(message);
    if (!reaction || !message.author) continue;
    let groups = byTarget.get(reaction.target);
    if (!groups) byTarget.set(reaction.target, (groups = []));
    let group = groups.find((g) => g.emoji === reaction.emoji);
    if (!group) groups.push((group = { emoji: reaction.emoji, who: [] }));
    if (!group.who.includes(message.author)) group.who.push(message.author);
  }
  return byTarget;
}
