/** pier's release version, shown by `pier version` and `pier-runtime --version`. */
export const VERSION = '0.1.0';
