#!/usr/bin/python
# -*- coding: utf-8 -*-
# vfiokit.passthrough.status: is the applied passthrough in effect (after the reboot)?

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
---
module: status
short_description: Report whether vfiokit's boot-time passthrough is in effect
description:
  - Runs C(vfiokit status --json) on the managed host (drivers, kernel arguments, C(/dev/vfio/N),
    framebuffer conflicts). Never changes anything.
  - With I(assert_in_effect), fails unless everything is in effect, naming each mismatch and its likely cause.
version_added: 0.1.0
options:
  assert_in_effect:
    description: Fail when the passthrough is not in effect.
    type: bool
    default: false
  root:
    description: Host root (C(--root)).
    type: path
    default: /
  executable:
    description: The vfiokit command.
    type: str
    default: vfiokit
'''

EXAMPLES = r'''
- vfiokit.passthrough.status:
    assert_in_effect: true
'''

RETURN = r'''
in_effect:
  description: Everything vfiokit applied is in effect.
  type: bool
  returned: always
status:
  description: vfiokit's status report (txid, lines with subject, observed, expected, cause).
  type: dict
  returned: always
'''

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.vfiokit.passthrough.plugins.module_utils.vfiokit import fail_with, run_json


def main():
    module = AnsibleModule(
        argument_spec=dict(
            assert_in_effect=dict(type='bool', default=False),
            root=dict(type='path', default='/'),
            executable=dict(type='str', default='vfiokit'),
        ),
        supports_check_mode=True,
    )
    # Exit 3 means "not in effect": a report, not a failure of the command.
    rc, report, error, err = run_json(module, 'status', '--json', allow_rc=[0, 3])
    if error or report is None:
        fail_with(module, error or {'code': 'E_VFIOKIT', 'message': 'vfiokit status printed no JSON: %s' % (err or '').strip()}, rc, 'vfiokit status --json')
    in_effect = bool(report.get('inEffect'))
    if module.params['assert_in_effect'] and not in_effect:
        bad = [l for l in report.get('lines', []) if not l.get('ok')]
        if not report.get('txid'):
            module.fail_json(msg='no boot-time passthrough is applied on this host', error_code='E_NOT_IN_EFFECT', fix='apply it with vfiokit.passthrough.device first', status=report, in_effect=False)
        module.fail_json(msg='passthrough is not in effect: ' + '; '.join('%s: %s (expected %s)%s' % (l['subject'], l['observed'], l['expected'], ', likely cause: %s' % l['cause'] if l.get('cause') else '') for l in bad),
                         error_code='E_NOT_IN_EFFECT', fix='reboot if the host has not been rebooted since apply; otherwise follow each likely cause', status=report, in_effect=False)
    module.exit_json(changed=False, in_effect=in_effect, status=report)


if __name__ == '__main__':
    main()
