// Sign-In with Ethereum for the coordinator's owner: the wallet that owns the settlement contract may operate the
// coordinator instead of presenting the admin token. Checks an EIP-4361 message: this host as its domain, this
// chain, a nonce this server issued and has not seen used, fresh, and signed by the owner. Pure: viem parses and
// recovers; the clock's reading comes in as `now`.
import { recoverMessageAddress, type Hex } from 'viem';
import { parseSiweMessage, validateSiweMessage } from 'viem/siwe';

export type SiweCheck = { ok: true; address: string; nonce: string } | { ok: false; reason: string };

export async function checkSiweSignIn(input: {
  message: string;
  signature: string;
  owner: string;
  domain: string;
  chainId: number;
  /** True when this server issued the nonce and it is still unused (the caller marks it used). */
  nonceIssued: (nonce: string) => boolean;
  now: number;
}): Promise<SiweCheck> {
  let parsed;
  try {
    parsed = parseSiweMessage(input.message);
  } catch {
    return { ok: false, reason: 'not a Sign-In with Ethereum message' };
  }
  if (!parsed.address || !parsed.nonce) return { ok: false, reason: 'the message has no address or nonce' };
  if (parsed.chainId !== input.chainId) return { ok: false, reason: `the message is for chain ${parsed.chainId}, this coordinator settles on ${input.chainId}` };
  if (!validateSiweMessage({ message: parsed, domain: input.domain, time: new Date(input.now) })) {
    return { ok: false, reason: `the message is not for ${input.domain}, or it has expired or is not valid yet` };
  }
  if (!parsed.issuedAt || input.now - parsed.issuedAt.getTime() > 5 * 60_000) return { ok: false, reason: 'the message was issued more than 5 minutes ago' };
  if (!input.nonceIssued(parsed.nonce)) return { ok: false, reason: 'the nonce was not issued here, or was used already' };
  let signer: string;
  try {
    signer = await recoverMessageAddress({ message: input.message, signature: input.signature as Hex });
  } catch {
    return { ok: false, reason: 'the signature cannot be read' };
  }
  if (signer.toLowerCase() !== parsed.address.toLowerCase()) return { ok: false, reason: 'the signature was not made by the address in the message' };
  if (signer.toLowerCase() !== input.owner.toLowerCase()) return { ok: false, reason: `${signer.toLowerCase()} does not own this coordinator's contract` };
  return { ok: true, address: signer.toLowerCase(), nonce: parsed.nonce };
}
