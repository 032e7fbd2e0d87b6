// Runtime binding (`vfiokit bind` / `unbind`): public API.
export { DEFAULT_MATCH, executeBind, executeUnbind, planBind, planUnbind, VFIO_PCI, type DeviceMove, type DriverState, type RuntimeDeps, type RuntimePlan, type RuntimeResult } from './bind.js';
export { describeWriteError, realSysfsWriter, type SysfsWriter } from './sysfs-writer.js';
export { drivesConsole, groupUsers, groupViability, readLive, readRuntimeRecord, type GroupViability, type LiveDevice, type RuntimeRecord, type RuntimeRecordEntry } from './state.js';
