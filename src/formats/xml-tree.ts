// A tiny XML element writer (pure): elements as data, rendered with two-space
// indentation and single-quoted attributes, the way libvirt prints domains.

export interface XmlElement {
  name: string;
  attrs?: Record<string, string | number | undefined>;
  children?: (XmlElement | null | false | undefined)[];
  text?: string;
}

export function el(name: string, attrs: XmlElement['attrs'] = {}, children: XmlElement['children'] | string = []): XmlElement {
  return typeof children === 'string' ? { name, attrs, text: children } : { name, attrs, children };
}

function escapeXml(s: string, attr = false): string {
  let out = s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
  if (attr) out = out.replace(/'/g, '&apos;').replace(/"/g, '&quot;').replace(/\n/g, '&#10;').replace(/\t/g, '&#9;');
  return out;
}

export function renderXml(e: XmlElement, indent = 0): string {
  const pad = '  '.repeat(indent);
  const attrs = Object.entries(e.attrs ?? {})
    .filter(([, v]) => v !== undefined)
    .map(([k, v]) => ` ${k}='${escapeXml(String(v), true)}'`)
    .join('');
  const kids = (e.children ?? []).filter((c): c is XmlElement => Boolean(c));
  if (e.text !== undefined) return `${pad}<${e.name}${attrs}>${escapeXml(e.text)}</${e.name}>\n`;
  if (!kids.length) return `${pad}<${e.name}${attrs}/>\n`;
  return `${pad}<${e.name}${attrs}>\n${kids.map((k) => renderXml(k, indent + 1)).join('')}${pad}</${e.name}>\n`;
}
