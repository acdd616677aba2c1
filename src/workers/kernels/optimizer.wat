;; The outer optimizer's step over flat float32 vectors: Adam, and SGD with momentum (PyTorch's formula, with or
;; without Nesterov). One fused pass per step: each of p, g and the state is read once and written once.
;;
;; Assembled offline by scripts/build-kernels.mjs (npm `wabt`) into optimizer.wasm next to this file;
;; tests/unit/aggregation.test.ts fails when the committed binary no longer matches this text.
;;
;; Bit for bit the reference, src/server/core/optimizer.ts: that one reads float32, computes in float64 (JavaScript
;; numbers) and rounds to float32 only when it stores, and so do these kernels (two f64x2 halves, four floats
;; per iteration, every operation in the reference's order). The live model may therefore step here while crash
;; recovery replays the journal through the reference, and the two models agree exactly
;; (tests/unit/optimizer-kernel.test.ts). The float32 form was faster (0.6 against 1.5 ms at 1M parameters with
;; warm caches; the float64 divisions and square roots bound this one) and 1e-6 off, which is not exact.
;; Addresses are bytes, any 4-byte alignment; n is a count of floats.
;;
;; Both steps read the parameters and state at their addresses and write the new values $d bytes further on: $d = 0
;; steps in place; another $d writes a second bank, so the model store can compute the next model while the round's
;; commit is still being made durable and publish it by switching banks (the old model untouched until then).
(module
  (memory (import "env" "memory") 1 65536 shared)

  ;; m = b1 m + c1 g;  v = b2 v + (c2 g) g;  p -= (step m) / (sqrt(v) + eps), with c1 = 1 - b1, c2 = 1 - b2, step
  ;; and eps (which carry the bias correction) computed by the caller in float64 exactly as the reference does.
  ;; m and v are stored as float32, but the update of p uses their float64 values, as the reference does.
  ;; Four floats per iteration as two f64x2 halves, so the new parameters also feed checksum32's four lanes
  ;; (word i to lane i % 4, the last n % 4 to lane 0), written to $ck for the caller to fold: the model frame's
  ;; checksum comes with the step, the multiply chains hidden behind the divisions.
  (func $adam (export "adam")
    (param $p i32) (param $g i32) (param $m i32) (param $v i32) (param $n i32)
    (param $step f64) (param $eps f64) (param $b1 f64) (param $b2 f64) (param $c1 f64) (param $c2 f64) (param $ck i32) (param $d i32)
    (local $i i32) (local $n4 i32) (local $at i32)
    (local $vb1 v128) (local $vc1 v128) (local $vb2 v128) (local $vc2 v128) (local $vstep v128) (local $veps v128)
    (local $g0 v128) (local $m0 v128) (local $v0 v128) (local $g1 v128) (local $m1 v128) (local $v1 v128) (local $pw v128)
    (local $h v128) (local $a i32)
    (local $gs f64) (local $ms f64) (local $vs f64) (local $ps f32)
    (local.set $vb1 (f64x2.splat (local.get $b1)))
    (local.set $vc1 (f64x2.splat (local.get $c1)))
    (local.set $vb2 (f64x2.splat (local.get $b2)))
    (local.set $vc2 (f64x2.splat (local.get $c2)))
    (local.set $vstep (f64x2.splat (local.get $step)))
    (local.set $veps (f64x2.splat (local.get $eps)))
    (local.set $h (v128.const i32x4 0x811c9dc5 0x01000193 0x9e3779b9 0x85ebca6b))
    (local.set $n4 (i32.shl (i32.and (local.get $n) (i32.const -4)) (i32.const 2)))
    (block $done
      (loop $next
        (br_if $done (i32.ge_u (local.get $i) (local.get $n4)))
        (local.set $g0 (f64x2.promote_low_f32x4 (v128.load64_zero offset=0 align=4 (i32.add (local.get $g) (local.get $i)))))
        (local.set $m0 (f64x2.add
          (f64x2.mul (local.get $vb1) (f64x2.promote_low_f32x4 (v128.load64_zero offset=0 align=4 (i32.add (local.get $m) (local.get $i)))))
          (f64x2.mul (local.get $vc1) (local.get $g0))))
        (local.set $v0 (f64x2.add
          (f64x2.mul (local.get $vb2) (f64x2.promote_low_f32x4 (v128.load64_zero offset=0 align=4 (i32.add (local.get $v) (local.get $i)))))
          (f64x2.mul (f64x2.mul (local.get $vc2) (local.get $g0)) (local.get $g0))))
        (local.set $g1 (f64x2.promote_low_f32x4 (v128.load64_zero offset=8 align=4 (i32.add (local.get $g) (local.get $i)))))
        (local.set $m1 (f64x2.add
          (f64x2.mul (local.get $vb1) (f64x2.promote_low_f32x4 (v128.load64_zero offset=8 align=4 (i32.add (local.get $m) (local.get $i)))))
          (f64x2.mul (local.get $vc1) (local.get $g1))))
        (local.set $v1 (f64x2.add
          (f64x2.mul (local.get $vb2) (f64x2.promote_low_f32x4 (v128.load64_zero offset=8 align=4 (i32.add (local.get $v) (local.get $i)))))
          (f64x2.mul (f64x2.mul (local.get $vc2) (local.get $g1)) (local.get $g1))))
        (v128.store align=4 (i32.add (i32.add (local.get $m) (local.get $d)) (local.get $i))
          (i8x16.shuffle 0 1 2 3 4 5 6 7 16 17 18 19 20 21 22 23 (f32x4.demote_f64x2_zero (local.get $m0)) (f32x4.demote_f64x2_zero (local.get $m1))))
        (v128.store align=4 (i32.add (i32.add (local.get $v) (local.get $d)) (local.get $i))
          (i8x16.shuffle 0 1 2 3 4 5 6 7 16 17 18 19 20 21 22 23 (f32x4.demote_f64x2_zero (local.get $v0)) (f32x4.demote_f64x2_zero (local.get $v1))))
        (local.set $at (i32.add (local.get $p) (local.get $i)))
        (local.set $pw
          (i8x16.shuffle 0 1 2 3 4 5 6 7 16 17 18 19 20 21 22 23
            (f32x4.demote_f64x2_zero
              (f64x2.sub (f64x2.promote_low_f32x4 (v128.load64_zero align=4 (local.get $at)))
                (f64x2.div (f64x2.mul (local.get $vstep) (local.get $m0)) (f64x2.add (f64x2.sqrt (local.get $v0)) (local.get $veps)))))
            (f32x4.demote_f64x2_zero
              (f64x2.sub (f64x2.promote_low_f32x4 (v128.load64_zero offset=8 align=4 (local.get $at)))
                (f64x2.div (f64x2.mul (local.get $vstep) (local.get $m1)) (f64x2.add (f64x2.sqrt (local.get $v1)) (local.get $veps)))))))
        (v128.store align=4 (i32.add (local.get $at) (local.get $d)) (local.get $pw))
        (local.set $h (i32x4.mul (v128.xor (local.get $h) (local.get $pw)) (v128.const i32x4 0x01000193 0x01000193 0x01000193 0x01000193)))
        (local.set $i (i32.add (local.get $i) (i32.const 16)))
        (br $next)))
    ;; The last n % 4 floats one at a time, their words into lane 0.
    (local.set $a (i32x4.extract_lane 0 (local.get $h)))
    (local.set $n4 (i32.shl (local.get $n) (i32.const 2)))
    (block $tail_done
      (loop $tail
        (br_if $tail_done (i32.ge_u (local.get $i) (local.get $n4)))
        (local.set $gs (f64.promote_f32 (f32.load align=4 (i32.add (local.get $g) (local.get $i)))))
        (local.set $ms (f64.add
          (f64.mul (local.get $b1) (f64.promote_f32 (f32.load align=4 (i32.add (local.get $m) (local.get $i)))))
          (f64.mul (local.get $c1) (local.get $gs))))
        (local.set $vs (f64.add
          (f64.mul (local.get $b2) (f64.promote_f32 (f32.load align=4 (i32.add (local.get $v) (local.get $i)))))
          (f64.mul (f64.mul (local.get $c2) (local.get $gs)) (local.get $gs))))
        (f32.store align=4 (i32.add (i32.add (local.get $m) (local.get $d)) (local.get $i)) (f32.demote_f64 (local.get $ms)))
        (f32.store align=4 (i32.add (i32.add (local.get $v) (local.get $d)) (local.get $i)) (f32.demote_f64 (local.get $vs)))
        (local.set $at (i32.add (local.get $p) (local.get $i)))
        (local.set $ps
          (f32.demote_f64
            (f64.sub (f64.promote_f32 (f32.load align=4 (local.get $at)))
              (f64.div (f64.mul (local.get $step) (local.get $ms)) (f64.add (f64.sqrt (local.get $vs)) (local.get $eps))))))
        (f32.store align=4 (i32.add (local.get $at) (local.get $d)) (local.get $ps))
        (local.set $a (i32.mul (i32.xor (local.get $a) (i32.reinterpret_f32 (local.get $ps))) (i32.const 0x01000193)))
        (local.set $i (i32.add (local.get $i) (i32.const 4)))
        (br $tail)))
    (v128.store align=4 (local.get $ck) (i32x4.replace_lane 0 (local.get $h) (local.get $a))))

  ;; PyTorch's SGD (dampening 0): b = mu b + g;  d = nesterov ? g + mu b : b;  p -= lr d. b is stored as float32;
  ;; d uses its float64 value, as the reference does. Four floats per iteration and the checksum lanes to $ck, as adam.
  (func $sgd (export "sgd")
    (param $p i32) (param $g i32) (param $b i32) (param $n i32) (param $lr f64) (param $mu f64) (param $nesterov i32) (param $ck i32) (param $d i32)
    (local $i i32) (local $n4 i32) (local $at i32) (local $vmu v128) (local $vlr v128)
    (local $g0 v128) (local $b0 v128) (local $g1 v128) (local $b1 v128) (local $pw v128) (local $h v128) (local $a i32)
    (local $gs f64) (local $bs f64) (local $ps f32)
    (local.set $vmu (f64x2.splat (local.get $mu)))
    (local.set $vlr (f64x2.splat (local.get $lr)))
    (local.set $h (v128.const i32x4 0x811c9dc5 0x01000193 0x9e3779b9 0x85ebca6b))
    (local.set $n4 (i32.shl (i32.and (local.get $n) (i32.const -4)) (i32.const 2)))
    (block $done
      (loop $next
        (br_if $done (i32.ge_u (local.get $i) (local.get $n4)))
        (local.set $g0 (f64x2.promote_low_f32x4 (v128.load64_zero offset=0 align=4 (i32.add (local.get $g) (local.get $i)))))
        (local.set $b0 (f64x2.add
          (f64x2.mul (local.get $vmu) (f64x2.promote_low_f32x4 (v128.load64_zero offset=0 align=4 (i32.add (local.get $b) (local.get $i)))))
          (local.get $g0)))
        (local.set $g1 (f64x2.promote_low_f32x4 (v128.load64_zero offset=8 align=4 (i32.add (local.get $g) (local.get $i)))))
        (local.set $b1 (f64x2.add
          (f64x2.mul (local.get $vmu) (f64x2.promote_low_f32x4 (v128.load64_zero offset=8 align=4 (i32.add (local.get $b) (local.get $i)))))
          (local.get $g1)))
        (v128.store align=4 (i32.add (i32.add (local.get $b) (local.get $d)) (local.get $i))
          (i8x16.shuffle 0 1 2 3 4 5 6 7 16 17 18 19 20 21 22 23 (f32x4.demote_f64x2_zero (local.get $b0)) (f32x4.demote_f64x2_zero (local.get $b1))))
        (local.set $at (i32.add (local.get $p) (local.get $i)))
        (local.set $pw
          (i8x16.shuffle 0 1 2 3 4 5 6 7 16 17 18 19 20 21 22 23
            (f32x4.demote_f64x2_zero
              (f64x2.sub (f64x2.promote_low_f32x4 (v128.load64_zero offset=0 align=4 (local.get $at)))
                (f64x2.mul (local.get $vlr)
                  (if (result v128) (local.get $nesterov)
                    (then (f64x2.add (local.get $g0) (f64x2.mul (local.get $vmu) (local.get $b0))))
                    (else (local.get $b0))))))
            (f32x4.demote_f64x2_zero
              (f64x2.sub (f64x2.promote_low_f32x4 (v128.load64_zero offset=8 align=4 (local.get $at)))
                (f64x2.mul (local.get $vlr)
                  (if (result v128) (local.get $nesterov)
                    (then (f64x2.add (local.get $g1) (f64x2.mul (local.get $vmu) (local.get $b1))))
                    (else (local.get $b1))))))))
        (v128.store align=4 (i32.add (local.get $at) (local.get $d)) (local.get $pw))
        (local.set $h (i32x4.mul (v128.xor (local.get $h) (local.get $pw)) (v128.const i32x4 0x01000193 0x01000193 0x01000193 0x01000193)))
        (local.set $i (i32.add (local.get $i) (i32.const 16)))
        (br $next)))
    (local.set $a (i32x4.extract_lane 0 (local.get $h)))
    (local.set $n4 (i32.shl (local.get $n) (i32.const 2)))
    (block $tail_done
      (loop $tail
        (br_if $tail_done (i32.ge_u (local.get $i) (local.get $n4)))
        (local.set $gs (f64.promote_f32 (f32.load align=4 (i32.add (local.get $g) (local.get $i)))))
        (local.set $bs (f64.add (f64.mul (local.get $mu) (f64.promote_f32 (f32.load align=4 (i32.add (local.get $b) (local.get $i))))) (local.get $gs)))
        (f32.store align=4 (i32.add (i32.add (local.get $b) (local.get $d)) (local.get $i)) (f32.demote_f64 (local.get $bs)))
        (local.set $at (i32.add (local.get $p) (local.get $i)))
        (local.set $ps
          (f32.demote_f64
            (f64.sub (f64.promote_f32 (f32.load align=4 (local.get $at)))
              (f64.mul (local.get $lr)
                (select (f64.add (local.get $gs) (f64.mul (local.get $mu) (local.get $bs))) (local.get $bs) (local.get $nesterov))))))
        (f32.store align=4 (i32.add (local.get $at) (local.get $d)) (local.get $ps))
        (local.set $a (i32.mul (i32.xor (local.get $a) (i32.reinterpret_f32 (local.get $ps))) (i32.const 0x01000193)))
        (local.set $i (i32.add (local.get $i) (i32.const 4)))
        (br $tail)))
    (v128.store align=4 (local.get $ck) (i32x4.replace_lane 0 (local.get $h) (local.get $a))))

  ;; checksum32 of protocol/frame.ts over n words at $p (word i to lane i % 4, the last n % 4 words to lane 0, FNV
  ;; multiply-xor), the four lanes written to $out for the caller to fold (foldChecksum): the model frame's checksum
  ;; read straight from the resident parameters. Scalar on purpose: each lane is one serial chain of xor and
  ;; multiply, and i32x4.mul's latency (about 10 cycles) made the one-vector form 2x slower than four scalar chains.
  (func $checksum (export "checksum") (param $p i32) (param $n i32) (param $out i32)
    (local $i i32) (local $end i32) (local $a i32) (local $b i32) (local $c i32) (local $d i32)
    (local.set $a (i32.const 0x811c9dc5))
    (local.set $b (i32.const 0x01000193))
    (local.set $c (i32.const 0x9e3779b9))
    (local.set $d (i32.const 0x85ebca6b))
    (local.set $end (i32.add (local.get $p) (i32.shl (i32.and (local.get $n) (i32.const -8)) (i32.const 2))))
    (local.set $i (local.get $p))
    (block $done
      (loop $next
        (br_if $done (i32.ge_u (local.get $i) (local.get $end)))
        (local.set $a (i32.mul (i32.xor (local.get $a) (i32.load align=4 (local.get $i))) (i32.const 0x01000193)))
        (local.set $b (i32.mul (i32.xor (local.get $b) (i32.load offset=4 align=4 (local.get $i))) (i32.const 0x01000193)))
        (local.set $c (i32.mul (i32.xor (local.get $c) (i32.load offset=8 align=4 (local.get $i))) (i32.const 0x01000193)))
        (local.set $d (i32.mul (i32.xor (local.get $d) (i32.load offset=12 align=4 (local.get $i))) (i32.const 0x01000193)))
        (local.set $a (i32.mul (i32.xor (local.get $a) (i32.load offset=16 align=4 (local.get $i))) (i32.const 0x01000193)))
        (local.set $b (i32.mul (i32.xor (local.get $b) (i32.load offset=20 align=4 (local.get $i))) (i32.const 0x01000193)))
        (local.set $c (i32.mul (i32.xor (local.get $c) (i32.load offset=24 align=4 (local.get $i))) (i32.const 0x01000193)))
        (local.set $d (i32.mul (i32.xor (local.get $d) (i32.load offset=28 align=4 (local.get $i))) (i32.const 0x01000193)))
        (local.set $i (i32.add (local.get $i) (i32.const 32)))
        (br $next)))
    ;; Four more words when n % 8 >= 4, then the last n % 4 into lane a.
    (local.set $end (i32.add (local.get $p) (i32.shl (local.get $n) (i32.const 2))))
    (if (i32.ge_u (i32.sub (local.get $end) (local.get $i)) (i32.const 16))
      (then
        (local.set $a (i32.mul (i32.xor (local.get $a) (i32.load align=4 (local.get $i))) (i32.const 0x01000193)))
        (local.set $b (i32.mul (i32.xor (local.get $b) (i32.load offset=4 align=4 (local.get $i))) (i32.const 0x01000193)))
        (local.set $c (i32.mul (i32.xor (local.get $c) (i32.load offset=8 align=4 (local.get $i))) (i32.const 0x01000193)))
        (local.set $d (i32.mul (i32.xor (local.get $d) (i32.load offset=12 align=4 (local.get $i))) (i32.const 0x01000193)))
        (local.set $i (i32.add (local.get $i) (i32.const 16)))))
    (block $tail_done
      (loop $tail
        (br_if $tail_done (i32.ge_u (local.get $i) (local.get $end)))
        (local.set $a (i32.mul (i32.xor (local.get $a) (i32.load align=4 (local.get $i))) (i32.const 0x01000193)))
        (local.set $i (i32.add (local.get $i) (i32.const 4)))
        (br $tail)))
    (i32.store align=4 (local.get $out) (local.get $a))
    (i32.store offset=4 align=4 (local.get $out) (local.get $b))
    (i32.store offset=8 align=4 (local.get $out) (local.get $c))
    (i32.store offset=12 align=4 (local.get $out) (local.get $d))))
