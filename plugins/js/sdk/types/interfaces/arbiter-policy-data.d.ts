/** @module Interface arbiter:policy/data@0.1.0 **/
/**
 * The bytes of the data file named `name`, or none when the set has no such file.
 */
export function read(name: string): Uint8Array | undefined;
