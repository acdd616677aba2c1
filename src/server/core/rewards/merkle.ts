// The settlement Merkle tree, exactly as contracts/ContributionRewards.sol verifies it: a leaf is
// keccak256(abi.encodePacked(address account, uint256 cumulativeAmount)) (52 bytes hashed, so no inner node of
// 64 bytes can pass for one), inner nodes hash the sorted pair, and a level with an odd count promotes its last
// node unchanged. Leaves are sorted by hash so the same set always gives the same root. Pure: viem's keccak256
// and encodePacked only hash bytes.
import { encodePacked, keccak256, type Address, type Hex } from 'viem';

export interface MerkleLeaf {
  account: Address;
  /** Everything owed to the account up to this settlement, in base units. */
  cumulativeAmount: bigint;
}

export interface MerkleTree {
  root: Hex;
  /** Leaves in tree order (sorted by hash). */
  leaves: readonly (MerkleLeaf & { hash: Hex })[];
  /** The proof of one account, or null when it has no leaf. */
  proof(account: Address): Hex[] | null;
}

export function leafHash(leaf: MerkleLeaf): Hex {
  return keccak256(encodePacked(['address', 'uint256'], [leaf.account, leaf.cumulativeAmount]));
}

export function hashPair(a: Hex, b: Hex): Hex {
  return BigInt(a) < BigInt(b) ? keccak256(encodePacked(['bytes32', 'bytes32'], [a, b])) : keccak256(encodePacked(['bytes32', 'bytes32'], [b, a]));
}

/** Builds the tree; at least one leaf, each account once (a second leaf for one account is a bug upstream). */
export function buildMerkleTree(input: readonly MerkleLeaf[]): MerkleTree {
  if (input.length === 0) throw new Error('a Merkle tree needs at least one leaf');
  const seen = new Set<string>();
  for (const leaf of input) {
    const key = leaf.account.toLowerCase();
    if (seen.has(key)) throw new Error(`account ${leaf.account} has two leaves`);
    if (leaf.cumulativeAmount < 0n) throw new Error(`account ${leaf.account} has a negative amount`);
    seen.add(key);
  }
  const leaves = input.map((leaf) => ({ ...leaf, hash: leafHash(leaf) })).sort((a, b) => (BigInt(a.hash) < BigInt(b.hash) ? -1 : 1));
  const levels: Hex[][] = [leaves.map((l) => l.hash)];
  while (levels[levels.length - 1]!.length > 1) {
    const below = levels[levels.length - 1]!;
    const level: Hex[] = [];
    for (let i = 0; i < below.length; i += 2) level.push(i + 1 < below.length ? hashPair(below[i]!, below[i + 1]!) : below[i]!);
    levels.push(level);
  }
  const root = levels[levels.length - 1]![0]!;
  return {
    root,
    leaves,
    proof(account) {
      let index = leaves.findIndex((l) => l.account.toLowerCase() === account.toLowerCase());
      if (index < 0) return null;
      const proof: Hex[] = [];
      for (let depth = 0; depth < levels.length - 1; depth++) {
        const level = levels[depth]!;
        const sibling = index ^ 1;
        if (sibling < level.length) proof.push(level[sibling]!);
        index >>= 1;
      }
      return proof;
    },
  };
}

/** What the contract computes for a claim: true when `proof` takes `leaf` to `root`. */
export function verifyMerkleProof(root: Hex, leaf: MerkleLeaf, proof: readonly Hex[]): boolean {
  let node = leafHash(leaf);
  for (const sibling of proof) node = hashPair(node, sibling);
  return node.toLowerCase() === root.toLowerCase();
}
