;; The outer optimizer's step over flat float32 vectors, f32x4: Adam, and SGD with momentum (PyTorch's formula,
;; with or without Nesterov). One fused pass per step: each of p, g and the state is read once and written once.
;;
;; Assembled offline by scripts/build-kernels.mjs (npm `wabt`) into optimizer.wasm next to this file;
;; tests/unit/aggregation.test.ts fails when the committed binary no longer matches this text.
;; The reference is src/server/core/optimizer.ts (float64 arithmetic, float32 storage); this kernel computes in
;; float32, within 1e-6 relative of it (tests/unit/optimizer-kernel.test.ts).
;; Addresses are bytes, any 4-byte alignment; n is a count of floats.
(module
  (memory (import "env" "memory") 1 65536)

  ;; m = b1 m + c1 g;  v = b2 v + c2 g^2;  p -= step * m / (sqrt(v) + eps), with c1 = 1 - b1 and c2 = 1 - b2 computed
  ;; by the caller in float64 (in float32, 1 - 0.999 is 0.00099998713: 1.3e-5 off, which v then carries).
  ;; step and eps carry the bias correction (as in core/optimizer.ts: step = lr sqrt(1 - b2^t) / (1 - b1^t)).
  (func $adam (export "adam")
    (param $p i32) (param $g i32) (param $m i32) (param $v i32) (param $n i32)
    (param $step f32) (param $eps f32) (param $b1 f32) (param $b2 f32) (param $c1 f32) (param $c2 f32)
    (local $i i32) (local $n4 i32) (local $at i32)
    (local $vb1 v128) (local $vc1 v128) (local $vb2 v128) (local $vc2 v128) (local $vstep v128) (local $veps v128)
    (local $gv v128) (local $mv v128) (local $vv v128)
    (local $gs f32) (local $ms f32) (local $vs f32)
    (local.set $vb1 (f32x4.splat (local.get $b1)))
    (local.set $vc1 (f32x4.splat (local.get $c1)))
    (local.set $vb2 (f32x4.splat (local.get $b2)))
    (local.set $vc2 (f32x4.splat (local.get $c2)))
    (local.set $vstep (f32x4.splat (local.get $step)))
    (local.set $veps (f32x4.splat (local.get $eps)))
    (local.set $n4 (i32.shl (i32.and (local.get $n) (i32.const -4)) (i32.const 2)))
    (block $done
      (loop $next
        (br_if $done (i32.ge_u (local.get $i) (local.get $n4)))
        (local.set $gv (v128.load align=4 (i32.add (local.get $g) (local.get $i))))
        (local.set $mv (f32x4.add
          (f32x4.mul (local.get $vb1) (v128.load align=4 (i32.add (local.get $m) (local.get $i))))
          (f32x4.mul (local.get $vc1) (local.get $gv))))
        (local.set $vv (f32x4.add
          (f32x4.mul (local.get $vb2) (v128.load align=4 (i32.add (local.get $v) (local.get $i))))
          (f32x4.mul (local.get $vc2) (f32x4.mul (local.get $gv) (local.get $gv)))))
        (v128.store align=4 (i32.add (local.get $m) (local.get $i)) (local.get $mv))
        (v128.store align=4 (i32.add (local.get $v) (local.get $i)) (local.get $vv))
        (local.set $at (i32.add (local.get $p) (local.get $i)))
        (v128.store align=4 (local.get $at)
          (f32x4.sub (v128.load align=4 (local.get $at))
            (f32x4.div (f32x4.mul (local.get $vstep) (local.get $mv))
              (f32x4.add (f32x4.sqrt (local.get $vv)) (local.get $veps)))))
        (local.set $i (i32.add (local.get $i) (i32.const 16)))
        (br $next)))
    (local.set $n4 (i32.shl (local.get $n) (i32.const 2)))
    (block $tail_done
      (loop $tail
        (br_if $tail_done (i32.ge_u (local.get $i) (local.get $n4)))
        (local.set $gs (f32.load align=4 (i32.add (local.get $g) (local.get $i))))
        (local.set $ms (f32.add
          (f32.mul (local.get $b1) (f32.load align=4 (i32.add (local.get $m) (local.get $i))))
          (f32.mul (local.get $c1) (local.get $gs))))
        (local.set $vs (f32.add
          (f32.mul (local.get $b2) (f32.load align=4 (i32.add (local.get $v) (local.get $i))))
          (f32.mul (local.get $c2) (f32.mul (local.get $gs) (local.get $gs)))))
        (f32.store align=4 (i32.add (local.get $m) (local.get $i)) (local.get $ms))
        (f32.store align=4 (i32.add (local.get $v) (local.get $i)) (local.get $vs))
        (local.set $at (i32.add (local.get $p) (local.get $i)))
        (f32.store align=4 (local.get $at)
          (f32.sub (f32.load align=4 (local.get $at))
            (f32.div (f32.mul (local.get $step) (local.get $ms)) (f32.add (f32.sqrt (local.get $vs)) (local.get $eps)))))
        (local.set $i (i32.add (local.get $i) (i32.const 4)))
        (br $tail))))

  ;; PyTorch's SGD (dampening 0): b = mu b + g;  d = nesterov ? g + mu b : b;  p -= lr d
  (func $sgd (export "sgd")
    (param $p i32) (param $g i32) (param $b i32) (param $n i32) (param $lr f32) (param $mu f32) (param $nesterov i32)
    (local $i i32) (local $n4 i32) (local $at i32) (local $vmu v128) (local $vlr v128) (local $gv v128) (local $bv v128) (local $d v128)
    (local $gs f32) (local $bs f32) (local $ds f32)
    (local.set $vmu (f32x4.splat (local.get $mu)))
    (local.set $vlr (f32x4.splat (local.get $lr)))
    (local.set $n4 (i32.shl (i32.and (local.get $n) (i32.const -4)) (i32.const 2)))
    (block $done
      (loop $next
        (br_if $done (i32.ge_u (local.get $i) (local.get $n4)))
        (local.set $gv (v128.load align=4 (i32.add (local.get $g) (local.get $i))))
        (local.set $bv (f32x4.add (f32x4.mul (local.get $vmu) (v128.load align=4 (i32.add (local.get $b) (local.get $i)))) (local.get $gv)))
        (v128.store align=4 (i32.add (local.get $b) (local.get $i)) (local.get $bv))
        (local.set $d
          (if (result v128) (local.get $nesterov)
            (then (f32x4.add (local.get $gv) (f32x4.mul (local.get $vmu) (local.get $bv))))
            (else (local.get $bv))))
        (local.set $at (i32.add (local.get $p) (local.get $i)))
        (v128.store align=4 (local.get $at) (f32x4.sub (v128.load align=4 (local.get $at)) (f32x4.mul (local.get $vlr) (local.get $d))))
        (local.set $i (i32.add (local.get $i) (i32.const 16)))
        (br $next)))
    (local.set $n4 (i32.shl (local.get $n) (i32.const 2)))
    (block $tail_done
      (loop $tail
        (br_if $tail_done (i32.ge_u (local.get $i) (local.get $n4)))
        (local.set $gs (f32.load align=4 (i32.add (local.get $g) (local.get $i))))
        (local.set $bs (f32.add (f32.mul (local.get $mu) (f32.load align=4 (i32.add (local.get $b) (local.get $i)))) (local.get $gs)))
        (f32.store align=4 (i32.add (local.get $b) (local.get $i)) (local.get $bs))
        (local.set $ds (select (f32.add (local.get $gs) (f32.mul (local.get $mu) (local.get $bs))) (local.get $bs) (local.get $nesterov)))
        (local.set $at (i32.add (local.get $p) (local.get $i)))
        (f32.store align=4 (local.get $at) (f32.sub (f32.load align=4 (local.get $at)) (f32.mul (local.get $lr) (local.get $ds))))
        (local.set $i (i32.add (local.get $i) (i32.const 4)))
        (br $tail)))))
