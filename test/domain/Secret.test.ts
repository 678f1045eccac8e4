import { assert, describe, it } from "@effect/vitest"
import * as ApiSession from "../../src/domain/ApiSession.js"
import * as ApiToken from "../../src/domain/ApiToken.js"
import * as Secret from "../../src/domain/Secret.js"
import * as HarnessKeys from "../../src/harness/HarnessKeys.js"

describe("Secret", () => {
  it("keeps a secret's sha256 in hex and its first 12 characters", () => {
    // The FIPS 180-2 test vector: stored hashes of keys, tokens and sessions made before still match.
    assert.strictEqual(Secret.hashOf("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
    assert.strictEqual(Secret.prefixOf("apt_0123456789abcdef"), "apt_01234567")
  })

  it("is what harness keys, API tokens and sessions are kept as", () => {
    const key = HarnessKeys.generate()
    assert.deepStrictEqual([key.hash, key.prefix], [Secret.hashOf(key.key), Secret.prefixOf(key.key)])
    const token = ApiToken.generate()
    assert.deepStrictEqual([token.hash, token.prefix], [Secret.hashOf(token.token), Secret.prefixOf(token.token)])
    assert.strictEqual(ApiToken.hashOf, Secret.hashOf)
    assert.strictEqual(ApiSession.hashOf, Secret.hashOf)
  })
})
