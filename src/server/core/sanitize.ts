// Text that came from the network (an agent's goodbye reason, a close reason, a socket error) on its way to
// a terminal or a log: control and formatting characters (escape sequences, bidi overrides, newlines that
// forge log lines) become U+FFFD, and the length is bounded.

const UNPRINTABLE = /[\p{Cc}\p{Cf}]/gu;

export function sanitizeText(text: string, maxLength = 200): string {
  const bounded = text.length > maxLength ? `${text.slice(0, maxLength)}…` : text;
  return bounded.replace(UNPRINTABLE, '\uFFFD');
}
