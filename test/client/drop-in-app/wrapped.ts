/**
 * The chat app of chat-app.ts after adopting end-to-end encryption: its start-up builds the
 * Client with `wrap(...)` (the one changed line) and hands it to the app's code unchanged. The
 * app's Message handlers may read `message.e2ee`, which the client package adds to the SDK's
 * Message type.
 */
import { Client, type Message } from '@twilio/conversations';
import { type E2EEClient, type E2EEClientOptions, type E2EEInfo, wrap } from '../../../client/index.js';
import { ChatApp, type ChatUi, type TokenSource } from './chat-app.js';

/** startChat of chat-app.ts, with its one changed line. */
export function startChat(token: string, options: E2EEClientOptions, ui: ChatUi, fetchToken?: TokenSource): ChatApp {
  const client = wrap(new Client(token), options);
  return new ChatApp(client, ui, fetchToken).start();
}

/** An app that registered its device with an E2EEClient: both ways give the SDK's Client. */
export async function startRegistered(e2ee: E2EEClient, ui: ChatUi, token?: string): Promise<ChatApp> {
  const client: Client = token === undefined ? await e2ee.connect() : e2ee.wrap(new Client(token));
  return new ChatApp(client, ui).start();
}

const TRUST_BADGE: Record<E2EEInfo['status'], string> = {
  verified: '🔒',
  unencrypted: 'not encrypted',
  failed: '⚠ not verified',
};

/** A badge per message from its E2EE status, in a handler typed with the SDK's Message. */
export function showTrust(client: Client, ui: ChatUi): void {
  const onMessage = (m: Message): void => {
    const status = m.e2ee?.status;
    ui.badge(m.index, status === undefined ? '' : TRUST_BADGE[status]);
    if (status === 'failed') ui.status(`message ${m.index}: ${m.e2ee?.error?.code ?? 'failed'}`);
  };
  client.on('messageAdded', onMessage);
  client.on('messageUpdated', ({ message }) => onMessage(message));
}
