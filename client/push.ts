/**
 * Push notifications: Twilio fills its New Message template with the message body, which is an
 * envelope now, so the service is configured with a neutral template (docs/API.md "Push
 * notifications") and the app, its service worker or its notification extension fetches the
 * message itself and opens it with `decryptPushNotification`.
 */
import type { Client, Message } from '@twilio/conversations';
import { E2EEError, ErrorCode } from '../shared/errors.js';

const NEW_MESSAGE = 'twilio.conversations.new_message';

/** What a notification says about its message: the SDK's PushNotification, or the raw payload Twilio pushes. */
export type NewMessageNotification =
  | { type?: string; data: { conversationSid?: string; messageIndex?: number } }
  | { twi_message_type?: string; conversation_sid?: string; message_index?: string | number };

/**
 * The message a "new message" notification is about, fetched through the wrapped client by its
 * conversation and index, decrypted and verified like any other (`message.e2ee`). Takes the
 * SDK's PushNotification (`client.on('pushNotification')`, `Client.parsePushNotification`) or
 * the raw payload a service worker receives. Throws INVALID_ARGUMENT for another kind of
 * notification and NOT_FOUND when the conversation no longer holds the message.
 */
export async function decryptPushNotification(client: Client, notification: NewMessageNotification): Promise<Message> {
  const { type, conversationSid, index } = describe(notification);
  if (type !== undefined && type !== NEW_MESSAGE) {
    throw new E2EEError(ErrorCode.INVALID_ARGUMENT, `a ${type} notification carries no message`);
  }
  if (typeof conversationSid !== 'string' || !Number.isSafeInteger(index) || index < 0) {
    throw new E2EEError(ErrorCode.INVALID_ARGUMENT, 'the notification names no conversation and message index');
  }
  const conversation = await client.getConversationBySid(conversationSid);
  const [message] = (await conversation.getMessages(1, index, 'forward')).items;
  if (!message || message.index !== index) throw new E2EEError(ErrorCode.NOT_FOUND, `conversation ${conversationSid} holds no message #${index}`);
  return message;
}

function describe(notification: NewMessageNotification): { type: string | undefined; conversationSid: unknown; index: number } {
  if (typeof notification !== 'object' || notification === null) return { type: undefined, conversationSid: undefined, index: NaN };
  if ('data' in notification && typeof notification.data === 'object' && notification.data !== null) {
    return { type: notification.type, conversationSid: notification.data.conversationSid, index: Number(notification.data.messageIndex) };
  }
  const raw = notification as Extract<NewMessageNotification, { conversation_sid?: string }>;
  return { type: raw.twi_message_type, conversationSid: raw.conversation_sid, index: raw.message_index === undefined ? NaN : Number(raw.message_index) };
}
