// libvirt domain XML as a document: parse (with a clear error for anything
// that is not a <domain>), walk children, read a PCI <hostdev>'s host address,
// and build indented nodes from an element tree — the editing primitives
// `vm attach` uses so everything it does not add stays as it was. Pure.

import { DOMParser, type Document, type Element } from '@xmldom/xmldom';
import { PreconditionError } from '../errors.js';
import { parsePciAddress } from '../model/pci-address.js';
import type { XmlElement } from './xml-tree.js';

const ELEMENT = 1;
export const TEXT = 3;

export function children(e: Element, name?: string): Element[] {
  const out: Element[] = [];
  for (let n = e.firstChild; n; n = n.nextSibling) if (n.nodeType === ELEMENT && (!name || (n as Element).tagName === name)) out.push(n as Element);
  return out;
}

/** Build DOM nodes for an element tree, indented `indent` per level from `depth`. */
export function toDom(doc: Document, x: XmlElement, indent: string, depth: number): Element {
  const e = doc.createElement(x.name);
  for (const [k, v] of Object.entries(x.attrs ?? {})) if (v !== undefined) e.setAttribute(k, String(v));
  if (x.text !== undefined) e.appendChild(doc.createTextNode(x.text));
  const kids = (x.children ?? []).filter((c): c is XmlElement => Boolean(c));
  for (const k of kids) {
    e.appendChild(doc.createTextNode('\n' + indent.repeat(depth + 1)));
    e.appendChild(toDom(doc, k, indent, depth + 1));
  }
  if (kids.length) e.appendChild(doc.createTextNode('\n' + indent.repeat(depth)));
  return e;
}

/** Host address of a <hostdev type='pci'>'s <source><address>, normalized; null for other hostdevs. */
export function hostdevSource(h: Element): string | null {
  if (h.getAttribute('type') !== 'pci') return null;
  const src = children(h, 'source')[0];
  const a = src && children(src, 'address')[0];
  if (!a) return null;
  const num = (k: string) => parseInt(a.getAttribute(k) ?? '0', a.getAttribute(k)?.startsWith('0x') ? 16 : 10);
  const text = `${num('domain').toString(16).padStart(4, '0')}:${num('bus').toString(16).padStart(2, '0')}:${num('slot').toString(16).padStart(2, '0')}.${num('function').toString(16)}`;
  return parsePciAddress(text);
}

export function parseDomainXml(xml: string, source: string): Document {
  const errors: string[] = [];
  let doc: Document;
  try {
    doc = new DOMParser({ onError: (level, msg) => { if (level !== 'warning') errors.push(msg); } }).parseFromString(xml, 'text/xml');
  } catch (e) {
    errors.push((e as Error).message);
    doc = null as unknown as Document;
  }
  if (errors.length || !doc?.documentElement || doc.documentElement.tagName !== 'domain') {
    throw new PreconditionError('E_DOMAIN_XML', `${source} is not a libvirt domain XML${errors.length ? `: ${errors[0].split('\n')[0]}` : ''}`, 'check the domain with `virsh dumpxml --inactive NAME`');
  }
  return doc;
}

