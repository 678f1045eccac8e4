/** Quantities as they are kept and as people read them: money without float noise, counts with their noun. */

/** Significant digits a dollar amount keeps: far finer than any price, coarse enough to drop float noise. */
export const DOLLAR_DIGITS = 12

/** A dollar amount to 12 significant digits, so that `0.00004934999999999999` is kept and shown as `0.00004935`. */
export const roundDollars = (amount: number): number =>
  Number.isFinite(amount) ? Number(amount.toPrecision(DOLLAR_DIGITS)) : amount

/**
 * An amount spent or left, e.g. `$1.0500`: `minDecimals` decimals, and more for an amount too small to
 * show otherwise (two significant digits, to a ten-billionth of a dollar), so `$0.00026` is never `$0.0003`.
 */
export const dollars = (amount: number, minDecimals = 4): string => {
  const magnitude = amount === 0 || !Number.isFinite(amount) ? 0 : Math.floor(Math.log10(Math.abs(amount)))
  return `$${amount.toFixed(Math.min(10, Math.max(minDecimals, 1 - magnitude)))}`
}

/** A cap as it was given: every digit it has, cents at least (`$5.00`, `$0.0003`). */
export const dollarCap = (cap: number): string => {
  let decimals = 2
  while (decimals < 12 && Number(cap.toFixed(decimals)) !== cap) decimals++
  return `$${cap.toFixed(decimals)}`
}

/** `1 iteration`, `2 iterations`; `shown` is how the number is written, when not plainly. */
export const plural = (n: number, noun: string, shown: string = String(n)): string =>
  `${shown} ${n === 1 ? noun : `${noun}s`}`
