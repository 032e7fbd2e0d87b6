// Where vfiokit keeps its own state under a root: the lock, the apply journal
// and the runtime binding record. Host paths, resolved through HostRoot.

import { HostRoot } from '../host/root.js';

export const STATE_DIR = '/var/lib/vfiokit';
export const LOCK_FILE = `${STATE_DIR}/lock`;
export const JOURNAL_DIR = `${STATE_DIR}/journal`;

export const asRoot = (root: HostRoot | string): HostRoot => (typeof root === 'string' ? new HostRoot(root) : root);
