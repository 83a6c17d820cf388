/**
 * What the conformance suite's server scenarios expect a server to answer (read from each
 * scenario's "Server Implementation Requirements"), shared by the SDK 1.x and 2.x targets.
 */

/** a 1x1 red PNG */
export const PNG = 'iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg==';

/** a WAV file with 8 samples of silence (8 kHz, 8-bit mono) */
export const WAV = (() => {
  const samples = Buffer.alloc(8, 0x80);
  const h = Buffer.alloc(44);
  h.write('RIFF', 0);
  h.writeUInt32LE(36 + samples.length, 4);
  h.write('WAVEfmt ', 8);
  h.writeUInt32LE(16, 16);
  h.writeUInt16LE(1, 20); // PCM
  h.writeUInt16LE(1, 22); // mono
  h.writeUInt32LE(8000, 24);
  h.writeUInt32LE(8000, 28);
  h.writeUInt16LE(1, 32);
  h.writeUInt16LE(8, 34);
  h.write('data', 36);
  h.writeUInt32LE(samples.length, 40);
  return Buffer.concat([h, samples]).toString('base64');
})();

export const TEXT = {
  simple: 'This is a simple text response for testing.',
  embeddedUri: 'test://embedded-resource',
  embedded: 'This is an embedded resource content.',
  error: 'This tool intentionally returns an error for testing',
  staticText: 'This is the content of the static text resource.',
  simplePrompt: 'This is a simple prompt for testing.',
  promptResource: 'Embedded resource content for testing.',
} as const;

export const mixedContent = [
  { type: 'text' as const, text: 'Multiple content types test:' },
  { type: 'image' as const, data: PNG, mimeType: 'image/png' },
  { type: 'resource' as const, resource: { uri: 'test://mixed-content-resource', mimeType: 'application/json', text: JSON.stringify({ test: 'data', value: 123 }) } },
];

/** the elicitation schema of test_elicitation */
export const userSchema = {
  type: 'object' as const,
  properties: { username: { type: 'string' as const, description: "User's response" }, email: { type: 'string' as const, description: "User's email address" } },
  required: ['username', 'email'],
};

/** SEP-1034: a default for every primitive type */
export const defaultsSchema = {
  type: 'object' as const,
  properties: {
    name: { type: 'string' as const, default: 'John Doe' },
    age: { type: 'integer' as const, default: 30 },
    score: { type: 'number' as const, default: 95.5 },
    status: { type: 'string' as const, enum: ['active', 'inactive', 'pending'], default: 'active' },
    verified: { type: 'boolean' as const, default: true },
  },
};

/** SEP-1330: the five enum shapes */
export const enumsSchema = {
  type: 'object' as const,
  properties: {
    untitledSingle: { type: 'string' as const, enum: ['option1', 'option2', 'option3'] },
    titledSingle: { type: 'string' as const, oneOf: [{ const: 'value1', title: 'First Option' }, { const: 'value2', title: 'Second Option' }, { const: 'value3', title: 'Third Option' }] },
    legacyEnum: { type: 'string' as const, enum: ['opt1', 'opt2', 'opt3'], enumNames: ['Option One', 'Option Two', 'Option Three'] },
    untitledMulti: { type: 'array' as const, items: { type: 'string' as const, enum: ['option1', 'option2', 'option3'] } },
    titledMulti: { type: 'array' as const, items: { anyOf: [{ const: 'value1', title: 'First Choice' }, { const: 'value2', title: 'Second Choice' }, { const: 'value3', title: 'Third Choice' }] } },
  },
};

/** the JSON Schema 2020-12 keywords json_schema_2020_12_tool must keep ($schema, $defs, $ref, additionalProperties) */
export const schema2020Meta = {
  $schema: 'https://json-schema.org/draft/2020-12/schema',
  $defs: { address: { type: 'object', properties: { street: { type: 'string' }, city: { type: 'string' } } } },
};

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Host and Origin on a loopback name (DNS rebinding protection of a plain-http localhost server) */
export function loopbackOnly(headers: { host?: string | undefined; origin?: string | undefined }): boolean {
  const hostOk = (h: string) => /^(localhost|127\.0\.0\.1|\[::1\])(:\d+)?$/i.test(h);
  if (!headers.host || !hostOk(headers.host)) return false;
  if (headers.origin === undefined) return true;
  try {
    return hostOk(new URL(headers.origin).host);
  } catch {
    return false;
  }
}

/** the same, with the wider vocabulary of SEP-2106 ($anchor, allOf/anyOf, if/then/else) the 2026-07-28 scenario checks */
export const schema2020Full = {
  $schema: schema2020Meta.$schema,
  type: 'object',
  $defs: { address: { $anchor: 'addressDef', ...schema2020Meta.$defs.address } },
  properties: {
    name: { type: 'string' },
    address: { $ref: '#/$defs/address' },
    contactMethod: { type: 'string', enum: ['phone', 'email'] },
    phone: { type: 'string' },
    email: { type: 'string' },
  },
  allOf: [{ anyOf: [{ required: ['phone'] }, { required: ['email'] }] }],
  if: { properties: { contactMethod: { const: 'phone' } }, required: ['contactMethod'] },
  then: { required: ['phone'] },
  else: { required: ['email'] },
  additionalProperties: false,
};
