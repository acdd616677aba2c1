;; One read pass over a received update, in the shared memory it was decoded into: the payload checksum's four
;; lanes (the same lanes as checksum32 in src/server/core/frame-codec.ts, so the results are identical), the
;; count of NaN/Inf values, and the sum of squares (for the update-norm check), in f64.
;;
;; Assembled offline by scripts/build-kernels.mjs (npm `wabt`) into inspect.wasm next to this file;
;; tests/unit/aggregation.test.ts fails when the committed binary no longer matches this text.
;;
;; The three checks used to be three JavaScript passes (checksum 7 ms, non-finite scan 19 ms, norm 19 ms for a
;; 10M-parameter update on the dev box); fused and vectorised, they are one pass at memory speed.
;;
;; inspect(p, n, out): p is the byte address of n float32 (any alignment), out a 32-byte result area:
;;   out+0..15  i32 x4  hash lanes a, b, c, d (words i, i+1, i+2, i+3 of each group of four; tail words go to a)
;;   out+16     i32     number of non-finite values
;;   out+24     f64     sum of squares
(module
  (memory (import "env" "memory") 1 65536 shared)

  (func $inspect (export "inspect") (param $p i32) (param $n i32) (param $out i32)
    (local $end i32) (local $tail_end i32)
    (local $v v128) (local $h v128) (local $bad v128) (local $sq_lo v128) (local $sq_hi v128) (local $x v128)
    (local $a i32) (local $w i32) (local $bad_tail i32) (local $sq_tail f64) (local $f f64)
    (local.set $h (v128.const i32x4 0x811c9dc5 0x01000193 0x9e3779b9 0x85ebca6b))
    (local.set $end (i32.add (local.get $p) (i32.shl (i32.and (local.get $n) (i32.const -4)) (i32.const 2))))
    (local.set $tail_end (i32.add (local.get $p) (i32.shl (local.get $n) (i32.const 2))))
    (block $done
      (loop $next
        (br_if $done (i32.ge_u (local.get $p) (local.get $end)))
        (local.set $v (v128.load align=4 (local.get $p)))
        ;; hash lanes: h = (h ^ v) * FNV prime, lane by lane
        (local.set $h (i32x4.mul (v128.xor (local.get $h) (local.get $v)) (v128.const i32x4 0x01000193 0x01000193 0x01000193 0x01000193)))
        ;; exponent all ones means NaN or Inf; eq gives -1 per such lane, so subtracting counts them
        (local.set $bad
          (i32x4.sub (local.get $bad)
            (i32x4.eq
              (v128.and (local.get $v) (v128.const i32x4 0x7f800000 0x7f800000 0x7f800000 0x7f800000))
              (v128.const i32x4 0x7f800000 0x7f800000 0x7f800000 0x7f800000))))
        ;; squares in f64 (a float32 sum of squares overflows on exactly the updates this check is for)
        (local.set $x (f64x2.promote_low_f32x4 (local.get $v)))
        (local.set $sq_lo (f64x2.add (local.get $sq_lo) (f64x2.mul (local.get $x) (local.get $x))))
        (local.set $x (f64x2.promote_low_f32x4
          (i8x16.shuffle 8 9 10 11 12 13 14 15 0 1 2 3 4 5 6 7 (local.get $v) (local.get $v))))
        (local.set $sq_hi (f64x2.add (local.get $sq_hi) (f64x2.mul (local.get $x) (local.get $x))))
        (local.set $p (i32.add (local.get $p) (i32.const 16)))
        (br $next)))
    ;; the last n % 4 words all go to lane a, as in checksum32
    (local.set $a (i32x4.extract_lane 0 (local.get $h)))
    (block $tail_done
      (loop $tail
        (br_if $tail_done (i32.ge_u (local.get $p) (local.get $tail_end)))
        (local.set $w (i32.load align=4 (local.get $p)))
        (local.set $a (i32.mul (i32.xor (local.get $a) (local.get $w)) (i32.const 0x01000193)))
        (if (i32.eq (i32.and (local.get $w) (i32.const 0x7f800000)) (i32.const 0x7f800000))
          (then (local.set $bad_tail (i32.add (local.get $bad_tail) (i32.const 1)))))
        (local.set $f (f64.promote_f32 (f32.load align=4 (local.get $p))))
        (local.set $sq_tail (f64.add (local.get $sq_tail) (f64.mul (local.get $f) (local.get $f))))
        (local.set $p (i32.add (local.get $p) (i32.const 4)))
        (br $tail)))
    (local.set $h (i32x4.replace_lane 0 (local.get $h) (local.get $a)))
    (v128.store align=4 (local.get $out) (local.get $h))
    (i32.store offset=16 align=4 (local.get $out)
      (i32.add (local.get $bad_tail)
        (i32.add
          (i32.add (i32x4.extract_lane 0 (local.get $bad)) (i32x4.extract_lane 1 (local.get $bad)))
          (i32.add (i32x4.extract_lane 2 (local.get $bad)) (i32x4.extract_lane 3 (local.get $bad))))))
    (local.set $sq_lo (f64x2.add (local.get $sq_lo) (local.get $sq_hi)))
    (f64.store offset=24 align=8 (local.get $out)
      (f64.add (local.get $sq_tail)
        (f64.add (f64x2.extract_lane 0 (local.get $sq_lo)) (f64x2.extract_lane 1 (local.get $sq_lo)))))))
