export { bootstrapBusybox, busyboxTar, isStaticElf, listApplets, BUSYBOX_PATH, type BusyboxOptions } from './busybox.ts';
export { bootstrapDebian, mirrorFromApt, stripAptCaches, type DebianOptions } from './debian.ts';
