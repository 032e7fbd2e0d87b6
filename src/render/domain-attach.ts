// Add passthrough functions to an existing domain's XML (from `virsh dumpxml
// --inactive`), editing the document with @xmldom/xmldom so everything else
// stays as it was: new PCIe root ports go after the last controller, new
// <hostdev>s after the last hostdev (else at the end of <devices>), indented
// like their siblings. Functions already in the domain are skipped, so
// attaching twice changes nothing. Pure (no I/O).

import { XMLSerializer, type Element, type Node } from '@xmldom/xmldom';
import { PreconditionError, type Problem } from '../errors.js';
import { shortAddress, slotOf } from '../model/pci-address.js';
import type { GuestHostdev } from '../vm/plan.js';
import { hostdevElement, rootPortElement } from './domain-xml.js';
import { children, hostdevSource, parseDomainXml, TEXT, toDom } from '../formats/libvirt-domain.js';

interface AttachResult {
  xml: string;
  /** Functions added, with the guest bus they got. */
  added: GuestHostdev[];
  /** Host addresses already in the domain. */
  present: string[];
  warnings: string[];
}

export function attachHostdevs(xml: string, domainName: string, hostdevs: GuestHostdev[]): AttachResult {
  const doc = parseDomainXml(xml, `the XML of domain '${domainName}'`);
  const root = doc.documentElement!;
  const os = children(root, 'os')[0];
  const machine = os ? children(os, 'type')[0]?.getAttribute('machine') ?? '' : '';
  if (!/q35/.test(machine)) {
    throw new PreconditionError(
      'E_NOT_Q35',
      `domain '${domainName}' uses machine type '${machine || 'unknown'}', not q35: vfiokit places passed-through devices behind PCIe root ports, which only q35 has`,
      'create a q35 domain (`vfiokit vm define NAME --device …` or virt-manager with chipset Q35) and attach to that',
    );
  }
  let devices = children(root, 'devices')[0];
  if (!devices) {
    devices = doc.createElement('devices');
    root.appendChild(devices);
  }
  const existing = new Set(children(devices, 'hostdev').map(hostdevSource).filter((a): a is string => a !== null));
  const present = hostdevs.filter((h) => existing.has(h.host)).map((h) => h.host as string);
  const problems: Problem[] = [];
  const slots = [...new Set(hostdevs.map((h) => slotOf(h.host)))];
  for (const slot of slots) {
    const fns = hostdevs.filter((h) => slotOf(h.host) === slot);
    const have = fns.filter((h) => existing.has(h.host));
    if (have.length && have.length < fns.length) {
      problems.push({
        code: 'E_PARTIAL_DEVICE',
        subject: slot,
        message: `domain '${domainName}' already has ${have.map((h) => shortAddress(h.host)).join(', ')} but not ${fns.filter((h) => !existing.has(h.host)).map((h) => shortAddress(h.host)).join(', ')}`,
        hint: `remove the existing <hostdev> entries of ${shortAddress(slot)} (virsh edit ${domainName}) and attach again, so all functions share one guest slot`,
      });
    }
  }
  if (problems.length) throw new PreconditionError('E_PARTIAL_DEVICE', `cannot add the device to '${domainName}' without splitting its functions`, undefined, domainName, problems);

  const toAdd = hostdevs.filter((h) => !existing.has(h.host));
  const warnings: string[] = [];
  const added: GuestHostdev[] = [];
  if (toAdd.length) {
    // Indentation of <devices>' children, taken from the document itself.
    const firstText = devices.firstChild && devices.firstChild.nodeType === TEXT ? (devices.firstChild.nodeValue ?? '') : '\n      ';
    const childIndent = firstText.slice(firstText.lastIndexOf('\n') + 1) || '      ';
    // One indentation unit = how <domain>'s own children are indented (libvirt: two spaces).
    const rootText = root.firstChild && root.firstChild.nodeType === TEXT ? (root.firstChild.nodeValue ?? '') : '\n  ';
    const unit = rootText.slice(rootText.lastIndexOf('\n') + 1) || '  ';
    const depth = Math.max(1, Math.round(childIndent.length / unit.length));
    const controllers = children(devices, 'controller');
    const maxIndex = Math.max(0, ...controllers.filter((c) => c.getAttribute('type') === 'pci').map((c) => Number(c.getAttribute('index') ?? 0)));
    const newSlots = [...new Set(toAdd.map((h) => h.guestBus))];
    const busMap = new Map(newSlots.map((b, i) => [b, maxIndex + 1 + i]));
    const insertAfter = (anchor: Node | null, node: Element) => {
      const ws = doc.createTextNode('\n' + childIndent);
      if (anchor) {
        const next = anchor.nextSibling;
        devices!.insertBefore(ws, next);
        devices!.insertBefore(node, next);
      } else {
        // Append at the end of <devices>, before its closing whitespace.
        const last = devices!.lastChild;
        const before = last && last.nodeType === TEXT ? last : null;
        devices!.insertBefore(ws, before);
        devices!.insertBefore(node, before);
        if (!before) devices!.appendChild(doc.createTextNode('\n' + unit.repeat(Math.max(0, depth - 1))));
      }
      return node;
    };
    let anchor: Node | null = controllers[controllers.length - 1] ?? null;
    for (const b of newSlots) anchor = insertAfter(anchor, toDom(doc, rootPortElement(busMap.get(b)!), unit, depth));
    const hostdevEls = children(devices, 'hostdev');
    let hAnchor: Node | null = hostdevEls[hostdevEls.length - 1] ?? null;
    for (const h of toAdd) {
      const g = { ...h, guestBus: busMap.get(h.guestBus)! };
      added.push(g);
      hAnchor = insertAfter(hAnchor, toDom(doc, hostdevElement(g), unit, depth));
    }
  }
  const balloon = children(devices, 'memballoon')[0];
  if (balloon && balloon.getAttribute('model') !== 'none') warnings.push(`domain '${domainName}' has a ${balloon.getAttribute('model')} memory balloon: VFIO pins all guest memory, so it cannot balloon; consider <memballoon model='none'/> (left unchanged)`);
  return { xml: new XMLSerializer().serializeToString(doc), added, present, warnings };
}
