/**
 * Text as a file name or run id may carry it: lower-case letters and digits (accents dropped), every run
 * of anything else one `-`, at most `max` characters, no `-` at either end; empty if nothing is left.
 */
export const slug = (text: string, max: number): string =>
  text.normalize("NFKD").replace(/[\u0300-\u036f]/g, "").toLowerCase().replace(/[^a-z0-9]+/g, "-").replace(/^-+/, "").slice(0, max)
    .replace(/-+$/, "")
