// Strips the wrappers log text arrives in, so rules see the message alone:
// dmesg timestamps ([    1.234567], [Tue Jan  2 10:00:00 2024]), syslog and
// journal prefixes (Jun  4 07:25:13 host kernel:, ISO 8601 stamps), shell
// prompts and markdown decorations, QEMU monitor prompts, JSON-lines logs
// ({"msg": …}). Every expression is anchored and linear.

const ISO = /^\d{4}-\d\d-\d\d[T ]\d\d:\d\d:\d\d(?:[.,]\d{1,9})?(?:Z|[+-]\d\d:?\d\d)?:?\s+/;
const SYSLOG = /^[A-Z][a-z]{2} [ \d]\d \d\d:\d\d:\d\d(?:\.\d{1,9})?\s+/;
// host, then a program name (it starts with a letter: "usb 1-2:" or "pci 0000:00:01.0:" are messages)
const HOST_IDENT = /^[\w.-]{1,64}\s+[A-Za-z_][\w.@/-]{0,63}(?:\[\d{1,10}\])?:\s/;
/** A stamp with a numeric UTC offset: the journal's and rsyslog's forms, which a host and program follow. */
const ISO_OFFSET = /[+-]\d\d:?\d\d:?\s+$/;
const DMESG_TS = /^\[\s{0,12}\d{1,9}\.\d{1,9}\]\s?/;
const DMESG_HUMAN = /^\[[A-Z][a-z]{2} [A-Z][a-z]{2} [ \d]\d \d\d:\d\d:\d\d \d{4}\]\s?/;
const PROMPT = /^(?:(?:\(qemu\)|[$#❯>])\s+|\*\*)/;

/** The message of one log line, without timestamps and prefixes. */
export function normalizeLine(raw: string): string {
  let s = raw.replace(/\r$/, '').trim();
  if (s.startsWith('{') && s.includes('"msg"')) s = jsonMessage(s) ?? s;
  for (let pass = 0; pass < 4; pass++) {
    const before = s;
    s = s.replace(PROMPT, '');
    const iso = ISO.exec(s);
    if (iso) {
      s = s.slice(iso[0].length);
      // journal short-iso: "2024-06-04T07:25:13+0200 host ident[pid]: "
      if (!iso[0].trimEnd().endsWith(':') && ISO_OFFSET.test(iso[0])) s = s.replace(HOST_IDENT, '');
    }
    if (SYSLOG.test(s)) {
      s = s.replace(SYSLOG, '');
      s = s.replace(HOST_IDENT, '');
    }
    s = s.replace(DMESG_TS, '').replace(DMESG_HUMAN, '').replace(/^kernel:\s/, '');
    if (s.endsWith('**')) s = s.slice(0, -2).trimEnd();
    s = s.trimStart();
    if (s === before) break;
  }
  return s;
}

function jsonMessage(s: string): string | undefined {
  try {
    const v = JSON.parse(s) as Record<string, unknown>;
    const parts = ['msg', 'message', 'error', 'addr'].map((k) => v[k]).filter((x): x is string => typeof x === 'string');
    return parts.length ? parts.join(' ') : undefined;
  } catch {
    return undefined;
  }
}
