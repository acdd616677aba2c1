// SPDX-License-Identifier: MIT
pragma solidity 0.8.37;

/// @title ContributionRewards
/// @notice Pays HyperGPU node operators for verified training work. The coordinator (owner) settles each epoch
/// by committing a Merkle root over (account, cumulative amount) leaves; a node claims the difference between
/// its cumulative amount and what it already claimed. Cumulative leaves mean a node may skip epochs and claim
/// once against the latest root, and a claim against an old root after a newer one pays nothing twice.
contract ContributionRewards {
    error NotOwner(address caller);
    error EpochNotIncreasing(uint64 epoch, uint64 lastEpoch);
    error EmptyRoot();
    error Underfunded(uint256 committed, uint256 funded);
    error UnknownEpoch(uint64 epoch);
    error InvalidProof(uint64 epoch, address account, uint256 cumulativeAmount);
    error NothingToClaim(address account, uint256 cumulativeAmount, uint256 claimed);
    error TransferFailed(address account, uint256 amount);

    event Funded(address indexed from, uint256 amount, uint256 totalFunded);
    event EpochCommitted(uint64 indexed epoch, bytes32 root, uint256 total, uint256 totalCommitted);
    event Claimed(uint64 indexed epoch, address indexed account, uint256 amount, uint256 cumulativeAmount);

    address public immutable owner;
    /// Settlement number of the last committed root (0: none yet); each commit must use a larger one.
    uint64 public lastEpoch;
    uint256 public totalFunded;
    uint256 public totalCommitted;
    uint256 public totalClaimed;
    mapping(uint64 => bytes32) public roots;
    mapping(address => uint256) public claimed;

    constructor() payable {
        owner = msg.sender;
        if (msg.value > 0) {
            totalFunded = msg.value;
            emit Funded(msg.sender, msg.value, msg.value);
        }
    }

    modifier onlyOwner() {
        if (msg.sender != owner) revert NotOwner(msg.sender);
        _;
    }

    /// @notice Adds native tokens (MON on Monad) to the reward pool. Only the owner funds, so the balance it
    /// commits against is the one it put in.
    function fund() external payable onlyOwner {
        totalFunded += msg.value;
        emit Funded(msg.sender, msg.value, totalFunded);
    }

    /// @notice Commits the root of settlement `epoch`, adding `total` new base units owed to nodes.
    function commitEpoch(uint64 epoch, bytes32 root, uint256 total) external onlyOwner {
        if (epoch <= lastEpoch) revert EpochNotIncreasing(epoch, lastEpoch);
        if (root == bytes32(0)) revert EmptyRoot();
        uint256 committed = totalCommitted + total;
        if (committed > totalFunded) revert Underfunded(committed, totalFunded);
        lastEpoch = epoch;
        roots[epoch] = root;
        totalCommitted = committed;
        emit EpochCommitted(epoch, root, total, committed);
    }

    /// @notice Pays `account` what it is owed up to `cumulativeAmount`, proven against the root of `epoch`.
    /// Anyone may send it; the tokens always go to `account`.
    function claim(uint64 epoch, address account, uint256 cumulativeAmount, bytes32[] calldata proof) external {
        bytes32 root = roots[epoch];
        if (root == bytes32(0)) revert UnknownEpoch(epoch);
        // 52-byte leaf: never the 64 bytes of an inner node, so an inner node cannot pass as a leaf.
        bytes32 node = keccak256(abi.encodePacked(account, cumulativeAmount));
        for (uint256 i = 0; i < proof.length; i++) {
            bytes32 sibling = proof[i];
            node = node < sibling ? keccak256(abi.encodePacked(node, sibling)) : keccak256(abi.encodePacked(sibling, node));
        }
        if (node != root) revert InvalidProof(epoch, account, cumulativeAmount);
        uint256 already = claimed[account];
        if (cumulativeAmount <= already) revert NothingToClaim(account, cumulativeAmount, already);
        uint256 amount = cumulativeAmount - already;
        claimed[account] = cumulativeAmount;
        totalClaimed += amount;
        (bool ok, ) = account.call{value: amount}("");
        if (!ok) revert TransferFailed(account, amount);
        emit Claimed(epoch, account, amount, cumulativeAmount);
    }
}
