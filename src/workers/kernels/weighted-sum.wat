;; f32x4 kernels for the aggregation workers: out = sum_j w_j * in_j over a range of parameters.
;;
;; Assembled offline by scripts/build-kernels.mjs (npm `wabt`) into weighted-sum.wasm next to this file;
;; tests/unit/aggregation.test.ts fails when the committed binary no longer matches this text.
;;
;; The memory is imported and shared: the pool creates one WebAssembly.Memory({ shared: true }) that holds every
;; update slot and output, and each worker instantiates this module on it to work on a disjoint range.
;;
;; Contract with the caller (src/server/adapters/workers/aggregator-pool.ts):
;;   - every buffer (inputs, output) starts 64-byte aligned and is padded to a multiple of 64 bytes, so the
;;     kernels run in whole 64-byte steps and never need a scalar tail. Padding lanes are read (inputs) and
;;     written (output) with garbage that the caller ignores;
;;   - `first` (the range start, in floats) is a multiple of 16 so that the rounding above stays inside the
;;     buffers' padding; only the end of a range is rounded up.
;;   - the table holds n entries of 8 bytes: i32 byte address of input j, f32 weight of input j.
(module
  (memory (import "env" "memory") 1 65536 shared)

  ;; Output block, in bytes. Every group of inputs adds into the block while it sits in the core's L2, so each
  ;; output byte goes to memory once whatever n is, and each input byte is read once. Measured on the dev box
  ;; (N = 10, P = 10M, one thread): 8 KiB blocks 15 GB/s, 128 KiB 20.6, 512 KiB 22.6, 1 MiB 22.7, unblocked
  ;; 21.5, against a read-only pass at 29-30 GB/s (the output's write and read-for-ownership are the rest).
  (global $block_bytes i32 (i32.const 524288))

  (func $weighted_sum (export "weighted_sum")
    (param $out i32) (param $table i32) (param $n i32) (param $first i32) (param $count i32)
    (local $off i32) (local $total i32) (local $pos i32) (local $len i32) (local $o i32) (local $at i32)
    (local $j i32) (local $e i32) (local $rest i32)
    (local.set $off (i32.shl (local.get $first) (i32.const 2)))
    (local.set $total
      (i32.and (i32.add (i32.shl (local.get $count) (i32.const 2)) (i32.const 63)) (i32.const -64)))
    (block $blocks_done
      (loop $block
        (br_if $blocks_done (i32.ge_u (local.get $pos) (local.get $total)))
        (local.set $len (i32.sub (local.get $total) (local.get $pos)))
        (if (i32.gt_u (local.get $len) (global.get $block_bytes))
          (then (local.set $len (global.get $block_bytes))))
        (local.set $at (i32.add (local.get $off) (local.get $pos)))
        (local.set $o (i32.add (local.get $out) (local.get $at)))
        ;; The first four inputs overwrite the block (no zeroing, no read of stale output: +8% measured);
        ;; with fewer than four inputs the block is zeroed and the remainder pass below adds into it.
        (local.set $j (i32.const 0))
        (if (i32.ge_u (local.get $n) (i32.const 4))
          (then
            (local.set $e (local.get $table))
            (call $set4 (local.get $o)
              (i32.add (i32.load offset=0 (local.get $e)) (local.get $at))
              (i32.add (i32.load offset=8 (local.get $e)) (local.get $at))
              (i32.add (i32.load offset=16 (local.get $e)) (local.get $at))
              (i32.add (i32.load offset=24 (local.get $e)) (local.get $at))
              (f32.load offset=4 (local.get $e))
              (f32.load offset=12 (local.get $e))
              (f32.load offset=20 (local.get $e))
              (f32.load offset=28 (local.get $e))
              (local.get $len))
            (local.set $j (i32.const 4)))
          (else (memory.fill (local.get $o) (i32.const 0) (local.get $len))))
        ;; Then four at a time: one read-modify-write of the block per four inputs.
        (block $groups_done
          (loop $group
            (br_if $groups_done (i32.gt_u (i32.add (local.get $j) (i32.const 4)) (local.get $n)))
            (local.set $e (i32.add (local.get $table) (i32.shl (local.get $j) (i32.const 3))))
            (call $acc4 (local.get $o)
              (i32.add (i32.load offset=0 (local.get $e)) (local.get $at))
              (i32.add (i32.load offset=8 (local.get $e)) (local.get $at))
              (i32.add (i32.load offset=16 (local.get $e)) (local.get $at))
              (i32.add (i32.load offset=24 (local.get $e)) (local.get $at))
              (f32.load offset=4 (local.get $e))
              (f32.load offset=12 (local.get $e))
              (f32.load offset=20 (local.get $e))
              (f32.load offset=28 (local.get $e))
              (local.get $len))
            (local.set $j (i32.add (local.get $j) (i32.const 4)))
            (br $group)))
        ;; The last one to three inputs in one more pass.
        (local.set $rest (i32.sub (local.get $n) (local.get $j)))
        (local.set $e (i32.add (local.get $table) (i32.shl (local.get $j) (i32.const 3))))
        (if (i32.eq (local.get $rest) (i32.const 3))
          (then
            (call $acc3 (local.get $o)
              (i32.add (i32.load offset=0 (local.get $e)) (local.get $at))
              (i32.add (i32.load offset=8 (local.get $e)) (local.get $at))
              (i32.add (i32.load offset=16 (local.get $e)) (local.get $at))
              (f32.load offset=4 (local.get $e))
              (f32.load offset=12 (local.get $e))
              (f32.load offset=20 (local.get $e))
              (local.get $len))))
        (if (i32.eq (local.get $rest) (i32.const 2))
          (then
            (call $acc2 (local.get $o)
              (i32.add (i32.load offset=0 (local.get $e)) (local.get $at))
              (i32.add (i32.load offset=8 (local.get $e)) (local.get $at))
              (f32.load offset=4 (local.get $e))
              (f32.load offset=12 (local.get $e))
              (local.get $len))))
        (if (i32.eq (local.get $rest) (i32.const 1))
          (then
            (call $acc1 (local.get $o)
              (i32.add (i32.load offset=0 (local.get $e)) (local.get $at))
              (f32.load offset=4 (local.get $e))
              (local.get $len))))
        (local.set $pos (i32.add (local.get $pos) (local.get $len)))
        (br $block))))

  ;; o[0..len) += wa*a + wb*b + wc*c + wd*d; len is a positive multiple of 64 bytes. Two vectors per step.
  ;; acc3, acc2 and acc1 below are the same loop for the last inputs.
  (func $acc4
    (param $o i32) (param $a i32) (param $b i32) (param $c i32) (param $d i32)
    (param $wa f32) (param $wb f32) (param $wc f32) (param $wd f32) (param $len i32)
    (local $i i32) (local $va v128) (local $vb v128) (local $vc v128) (local $vd v128)
    (local.set $va (f32x4.splat (local.get $wa)))
    (local.set $vb (f32x4.splat (local.get $wb)))
    (local.set $vc (f32x4.splat (local.get $wc)))
    (local.set $vd (f32x4.splat (local.get $wd)))
    (loop $step
      (v128.store offset=0 (i32.add (local.get $o) (local.get $i))
        (f32x4.add
          (f32x4.add
            (v128.load offset=0 (i32.add (local.get $o) (local.get $i)))
            (f32x4.mul (v128.load offset=0 (i32.add (local.get $a) (local.get $i))) (local.get $va)))
          (f32x4.add
            (f32x4.add
              (f32x4.mul (v128.load offset=0 (i32.add (local.get $b) (local.get $i))) (local.get $vb))
              (f32x4.mul (v128.load offset=0 (i32.add (local.get $c) (local.get $i))) (local.get $vc)))
            (f32x4.mul (v128.load offset=0 (i32.add (local.get $d) (local.get $i))) (local.get $vd)))))
      (v128.store offset=16 (i32.add (local.get $o) (local.get $i))
        (f32x4.add
          (f32x4.add
            (v128.load offset=16 (i32.add (local.get $o) (local.get $i)))
            (f32x4.mul (v128.load offset=16 (i32.add (local.get $a) (local.get $i))) (local.get $va)))
          (f32x4.add
            (f32x4.add
              (f32x4.mul (v128.load offset=16 (i32.add (local.get $b) (local.get $i))) (local.get $vb))
              (f32x4.mul (v128.load offset=16 (i32.add (local.get $c) (local.get $i))) (local.get $vc)))
            (f32x4.mul (v128.load offset=16 (i32.add (local.get $d) (local.get $i))) (local.get $vd)))))
      (local.set $i (i32.add (local.get $i) (i32.const 32)))
      (br_if $step (i32.lt_u (local.get $i) (local.get $len)))))

  ;; o[0..len) = wa*a + wb*b + wc*c + wd*d (the first group: nothing to read back).
  (func $set4
    (param $o i32) (param $a i32) (param $b i32) (param $c i32) (param $d i32)
    (param $wa f32) (param $wb f32) (param $wc f32) (param $wd f32) (param $len i32)
    (local $i i32) (local $va v128) (local $vb v128) (local $vc v128) (local $vd v128)
    (local.set $va (f32x4.splat (local.get $wa)))
    (local.set $vb (f32x4.splat (local.get $wb)))
    (local.set $vc (f32x4.splat (local.get $wc)))
    (local.set $vd (f32x4.splat (local.get $wd)))
    (loop $step
      (v128.store offset=0 (i32.add (local.get $o) (local.get $i))
        (f32x4.add
          (f32x4.mul (v128.load offset=0 (i32.add (local.get $a) (local.get $i))) (local.get $va))
          (f32x4.add
            (f32x4.add
              (f32x4.mul (v128.load offset=0 (i32.add (local.get $b) (local.get $i))) (local.get $vb))
              (f32x4.mul (v128.load offset=0 (i32.add (local.get $c) (local.get $i))) (local.get $vc)))
            (f32x4.mul (v128.load offset=0 (i32.add (local.get $d) (local.get $i))) (local.get $vd)))))
      (v128.store offset=16 (i32.add (local.get $o) (local.get $i))
        (f32x4.add
          (f32x4.mul (v128.load offset=16 (i32.add (local.get $a) (local.get $i))) (local.get $va))
          (f32x4.add
            (f32x4.add
              (f32x4.mul (v128.load offset=16 (i32.add (local.get $b) (local.get $i))) (local.get $vb))
              (f32x4.mul (v128.load offset=16 (i32.add (local.get $c) (local.get $i))) (local.get $vc)))
            (f32x4.mul (v128.load offset=16 (i32.add (local.get $d) (local.get $i))) (local.get $vd)))))
      (local.set $i (i32.add (local.get $i) (i32.const 32)))
      (br_if $step (i32.lt_u (local.get $i) (local.get $len)))))

  (func $acc3
    (param $o i32) (param $a i32) (param $b i32) (param $c i32)
    (param $wa f32) (param $wb f32) (param $wc f32) (param $len i32)
    (local $i i32) (local $va v128) (local $vb v128) (local $vc v128)
    (local.set $va (f32x4.splat (local.get $wa)))
    (local.set $vb (f32x4.splat (local.get $wb)))
    (local.set $vc (f32x4.splat (local.get $wc)))
    (loop $step
      (v128.store offset=0 (i32.add (local.get $o) (local.get $i))
        (f32x4.add
          (f32x4.add
            (v128.load offset=0 (i32.add (local.get $o) (local.get $i)))
            (f32x4.mul (v128.load offset=0 (i32.add (local.get $a) (local.get $i))) (local.get $va)))
          (f32x4.add
            (f32x4.mul (v128.load offset=0 (i32.add (local.get $b) (local.get $i))) (local.get $vb))
            (f32x4.mul (v128.load offset=0 (i32.add (local.get $c) (local.get $i))) (local.get $vc)))))
      (v128.store offset=16 (i32.add (local.get $o) (local.get $i))
        (f32x4.add
          (f32x4.add
            (v128.load offset=16 (i32.add (local.get $o) (local.get $i)))
            (f32x4.mul (v128.load offset=16 (i32.add (local.get $a) (local.get $i))) (local.get $va)))
          (f32x4.add
            (f32x4.mul (v128.load offset=16 (i32.add (local.get $b) (local.get $i))) (local.get $vb))
            (f32x4.mul (v128.load offset=16 (i32.add (local.get $c) (local.get $i))) (local.get $vc)))))
      (local.set $i (i32.add (local.get $i) (i32.const 32)))
      (br_if $step (i32.lt_u (local.get $i) (local.get $len)))))

  (func $acc2
    (param $o i32) (param $a i32) (param $b i32) (param $wa f32) (param $wb f32) (param $len i32)
    (local $i i32) (local $va v128) (local $vb v128)
    (local.set $va (f32x4.splat (local.get $wa)))
    (local.set $vb (f32x4.splat (local.get $wb)))
    (loop $step
      (v128.store offset=0 (i32.add (local.get $o) (local.get $i))
        (f32x4.add
          (v128.load offset=0 (i32.add (local.get $o) (local.get $i)))
          (f32x4.add
            (f32x4.mul (v128.load offset=0 (i32.add (local.get $a) (local.get $i))) (local.get $va))
            (f32x4.mul (v128.load offset=0 (i32.add (local.get $b) (local.get $i))) (local.get $vb)))))
      (v128.store offset=16 (i32.add (local.get $o) (local.get $i))
        (f32x4.add
          (v128.load offset=16 (i32.add (local.get $o) (local.get $i)))
          (f32x4.add
            (f32x4.mul (v128.load offset=16 (i32.add (local.get $a) (local.get $i))) (local.get $va))
            (f32x4.mul (v128.load offset=16 (i32.add (local.get $b) (local.get $i))) (local.get $vb)))))
      (local.set $i (i32.add (local.get $i) (i32.const 32)))
      (br_if $step (i32.lt_u (local.get $i) (local.get $len)))))

  (func $acc1 (param $o i32) (param $a i32) (param $wa f32) (param $len i32)
    (local $i i32) (local $va v128)
    (local.set $va (f32x4.splat (local.get $wa)))
    (loop $step
      (v128.store offset=0 (i32.add (local.get $o) (local.get $i))
        (f32x4.add
          (v128.load offset=0 (i32.add (local.get $o) (local.get $i)))
          (f32x4.mul (v128.load offset=0 (i32.add (local.get $a) (local.get $i))) (local.get $va))))
      (v128.store offset=16 (i32.add (local.get $o) (local.get $i))
        (f32x4.add
          (v128.load offset=16 (i32.add (local.get $o) (local.get $i)))
          (f32x4.mul (v128.load offset=16 (i32.add (local.get $a) (local.get $i))) (local.get $va))))
      (local.set $i (i32.add (local.get $i) (i32.const 32)))
      (br_if $step (i32.lt_u (local.get $i) (local.get $len)))))

  ;; Read-only pass over count floats (rounded up to 16, same padding contract): the memory-read ceiling the
  ;; benchmark compares weighted_sum against. Four accumulators so the adds do not serialise the loop.
  (func $read_sum (export "read_sum") (param $p i32) (param $count i32) (result f32)
    (local $end i32) (local $s0 v128) (local $s1 v128) (local $s2 v128) (local $s3 v128)
    (local.set $end
      (i32.add (local.get $p)
        (i32.and (i32.add (i32.shl (local.get $count) (i32.const 2)) (i32.const 63)) (i32.const -64))))
    (block $done
      (loop $step
        (br_if $done (i32.ge_u (local.get $p) (local.get $end)))
        (local.set $s0 (f32x4.add (local.get $s0) (v128.load offset=0 (local.get $p))))
        (local.set $s1 (f32x4.add (local.get $s1) (v128.load offset=16 (local.get $p))))
        (local.set $s2 (f32x4.add (local.get $s2) (v128.load offset=32 (local.get $p))))
        (local.set $s3 (f32x4.add (local.get $s3) (v128.load offset=48 (local.get $p))))
        (local.set $p (i32.add (local.get $p) (i32.const 64)))
        (br $step)))
    (local.set $s0 (f32x4.add (f32x4.add (local.get $s0) (local.get $s1)) (f32x4.add (local.get $s2) (local.get $s3))))
    (f32.add
      (f32.add (f32x4.extract_lane 0 (local.get $s0)) (f32x4.extract_lane 1 (local.get $s0)))
      (f32.add (f32x4.extract_lane 2 (local.get $s0)) (f32x4.extract_lane 3 (local.get $s0))))))
