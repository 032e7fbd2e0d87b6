# Shared by the vfiokit.passthrough modules: run the vfiokit CLI on the
# managed host and turn its JSON (and its JSON errors) into module results.

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import shlex


def vfiokit_argv(module, *args):
    exe = module.params['executable']
    argv = shlex.split(exe) + list(args)
    root = module.params.get('root')
    if root and root != '/':
        argv += ['--root', root]
    return argv


def parse_error(stderr):
    """vfiokit prints {"error": {...}} on stderr when --json is given."""
    for line in reversed((stderr or '').splitlines()):
        line = line.strip()
        if line.startswith('{') and '"error"' in line:
            try:
                return json.loads(line)['error']
            except ValueError:
                return None
    return None


def run_json(module, *args, **kw):
    """Run vfiokit with --json; return (rc, parsed stdout or None, error or None, stderr)."""
    argv = vfiokit_argv(module, *args)
    try:
        rc, out, err = module.run_command(argv, check_rc=False)
    except OSError as e:
        module.fail_json(msg='cannot run vfiokit (%s): %s' % (argv[0], e), error_code='E_NO_VFIOKIT', fix='install vfiokit on the host (role vfiokit.passthrough.install) or set executable:')
    data = None
    if out and out.strip():
        try:
            data = json.loads(out)
        except ValueError:
            data = None
    error = parse_error(err)
    if rc not in kw.get('allow_rc', [0]) and error is None:
        error = {'code': 'E_VFIOKIT', 'message': 'vfiokit %s exited %d: %s' % (' '.join(args), rc, (err or out or '').strip()[-2000:]), 'hint': None, 'problems': []}
    return rc, data, error, err


def fail_with(module, error, rc, cmd, **extra):
    """Fail carrying vfiokit's error code, message and fix (and every problem, each with its fix)."""
    problems = error.get('problems') or []
    msg = error.get('message') or 'vfiokit failed'
    if problems:
        msg += ': ' + '; '.join(p.get('message', '') for p in problems)
    fixes = [p.get('hint') for p in problems if p.get('hint')]
    if error.get('hint'):
        fixes.append(error['hint'])
    module.fail_json(msg=msg, error_code=error.get('code'), fix='; '.join(fixes) or None, problems=problems, rc=rc, cmd=cmd, **extra)
