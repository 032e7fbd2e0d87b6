#!/usr/bin/python
# -*- coding: utf-8 -*-
# vfiokit.passthrough.device: bind PCI devices to vfio-pci from boot with vfiokit.

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
---
module: device
short_description: Pass PCI devices through to VMs (vfio-pci from boot) with vfiokit
description:
  - Runs C(vfiokit) on the managed host. C(state=present) plans with C(vfiokit plan --json) and applies
    the plan as one journaled transaction (C(vfiokit apply --yes --json)); C(state=absent) reverts the
    last transaction byte for byte (C(vfiokit undo --yes --json)).
  - Every endpoint of each device's IOMMU group (GPU audio, USB-C, UCSI functions) is taken along.
  - Check mode runs only the plan (nothing changes). Diff mode returns each file's before and after.
  - C(changed) is true only when the plan was not empty; a second run reports C(changed=false).
  - Failures carry vfiokit's error code (C(error_code)), message and fix.
version_added: 0.1.0
options:
  state:
    description: C(present) applies passthrough for I(devices); C(absent) undoes the last vfiokit transaction.
    type: str
    choices: [present, absent]
    default: present
  devices:
    description:
      - What to pass through. Each item is a selector string (PCI address C(01:00.0) or C(vendor:device)),
        or a match C({vendor_device: 10de:2204, subsystem: 1458:403b}) resolved on each host, so one play
        works on hosts whose slots differ.
    type: list
    elements: raw
  mode:
    description:
      - C(boot) binds the devices to vfio-pci from the next boot (C(vfiokit plan)/C(apply); C(state=absent) undoes the last
        transaction). C(runtime) moves them now, without a reboot (C(vfiokit bind); C(state=absent) is C(vfiokit unbind) of
        I(devices)); nothing survives a reboot.
    type: str
    choices: [boot, runtime]
    default: boot
  with_devices:
    description: Endpoints of the same IOMMU group to take knowingly (C(--with)).
    type: list
    elements: str
    default: []
  allow_boot_vga:
    description: Allow the boot display device (C(--allow-boot-vga); with C(mode=runtime), C(bind --force)).
    type: bool
    default: false
  allow_root_storage:
    description: Allow the storage controller holding the root filesystem.
    type: bool
    default: false
  allow_default_nic:
    description: Allow the network card carrying the default route.
    type: bool
    default: false
  force:
    description: With C(state=absent), restore files even when they were edited since apply (C(undo --force)).
    type: bool
    default: false
  root:
    description: Host root vfiokit reads and writes (C(--root)); C(/) for the host itself.
    type: path
    default: /
  executable:
    description: The vfiokit command (may hold arguments, e.g. C(node /opt/vfiokit/bin/vfiokit.js)).
    type: str
    default: vfiokit
'''

EXAMPLES = r'''
- name: GPU and its companion functions to vfio-pci
  vfiokit.passthrough.device:
    devices:
      - vendor_device: "10de:2204"
        subsystem: "1458:403b"
  register: vfio

- name: Reboot when vfiokit changed the boot configuration
  ansible.builtin.reboot:
  when: vfio.reboot_required

- name: Back to the host drivers
  vfiokit.passthrough.device:
    state: absent
'''

RETURN = r'''
reboot_required:
  description: The change takes effect at the next boot.
  type: bool
  returned: always
plan:
  description: The plan vfiokit made (summary, warnings, files, commands).
  type: dict
  returned: state=present
outcome:
  description: With C(mode=runtime), each function's driver before and after (from C(vfiokit bind/unbind --json)).
  type: list
  returned: mode=runtime, when changed
txid:
  description: The vfiokit transaction applied or undone.
  type: str
  returned: when changed (not in check mode)
selectors:
  description: The selectors used on this host (matches resolved to addresses).
  type: list
  returned: state=present
devices:
  description: Every function that goes to vfio-pci (address, vendor_device, iommu_group, host_driver), companions included.
  type: list
  returned: state=present
companions:
  description: The functions taken along with the selected devices (the rest of their IOMMU groups, e.g. GPU audio, USB-C, UCSI).
  type: list
  returned: state=present
error_code:
  description: vfiokit's error code (E_...) on failure.
  type: str
  returned: failure
fix:
  description: What to do about the failure.
  type: str
  returned: failure
