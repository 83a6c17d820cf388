/**
 * Text from elsewhere (an identity provider's device prompt or error_description, a CA's error
 * message) made safe to print on a terminal: C0 and C1 control characters (but newline and tab),
 * DEL and the bidirectional overrides are shown as `\u{..}` instead of being sent. Printed raw,
 * ESC sequences can retitle the window, rewrite what was printed before (a URL or a code the
 * person is told to trust), or, on some terminals, set the clipboard or answer back input.
 */
const UNSAFE = /[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]/g;

export function terminalSafe(text: string): string {
  return text.replace(UNSAFE, (c) => `\\u{${c.codePointAt(0)!.toString(16)}}`);
}
