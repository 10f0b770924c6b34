/**
 * The part of the @twilio/conversations 3 API the E2EE wrapper needs. The real SDK's Client,
 * Conversation and Message satisfy these interfaces (checked at compile time by
 * test/client/sdk-types.test.ts), and so does the local relay client.
 */

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type AnyListener = (...args: any[]) => void;

export interface EventSource {
  on(event: string, listener: AnyListener): unknown;
  off?(event: string, listener: AnyListener): unknown;
  removeListener(event: string, listener: AnyListener): unknown;
}

export interface BaseMessage {
  readonly sid: string;
  readonly index: number;
  readonly author: string | null;
  readonly body: string | null;
  readonly attributes: unknown;
  readonly dateCreated: Date | null;
  readonly dateUpdated: Date | null;
  /** The conversation the message belongs to (the SDK and the relay client both link it). */
  readonly conversation: { readonly sid: string };
  updateBody(body: string): Promise<unknown>;
  updateAttributes?(attributes: JSONValue): Promise<unknown>;
  remove?(): Promise<unknown>;
}

export interface BaseParticipant {
  readonly sid: string;
  readonly identity: string | null;
  /** "chat" for SDK users; "sms", "whatsapp", "email" for others. */
  readonly type: string;
  readonly attributes?: unknown;
  /** The SDK's Participant.updateAttributes; a participant may update only its own. */
  updateAttributes?(attributes: JSONValue): Promise<unknown>;
}

export interface BasePaginator<T> {
  readonly items: T[];
  readonly hasNextPage: boolean;
  readonly hasPrevPage: boolean;
  nextPage(): Promise<BasePaginator<T>>;
  prevPage(): Promise<BasePaginator<T>>;
}

export interface BaseUnsentMessage {
  send(): Promise<number | null>;
}

export interface BaseMessageBuilder {
  setBody(text: string): BaseMessageBuilder;
  setAttributes(attributes: JSONValue): BaseMessageBuilder;
  build(): BaseUnsentMessage;
}

export interface BaseConversation extends EventSource {
  readonly sid: string;
  readonly uniqueName: string | null;
  readonly friendlyName: string | null;
  readonly createdBy: string;
  readonly attributes: unknown;
  readonly dateCreated: Date | null;
  join(): Promise<unknown>;
  add(identity: string, attributes?: JSONValue): Promise<unknown>;
  getParticipants(): Promise<BaseParticipant[]>;
  sendMessage(body: string, attributes?: JSONValue): Promise<number>;
  getMessages(pageSize?: number, anchor?: number, direction?: 'backwards' | 'forward'): Promise<BasePaginator<BaseMessage>>;
  /** The SDK's builder; only its presence matters (the wrapper builds what is sent). */
  prepareMessage?(): unknown;
}

export interface BaseClient extends EventSource {
  readonly connectionState: string;
  createConversation(options?: { uniqueName?: string; friendlyName?: string; attributes?: JSONValue }): Promise<BaseConversation>;
  getConversationBySid(sid: string): Promise<BaseConversation>;
  getSubscribedConversations(): Promise<BasePaginator<BaseConversation>>;
  updateToken(token: string): Promise<unknown>;
  shutdown(): Promise<void>;
}

/** JSON values as the SDK types them (attributes). */
export type JSONValue = null | string | number | boolean | { [key: string]: JSONValue } | JSONValue[];