'''

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.vfiokit.passthrough.plugins.module_utils.vfiokit import fail_with, run_json


def resolve(module):
    """Selector strings pass through; vendor/subsystem matches become addresses found on this host."""
    selectors = []
    matches = [d for d in module.params['devices'] if isinstance(d, dict)]
    snapshot = None
    if matches:
        rc, snapshot, error, err = run_json(module, 'inspect', '--json')
        if error or snapshot is None:
            fail_with(module, error or {'code': 'E_VFIOKIT', 'message': 'vfiokit inspect printed no JSON'}, rc, 'vfiokit inspect --json')
    for d in module.params['devices']:
        if isinstance(d, dict):
            vd = str(d.get('vendor_device', '')).lower()
            sub = d.get('subsystem')
            if ':' not in vd:
                module.fail_json(msg='devices: %r needs vendor_device: VVVV:DDDD' % (d,), error_code='E_BAD_SELECTOR', fix='write matches as {vendor_device: 10de:2204, subsystem: 1458:403b}')
            found = [p['address'] for p in snapshot['pci']
                     if '%s:%s' % (p['vendor'], p['device']) == vd
                     and (not sub or '%s:%s' % (p.get('subsystemVendor'), p.get('subsystemDevice')) == str(sub).lower())]
            if not found:
                module.fail_json(msg='no PCI device on this host matches %s%s' % (vd, ' subsystem %s' % sub if sub else ''),
                                 error_code='E_UNKNOWN_DEVICE', fix='check the IDs with `vfiokit groups` on this host, or leave the host out of the play')
            selectors.extend(found)
        elif isinstance(d, str) and d:
            selectors.append(d)
        else:
            module.fail_json(msg='devices: %r is neither a selector nor a match' % (d,), error_code='E_BAD_SELECTOR', fix='use 01:00.0, 10de:2204 or {vendor_device: 10de:2204}')
    return selectors


def flags(p):
    out = []
    for w in p['with_devices']:
        out += ['--with', w]
    for opt, flag in (('allow_boot_vga', '--allow-boot-vga'), ('allow_root_storage', '--allow-root-storage'), ('allow_default_nic', '--allow-default-nic')):
        if p[opt]:
            out.append(flag)
    return out


def plan_diff(plan):
    diffs = []
    for st in plan.get('steps', []):
        if st.get('kind') == 'write-file':
            diffs.append({'before_header': st['path'] if st.get('before') else '/dev/null', 'after_header': st['path'],
                          'before': (st.get('before') or {}).get('content', ''), 'after': st['after']['content']})
        elif st.get('kind') == 'remove-file':
            diffs.append({'before_header': st['path'], 'after_header': '/dev/null', 'before': st['before']['content'], 'after': ''})
    return diffs


def undo_diff(pre):
    """Each file undo restores, from its bytes now to what undo puts back (vfiokit undo --dry-run --json)."""
    diffs = []
    for f in pre.get('files', []):
        gone = f.get('restored') is None and not f.get('restoredLink')
        after = f.get('restored') or ('-> %s\n' % f['restoredLink'] if f.get('restoredLink') else '')
        diffs.append({'before_header': f['path'] if f.get('current') is not None else '/dev/null', 'after_header': '/dev/null' if gone else f['path'],
                      'before': f.get('current') or '', 'after': after})
    return diffs


def summary(plan):
    return {
        'summary': plan.get('summary', []),
        'warnings': plan.get('warnings', []),
        'files': [s['path'] for s in plan.get('steps', []) if s.get('kind') in ('write-file', 'remove-file')],
        'commands': [' '.join(s['argv']) for s in plan.get('steps', []) if s.get('kind') == 'run-command'],
    }


def present(module):
    p = module.params
    if not p['devices']:
        module.fail_json(msg='state=present needs devices', error_code='E_NO_SELECTOR', fix='list the devices: a PCI address, vendor:device, or {vendor_device: ..., subsystem: ...}')
    selectors = resolve(module)
    rc, plan, error, err = run_json(module, 'plan', *(selectors + flags(p) + ['--json']))
    if error or plan is None:
        fail_with(module, error or {'code': 'E_VFIOKIT', 'message': 'vfiokit plan printed no JSON'}, rc, 'vfiokit plan', selectors=selectors)
    changed = bool(plan.get('steps'))
    for w in plan.get('warnings', []):
        module.warn(w)
    functions = functions_of(plan)
    result = {'changed': changed, 'mode': 'boot', 'selectors': selectors, 'plan': summary(plan), 'reboot_required': changed, 'devices': functions,
              'companions': companions_of(functions, selectors)}
    if module._diff:
        result['diff'] = plan_diff(plan)
    if not changed or module.check_mode:
        module.exit_json(**result)
    rc, res, error, err = run_json(module, 'apply', *(selectors + flags(p) + ['--yes', '--json']))
    if error or res is None:
        fail_with(module, error or {'code': 'E_VFIOKIT', 'message': 'vfiokit apply printed no JSON'}, rc, 'vfiokit apply', selectors=selectors, plan=result['plan'])
    result.update(changed=bool(res.get('changed')), txid=res.get('txid'), reboot_required=bool(res.get('rebootRequired')), touched=res.get('touched', []))
    module.exit_json(**result)


def functions_of(plan):
    return [{'address': d['address'], 'vendor_device': '%s:%s' % (d['vendor'], d['device']), 'iommu_group': d.get('iommuGroup'), 'host_driver': d.get('hostDriver', d.get('driver'))}
            for d in (plan.get('intent') or {}).get('devices', [])]


def companions_of(functions, selectors):
    picked = set(a if a.count(':') == 2 else '0000:' + a for a in selectors if '.' in a)
    return [f['address'] for f in functions if f['address'] not in picked and f['vendor_device'] not in selectors]


def runtime(module):
    """mode=runtime: vfiokit bind (present) / unbind (absent) of the devices, now; planned first with --dry-run."""
    p = module.params
    if not p['devices']:
        module.fail_json(msg='mode=runtime needs devices (also for state=absent)', error_code='E_NO_SELECTOR', fix='list the devices to bind or unbind')
    selectors = resolve(module)
    present = p['state'] == 'present'
    action = 'bind' if present else 'unbind'
    extra = []
    if present:
        for w in p['with_devices']:
            extra += ['--with', w]
        if p['allow_boot_vga']:
            extra.append('--force')
    rc, pre, error, err = run_json(module, action, *(selectors + extra + ['--dry-run', '--json']))
    if error or pre is None:
        fail_with(module, error or {'code': 'E_VFIOKIT', 'message': 'vfiokit %s printed no JSON' % action}, rc, 'vfiokit %s --dry-run' % action, selectors=selectors)
    plan = pre if present else pre.get('plan', {})
    changed = bool(plan.get('steps')) or (not present and bool(pre.get('undo')))
    for w in plan.get('warnings', []):
        module.warn(w)
    result = {'changed': changed, 'mode': 'runtime', 'selectors': selectors, 'plan': summary(plan), 'reboot_required': False}
    if present:
        result['devices'] = functions_of(plan)
        result['companions'] = companions_of(result['devices'], selectors)
        if module._diff and changed:
            result['diff'] = {'before_header': 'drivers', 'after_header': 'drivers',
                              'before': ''.join('%s %s\n' % (f['address'], f['host_driver'] or '(none)') for f in result['devices']),
                              'after': ''.join('%s vfio-pci\n' % f['address'] for f in result['devices'])}
    if not changed or module.check_mode:
        module.exit_json(**result)
    rc, res, error, err = run_json(module, action, *(selectors + extra + ['--yes', '--json']))
    if error or res is None:
        fail_with(module, error or {'code': 'E_VFIOKIT', 'message': 'vfiokit %s printed no JSON' % action}, rc, 'vfiokit %s' % action, selectors=selectors)
    for w in res.get('warnings', []):
        if w not in plan.get('warnings', []):
            module.warn(w)
    result.update(changed=bool(res.get('changed')), txid=res.get('txid'), outcome=res.get('devices', []))
    module.exit_json(**result)


def absent(module):
    # The dry run refuses (exit 3, with the fix) where the undo would: a file edited since, without force.
    rc, pre, error, err = run_json(module, 'undo', '--dry-run', '--json', *(['--force'] if module.params['force'] else []))
    if error or pre is None:
        fail_with(module, error or {'code': 'E_VFIOKIT', 'message': 'vfiokit undo printed no JSON'}, rc, 'vfiokit undo --dry-run')
    changed = bool(pre.get('txid'))
    result = {'changed': changed, 'txid': pre.get('txid'), 'reboot_required': bool(pre.get('rebootRequired')), 'restores': pre.get('restores', []), 'reruns': pre.get('reruns', [])}
    if module._diff and changed:
        result['diff'] = undo_diff(pre)
    if not changed or module.check_mode:
        module.exit_json(**result)
    args = ['undo', '--yes', '--json'] + (['--force'] if module.params['force'] else [])
    rc, res, error, err = run_json(module, *args)
    if error or res is None:
        fail_with(module, error or {'code': 'E_VFIOKIT', 'message': 'vfiokit undo printed no JSON'}, rc, 'vfiokit undo')
    result.update(reboot_required=bool(res.get('rebootRequired')), restored=res.get('restored', []), overwritten=res.get('overwritten', []))
    module.exit_json(**result)


def main():
    module = AnsibleModule(
        argument_spec=dict(
            state=dict(type='str', choices=['present', 'absent'], default='present'),
            mode=dict(type='str', choices=['boot', 'runtime'], default='boot'),
            devices=dict(type='list', elements='raw'),
            with_devices=dict(type='list', elements='str', default=[]),
            allow_boot_vga=dict(type='bool', default=False),
            allow_root_storage=dict(type='bool', default=False),
            allow_default_nic=dict(type='bool', default=False),
            force=dict(type='bool', default=False),
            root=dict(type='path', default='/'),
            executable=dict(type='str', default='vfiokit'),
        ),
        required_if=[('state', 'present', ['devices'])],
        supports_check_mode=True,
    )
    if module.params['mode'] == 'runtime':
        runtime(module)
    elif module.params['state'] == 'present':
        present(module)
    else:
        absent(module)


if __name__ == '__main__':
    main()
