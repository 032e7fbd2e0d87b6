// Configuration locations: where boot and module configuration may live, so
// a config file's symlink may point there (pure constants).

/** Top-level directories that hold configuration files vfiokit reads or edits. */
export const CONFIG_LOCATIONS: readonly string[] = ['/etc/', '/boot/', '/efi/'];
