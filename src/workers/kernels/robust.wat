;; f32x4 kernels for the robust aggregation rules, run by the aggregation workers over the pool's shared memory:
;;   robust     coordinate-wise order statistics (trimmed mean, median) by a comparator network, per block of
;;              coordinates, fused with the distances of every input from the result;
;;   weighted_mean  the weighted mean, fused with the same distances (the weighted-mean rule, and the
;;              mean of the updates Multi-Krum keeps);
;;   distances  dist[j] += sum over a range of (in_j - agg)^2 (the outlier score of every rule);
;;   pairwise   m[i*n + j] += sum over a range of (in_i - in_j)^2 for i < j (Multi-Krum's scores).
;;
;; Assembled offline by scripts/build-kernels.mjs (npm `wabt`) into robust.wasm next to this file;
;; tests/unit/aggregation.test.ts fails when the committed binary no longer matches this text.
;;
;; Same contract as weighted-sum.wat: buffers start 64-byte aligned and are padded to 64 bytes; `first` (a float
;; index) is a multiple of 16; the table holds n entries of 8 bytes whose first i32 is the byte address of input j
;; (the second word, the weight, is not read here). Padding lanes are computed on and ignored for the aggregate;
;; the distance sums mask them out (they must not count).
;;
;; Why a network: the N values of one coordinate are sorted (or partitioned) by a fixed sequence of
;; compare-exchanges, identical for every coordinate, so four coordinates go through it at once in one v128 and
;; there is no data-dependent branch. The sequence (the comparator list) is made by the pool in JavaScript for
;; the rule and N at hand (Batcher's odd-even merge sort pruned to the ranks the rule reads, or k bubble passes
;; from each end for a trimmed mean with small k, whichever is shorter) and passed here as a table, so this
;; kernel does not depend on N. The list is run over a block of 256 coordinates at a time: the block's N rows
;; are copied to a per-worker scratch area (N KiB: L1 for N = 10, L2 for N = 100), each comparator is then a
;; straight loop of 64 vector min/max pairs, which amortises reading the comparator and keeps the rows in cache.
;;
;; Exactness: a compare-exchange takes lo = pmin(x, y) = (y < x ? y : x) and hi = pmax(y, x) = (y < x ? x : y).
;; Both select on the same condition, so the pair is always a permutation of (x, y): values are moved, never
;; made, also for -0/+0 and ties (f32x4.min/max would turn (+0, -0) into (-0, +0), fine too, but cost about 8
;; x86 instructions each in V8 against one minps/maxps for pmin/pmax). The kept ranks are summed in f64 in
;; ascending order and divided once, as the float64 reference (core/aggregation.ts) does, then rounded once to
;; f32: the result equals the reference's (up to the sign of a zero).
(module
  (memory (import "env" "memory") 1 65536 shared)

  ;; Coordinates per block, and the bytes of one scratch row (the pool allocates n rows of this per worker).
  (global $block_floats i32 (i32.const 256))
  (global $row_bytes i32 (i32.const 1024))
  ;; Distance sums run in f32x4 over at most this many bytes of a row, then go to f64: bounded f32 error.
  (global $chunk_bytes i32 (i32.const 4096))
  ;; The distances pass compares every input with this many bytes of the aggregate at a time (the aggregate's
  ;; piece stays in L2 while the inputs stream past it). Measured at N = 100, P = 1M on one thread of the
  ;; loaded 2-core VM: 4 KiB pieces 144 ms, 256 KiB 133 ms, the whole range at once 133 ms (weighted_sum over
  ;; the same inputs 68-88 ms): the piece size hardly matters; the pass costs about 1.5-2x a read.
  (global $piece_bytes i32 (i32.const 65536))

  ;; out[first .. first+count) = (sum of ranks lo .. hi-1 of the n inputs, per coordinate) / div, and
  ;; dist[j] += sum over the range of (in_j - out)^2 (f64, n entries).
  ;; net: ncmp entries of two i32, the byte offsets (row * 1024) of the lower and the upper row of a comparator.
  (func $robust (export "robust")
    (param $table i32) (param $n i32) (param $first i32) (param $count i32)
    (param $net i32) (param $ncmp i32) (param $scratch i32) (param $out i32)
    (param $lo i32) (param $hi i32) (param $div f64) (param $dist i32)
    (local $pos i32) (local $end i32) (local $len i32) (local $bytes i32) (local $j i32) (local $c i32)
    (local.set $pos (local.get $first))
    (local.set $end (i32.add (local.get $first) (local.get $count)))
    (block $done
      (loop $block
        (br_if $done (i32.ge_u (local.get $pos) (local.get $end)))
        (local.set $len (i32.sub (local.get $end) (local.get $pos)))
        (if (i32.gt_u (local.get $len) (global.get $block_floats))
          (then (local.set $len (global.get $block_floats))))
        (local.set $bytes (i32.and (i32.add (i32.shl (local.get $len) (i32.const 2)) (i32.const 63)) (i32.const -64)))
        ;; the block's rows into scratch
        (local.set $j (i32.const 0))
        (block $copied
          (loop $copy
            (br_if $copied (i32.ge_u (local.get $j) (local.get $n)))
            (memory.copy
              (i32.add (local.get $scratch) (i32.mul (local.get $j) (global.get $row_bytes)))
              (i32.add (i32.load (i32.add (local.get $table) (i32.shl (local.get $j) (i32.const 3))))
                (i32.shl (local.get $pos) (i32.const 2)))
              (local.get $bytes))
            (local.set $j (i32.add (local.get $j) (i32.const 1)))
            (br $copy)))
        ;; the network
        (local.set $c (i32.const 0))
        (block $sorted
          (loop $cmp
            (br_if $sorted (i32.ge_u (local.get $c) (local.get $ncmp)))
            (call $exchange
              (i32.add (local.get $scratch) (i32.load offset=0 (i32.add (local.get $net) (i32.shl (local.get $c) (i32.const 3)))))
              (i32.add (local.get $scratch) (i32.load offset=4 (i32.add (local.get $net) (i32.shl (local.get $c) (i32.const 3)))))
              (local.get $bytes))
            (local.set $c (i32.add (local.get $c) (i32.const 1)))
            (br $cmp)))
        ;; the kept ranks, summed and divided
        (call $reduce
          (i32.add (local.get $scratch) (i32.mul (local.get $lo) (global.get $row_bytes)))
          (i32.sub (local.get $hi) (local.get $lo))
          (i32.add (local.get $out) (i32.shl (local.get $pos) (i32.const 2)))
          (local.get $bytes)
          (local.get $div))
        ;; the inputs' block is still in cache: their distances from the result, now
        (call $distances (local.get $table) (local.get $n) (local.get $pos) (local.get $len) (local.get $out) (local.get $dist))
        (local.set $pos (i32.add (local.get $pos) (local.get $len)))
        (br $block))))

  ;; out[first .. first+count) = sum_j w_j * in_j over the wn (address, f32 weight) entries of wtable, in f32 as
  ;; weighted_sum does; and dist[j] += sum over the range of (in_j - out)^2 for the n inputs of table (which may
  ;; be wtable itself, or a superset: Multi-Krum averages the kept and measures everyone).
  ;; Block by block, like robust: each input's block is read once from memory, then again from cache for its
  ;; distance, so the outlier score needs no second pass over the inputs. Measured one thread on the loaded
  ;; 2-core VM, median of 7 interleaved runs: N = 10, P = 1M 9.0 ms against 10.9 for weighted_sum then
  ;; distances; N = 100 263 ms against 403 (weighted_sum alone 7.2 and 134). Summing in f64 instead (promote,
  ;; f64 accumulators in scratch) was no faster than the two passes.
  (func $weighted_mean (export "weighted_mean")
    (param $wtable i32) (param $wn i32) (param $table i32) (param $n i32) (param $first i32) (param $count i32)
    (param $out i32) (param $dist i32)
    (local $pos i32) (local $end i32) (local $len i32) (local $bytes i32) (local $i i32) (local $j i32)
    (local $e i32) (local $src i32) (local $w v128) (local $o i32)
    (local.set $pos (local.get $first))
    (local.set $end (i32.add (local.get $first) (local.get $count)))
    (block $done
      (loop $block
        (br_if $done (i32.ge_u (local.get $pos) (local.get $end)))
        (local.set $len (i32.sub (local.get $end) (local.get $pos)))
        (if (i32.gt_u (local.get $len) (global.get $block_floats))
          (then (local.set $len (global.get $block_floats))))
        (local.set $bytes (i32.and (i32.add (i32.shl (local.get $len) (i32.const 2)) (i32.const 63)) (i32.const -64)))
        (local.set $o (i32.add (local.get $out) (i32.shl (local.get $pos) (i32.const 2))))
        ;; -0 so that one input of weight 1 passes through unchanged
        (local.set $i (i32.const 0))
        (loop $zero
          (v128.store (i32.add (local.get $o) (local.get $i)) (v128.const f32x4 -0.0 -0.0 -0.0 -0.0))
          (local.set $i (i32.add (local.get $i) (i32.const 16)))
          (br_if $zero (i32.lt_u (local.get $i) (local.get $bytes))))
        ;; input by input (each a short sequential run), added into the output block (in L1)
        (local.set $j (i32.const 0))
        (block $inputs_done
          (loop $input
            (br_if $inputs_done (i32.ge_u (local.get $j) (local.get $wn)))
            (local.set $e (i32.add (local.get $wtable) (i32.shl (local.get $j) (i32.const 3))))
            (local.set $src (i32.add (i32.load (local.get $e)) (i32.shl (local.get $pos) (i32.const 2))))
            (local.set $w (f32x4.splat (f32.load offset=4 (local.get $e))))
            (local.set $i (i32.const 0))
            (loop $vec
              (v128.store offset=0 (i32.add (local.get $o) (local.get $i))
                (f32x4.add (v128.load offset=0 (i32.add (local.get $o) (local.get $i)))
                  (f32x4.mul (v128.load offset=0 (i32.add (local.get $src) (local.get $i))) (local.get $w))))
              (v128.store offset=16 (i32.add (local.get $o) (local.get $i))
                (f32x4.add (v128.load offset=16 (i32.add (local.get $o) (local.get $i)))
                  (f32x4.mul (v128.load offset=16 (i32.add (local.get $src) (local.get $i))) (local.get $w))))
              (local.set $i (i32.add (local.get $i) (i32.const 32)))
              (br_if $vec (i32.lt_u (local.get $i) (local.get $bytes))))
            (local.set $j (i32.add (local.get $j) (i32.const 1)))
            (br $input)))
        (call $distances (local.get $table) (local.get $n) (local.get $pos) (local.get $len) (local.get $out) (local.get $dist))
        (local.set $pos (i32.add (local.get $pos) (local.get $len)))
        (br $block))))

  ;; Compare-exchange of two scratch rows over len bytes (a positive multiple of 64): row a gets the smaller.
  ;; 64 bytes per step: four independent vector pairs (5-10% faster than two at N = 10, measured interleaved on
  ;; one thread). Each compare-exchange is two loads and two stores per vector pair, which is what bounds the
  ;; network: at N = 100 (898 comparators for the median) smaller blocks that fit L1 (64 coordinates, 25 KiB)
  ;; were no faster than these 256-coordinate ones (100 KiB, L2).
  (func $exchange (param $a i32) (param $b i32) (param $len i32)
    (local $x0 v128) (local $y0 v128) (local $x1 v128) (local $y1 v128)
    (local $x2 v128) (local $y2 v128) (local $x3 v128) (local $y3 v128) (local $end i32)
    (local.set $end (i32.add (local.get $a) (local.get $len)))
    (loop $step
      (local.set $x0 (v128.load offset=0 (local.get $a)))
      (local.set $y0 (v128.load offset=0 (local.get $b)))
      (local.set $x1 (v128.load offset=16 (local.get $a)))
      (local.set $y1 (v128.load offset=16 (local.get $b)))
      (local.set $x2 (v128.load offset=32 (local.get $a)))
      (local.set $y2 (v128.load offset=32 (local.get $b)))
      (local.set $x3 (v128.load offset=48 (local.get $a)))
      (local.set $y3 (v128.load offset=48 (local.get $b)))
      (v128.store offset=0 (local.get $a) (f32x4.pmin (local.get $x0) (local.get $y0)))
      (v128.store offset=0 (local.get $b) (f32x4.pmax (local.get $y0) (local.get $x0)))
      (v128.store offset=16 (local.get $a) (f32x4.pmin (local.get $x1) (local.get $y1)))
      (v128.store offset=16 (local.get $b) (f32x4.pmax (local.get $y1) (local.get $x1)))
      (v128.store offset=32 (local.get $a) (f32x4.pmin (local.get $x2) (local.get $y2)))
      (v128.store offset=32 (local.get $b) (f32x4.pmax (local.get $y2) (local.get $x2)))
      (v128.store offset=48 (local.get $a) (f32x4.pmin (local.get $x3) (local.get $y3)))
      (v128.store offset=48 (local.get $b) (f32x4.pmax (local.get $y3) (local.get $x3)))
      (local.set $a (i32.add (local.get $a) (i32.const 64)))
      (local.set $b (i32.add (local.get $b) (i32.const 64)))
      (br_if $step (i32.lt_u (local.get $a) (local.get $end)))))

  ;; o[0..len) = (sum of `rows` scratch rows from src, in f64, in row order) / div, rounded once to f32.
  ;; The sums start at -0 so that a single row passes through unchanged, -0 included.
  (func $reduce (param $src i32) (param $rows i32) (param $o i32) (param $len i32) (param $div f64)
    (local $i i32) (local $r i32) (local $p i32) (local $v v128) (local $s0 v128) (local $s1 v128) (local $d v128)
    (local.set $d (f64x2.splat (local.get $div)))
    (loop $step
      (local.set $s0 (v128.const f64x2 -0.0 -0.0))
      (local.set $s1 (v128.const f64x2 -0.0 -0.0))
      (local.set $p (i32.add (local.get $src) (local.get $i)))
      (local.set $r (i32.const 0))
      (block $summed
        (loop $row
          (br_if $summed (i32.ge_u (local.get $r) (local.get $rows)))
          (local.set $v (v128.load (local.get $p)))
          (local.set $s0 (f64x2.add (local.get $s0) (f64x2.promote_low_f32x4 (local.get $v))))
          (local.set $s1 (f64x2.add (local.get $s1)
            (f64x2.promote_low_f32x4 (i8x16.shuffle 8 9 10 11 12 13 14 15 0 1 2 3 4 5 6 7 (local.get $v) (local.get $v)))))
          (local.set $p (i32.add (local.get $p) (global.get $row_bytes)))
          (local.set $r (i32.add (local.get $r) (i32.const 1)))
          (br $row)))
      (v128.store (i32.add (local.get $o) (local.get $i))
        (i8x16.shuffle 0 1 2 3 4 5 6 7 16 17 18 19 20 21 22 23
          (f32x4.demote_f64x2_zero (f64x2.div (local.get $s0) (local.get $d)))
          (f32x4.demote_f64x2_zero (f64x2.div (local.get $s1) (local.get $d)))))
      (local.set $i (i32.add (local.get $i) (i32.const 16)))
      (br_if $step (i32.lt_u (local.get $i) (local.get $len)))))

  ;; dist[j] += sum over [first, first+count) of (in_j - agg)^2 for the n inputs of the table (f64 entries).
  ;; agg is the aggregate's base address (float index `first` is its element first, as for the inputs).
  ;; Chunk by chunk so that the aggregate's chunk stays in L1 while every input is compared against it.
  (func $distances (export "distances")
    (param $table i32) (param $n i32) (param $first i32) (param $count i32) (param $agg i32) (param $dist i32)
    (local $off i32) (local $total i32) (local $len i32) (local $j i32) (local $e i32)
    (local.set $off (i32.shl (local.get $first) (i32.const 2)))
    (local.set $total (i32.shl (local.get $count) (i32.const 2)))
    (block $done
      (loop $chunk
        (br_if $done (i32.ge_u (local.get $off) (i32.add (i32.shl (local.get $first) (i32.const 2)) (local.get $total))))
        (local.set $len (i32.sub (i32.add (i32.shl (local.get $first) (i32.const 2)) (local.get $total)) (local.get $off)))
        (if (i32.gt_u (local.get $len) (global.get $piece_bytes))
          (then (local.set $len (global.get $piece_bytes))))
        (local.set $j (i32.const 0))
        (block $rows_done
          (loop $row
            (br_if $rows_done (i32.ge_u (local.get $j) (local.get $n)))
            (local.set $e (i32.add (local.get $dist) (i32.shl (local.get $j) (i32.const 3))))
            (f64.store (local.get $e)
              (f64.add (f64.load (local.get $e))
                (call $sqdist_long
                  (i32.add (i32.load (i32.add (local.get $table) (i32.shl (local.get $j) (i32.const 3)))) (local.get $off))
                  (i32.add (local.get $agg) (local.get $off))
                  (local.get $len))))
            (local.set $j (i32.add (local.get $j) (i32.const 1)))
            (br $row)))
        (local.set $off (i32.add (local.get $off) (local.get $len)))
        (br $chunk))))

  ;; m[i*n + j] += sum over [first, first+count) of (in_i - in_j)^2, for every i < j (f64 entries, n x n).
  (func $pairwise (export "pairwise")
    (param $table i32) (param $n i32) (param $first i32) (param $count i32) (param $m i32)
    (local $off i32) (local $end i32) (local $len i32) (local $i i32) (local $j i32) (local $a i32) (local $e i32)
    (local.set $off (i32.shl (local.get $first) (i32.const 2)))
    (local.set $end (i32.add (local.get $off) (i32.shl (local.get $count) (i32.const 2))))
    (block $done
      (loop $chunk
        (br_if $done (i32.ge_u (local.get $off) (local.get $end)))
        (local.set $len (i32.sub (local.get $end) (local.get $off)))
        (if (i32.gt_u (local.get $len) (global.get $chunk_bytes))
          (then (local.set $len (global.get $chunk_bytes))))
        (local.set $i (i32.const 0))
        (block $rows_done
          (loop $row
            (br_if $rows_done (i32.ge_u (local.get $i) (local.get $n)))
            (local.set $a (i32.add (i32.load (i32.add (local.get $table) (i32.shl (local.get $i) (i32.const 3)))) (local.get $off)))
            (local.set $j (i32.add (local.get $i) (i32.const 1)))
            (block $cols_done
              (loop $col
                (br_if $cols_done (i32.ge_u (local.get $j) (local.get $n)))
                (local.set $e (i32.add (local.get $m)
                  (i32.shl (i32.add (i32.mul (local.get $i) (local.get $n)) (local.get $j)) (i32.const 3))))
                (f64.store (local.get $e)
                  (f64.add (f64.load (local.get $e))
                    (call $sqdist
                      (local.get $a)
                      (i32.add (i32.load (i32.add (local.get $table) (i32.shl (local.get $j) (i32.const 3)))) (local.get $off))
                      (local.get $len))))
                (local.set $j (i32.add (local.get $j) (i32.const 1)))
                (br $col)))
            (local.set $i (i32.add (local.get $i) (i32.const 1)))
            (br $row)))
        (local.set $off (i32.add (local.get $off) (local.get $len)))
        (br $chunk))))

  ;; $sqdist over any length: f32 sums of at most $chunk_bytes each, added in f64.
  (func $sqdist_long (param $a i32) (param $b i32) (param $len i32) (result f64)
    (local $p i32) (local $step i32) (local $total f64)
    (block $done
      (loop $chunk
        (br_if $done (i32.ge_u (local.get $p) (local.get $len)))
        (local.set $step (i32.sub (local.get $len) (local.get $p)))
        (if (i32.gt_u (local.get $step) (global.get $chunk_bytes))
          (then (local.set $step (global.get $chunk_bytes))))
        (local.set $total (f64.add (local.get $total)
          (call $sqdist (i32.add (local.get $a) (local.get $p)) (i32.add (local.get $b) (local.get $p)) (local.get $step))))
        (local.set $p (i32.add (local.get $p) (local.get $step)))
        (br $chunk)))
    (local.get $total))

  ;; sum of (a[k] - b[k])^2 over len bytes (a multiple of 4), in f32x4 with four accumulators, returned in f64.
  ;; The last partial vector is masked: the lanes past len are padding and must not count.
  (func $sqdist (param $a i32) (param $b i32) (param $len i32) (result f64)
    (local $p i32) (local $whole i32) (local $d v128) (local $s0 v128) (local $s1 v128) (local $s2 v128) (local $s3 v128)
    (local.set $whole (i32.and (local.get $len) (i32.const -16)))
    (block $quads_done
      (loop $quad
        (br_if $quads_done (i32.gt_u (i32.add (local.get $p) (i32.const 64)) (local.get $whole)))
        (local.set $d (f32x4.sub (v128.load offset=0 (i32.add (local.get $a) (local.get $p))) (v128.load offset=0 (i32.add (local.get $b) (local.get $p)))))
        (local.set $s0 (f32x4.add (local.get $s0) (f32x4.mul (local.get $d) (local.get $d))))
        (local.set $d (f32x4.sub (v128.load offset=16 (i32.add (local.get $a) (local.get $p))) (v128.load offset=16 (i32.add (local.get $b) (local.get $p)))))
        (local.set $s1 (f32x4.add (local.get $s1) (f32x4.mul (local.get $d) (local.get $d))))
        (local.set $d (f32x4.sub (v128.load offset=32 (i32.add (local.get $a) (local.get $p))) (v128.load offset=32 (i32.add (local.get $b) (local.get $p)))))
        (local.set $s2 (f32x4.add (local.get $s2) (f32x4.mul (local.get $d) (local.get $d))))
        (local.set $d (f32x4.sub (v128.load offset=48 (i32.add (local.get $a) (local.get $p))) (v128.load offset=48 (i32.add (local.get $b) (local.get $p)))))
        (local.set $s3 (f32x4.add (local.get $s3) (f32x4.mul (local.get $d) (local.get $d))))
        (local.set $p (i32.add (local.get $p) (i32.const 64)))
        (br $quad)))
    (block $singles_done
      (loop $single
        (br_if $singles_done (i32.ge_u (local.get $p) (local.get $whole)))
        (local.set $d (f32x4.sub (v128.load (i32.add (local.get $a) (local.get $p))) (v128.load (i32.add (local.get $b) (local.get $p)))))
        (local.set $s0 (f32x4.add (local.get $s0) (f32x4.mul (local.get $d) (local.get $d))))
        (local.set $p (i32.add (local.get $p) (i32.const 16)))
        (br $single)))
    (if (i32.lt_u (local.get $whole) (local.get $len))
      (then
        ;; lanes 0 .. (len - whole) / 4 - 1 are values; the rest of this vector is padding
        (local.set $d
          (v128.and
            (f32x4.sub (v128.load (i32.add (local.get $a) (local.get $p))) (v128.load (i32.add (local.get $b) (local.get $p))))
            (i32x4.lt_s (v128.const i32x4 0 1 2 3)
              (i32x4.splat (i32.shr_u (i32.sub (local.get $len) (local.get $whole)) (i32.const 2))))))
        (local.set $s1 (f32x4.add (local.get $s1) (f32x4.mul (local.get $d) (local.get $d))))))
    (local.set $s0 (f32x4.add (f32x4.add (local.get $s0) (local.get $s1)) (f32x4.add (local.get $s2) (local.get $s3))))
    (f64.add
      (f64.add (f64.promote_f32 (f32x4.extract_lane 0 (local.get $s0))) (f64.promote_f32 (f32x4.extract_lane 1 (local.get $s0))))
      (f64.add (f64.promote_f32 (f32x4.extract_lane 2 (local.get $s0))) (f64.promote_f32 (f32x4.extract_lane 3 (local.get $s0)))))))
