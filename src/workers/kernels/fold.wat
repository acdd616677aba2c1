;; The ingest fast path for mean-type rules: one pass over a received update's bytes that checks it AND adds it
;; into the round's running sum, so the bytes are read once, while they are still in cache.
;;
;; Assembled offline by scripts/build-kernels.mjs (npm `wabt`) into fold.wasm next to this file;
;; tests/unit/aggregation.test.ts fails when the committed binary no longer matches this text.
;;
;; Why two sums (a -> b) and not `sum += w * x` in place: the verdict on an update (checksum, NaN/Inf, norm
;; limit, stale round) is known only after its last byte was read, and a float add cannot be undone exactly
;; (x + y - y != x, and Inf or NaN poison the sum for good). So the pass writes b = a + w * x into the other
;; buffer; accepting the update swaps the roles of a and b, rejecting it leaves a untouched. The cost is the
;; same three memory streams as the in-place add (read x, read a, write b), and a rejected update never
;; touches the sum the next update is added to.
;;
;; The caller (src/server/adapters/workers/running-sum.ts) copies the received frame into a small staging area
;; in this memory a chunk at a time (it stays in L1/L2) and calls fold on each chunk, carrying the check state
;; across chunks in st:
;;   st+0..15  i32 x4  checksum lanes a, b, c, d (as checksum32 in src/protocol/frame.ts; tail words to lane a)
;;   st+16     i32     number of non-finite values
;;   st+24     f64     sum of squares
;; Every chunk but the last holds a multiple of 4 floats, so the checksum's lanes line up across chunks.
;;
;; The sketch (for outlier scores without keeping the update): a folded update is gone by the round's close, but
;; its distance from the aggregate is still wanted. The same pass adds a random-sign projection of it into K =
;; 2048 buckets: sketch[i mod K] += s(i / 4) x[i], with s a +-1 sign hashed from the 4-float group index and a
;; per-round seed the nodes never see. The sketch is linear, so the mean's sketch is the weighted mean of the
;; updates' sketches, and |sketch(x) - sketch(mean)| estimates |x - mean| (unbiased in the square; relative error
;; about sqrt(2 / K), 3%, for updates that are not built against the seed). Buckets are 512 v128 lanes, 8 KiB:
;; they stay in L1 beside the streams.
;;
;; Speed: two vectors per iteration with their own accumulators (the f64 adds of the sum of squares are a 4-cycle
;; dependency chain per accumulator; one pair of them bound the single-vector loop).
(module
  (memory (import "env" "memory") 1 65536 shared)

  ;; fold(p, n, a, b, w, st, first, hash, sk, g, seed): p = n float32 (the update's chunk), a/b = the sums at the
  ;; same position, sk = the update's sketch (2048 float32), g = the 4-float group index of p[0] in the update (a
  ;; chunk starts at a multiple of 512 groups), seed = the round's sketch seed.
  ;; first != 0: the round's first update, b = w * x (a is not read: no zeroed buffer to stream).
  ;; hash == 0: skip the checksum lanes (for a frame that carries no checksum; the lanes in st stay as they were).
  (func $fold (export "fold")
    (param $p i32) (param $n i32) (param $a i32) (param $b i32) (param $w f32) (param $st i32) (param $first i32) (param $hash i32)
    (param $sk i32) (param $g i32) (param $seed i32)
    (local $end8 i32) (local $end i32) (local $tail_end i32) (local $vw v128) (local $q i32)
    (local $v v128) (local $bad v128) (local $sq0 v128) (local $sq1 v128) (local $sq2 v128) (local $sq3 v128) (local $x v128)
    (local $lane i32) (local $word i32) (local $bad_tail i32) (local $sq_tail f64) (local $f f64) (local $wx f32) (local $k i32)
    (local $h0 i32) (local $h1 i32) (local $h2 i32) (local $h3 i32)
    (local.set $vw (f32x4.splat (local.get $w)))
    (local.set $h0 (i32.load offset=0 align=4 (local.get $st)))
    (local.set $h1 (i32.load offset=4 align=4 (local.get $st)))
    (local.set $h2 (i32.load offset=8 align=4 (local.get $st)))
    (local.set $h3 (i32.load offset=12 align=4 (local.get $st)))
    (local.set $end8 (i32.add (local.get $p) (i32.shl (i32.and (local.get $n) (i32.const -8)) (i32.const 2))))
    (local.set $end (i32.add (local.get $p) (i32.shl (i32.and (local.get $n) (i32.const -4)) (i32.const 2))))
    (local.set $tail_end (i32.add (local.get $p) (i32.shl (local.get $n) (i32.const 2))))
    ;; checksum lanes: h = (h ^ w) * FNV prime, one serial chain per lane over the whole update. Four scalar
    ;; chains rather than one i32x4.mul: a scalar multiply's latency is about a third of the vector one's on x86.
    ;; A wider checksum (more independent lanes) would need a new protocol version.
    ;; Non-finite: exponent all ones (eq gives -1 per such lane, so subtracting counts them). Squares in f64 (a
    ;; float32 sum of squares overflows on exactly the updates the norm check is for).
    (block $done8
      (loop $next8
        (br_if $done8 (i32.ge_u (local.get $p) (local.get $end8)))
        ;; ---- floats 0 .. 3 of this step
        (local.set $v (v128.load offset=0 align=4 (local.get $p)))
        (if (local.get $hash) (then
        (local.set $h0 (i32.mul (i32.xor (local.get $h0) (i32.load offset=0 align=4 (local.get $p))) (i32.const 0x01000193)))
        (local.set $h1 (i32.mul (i32.xor (local.get $h1) (i32.load offset=4 align=4 (local.get $p))) (i32.const 0x01000193)))
        (local.set $h2 (i32.mul (i32.xor (local.get $h2) (i32.load offset=8 align=4 (local.get $p))) (i32.const 0x01000193)))
        (local.set $h3 (i32.mul (i32.xor (local.get $h3) (i32.load offset=12 align=4 (local.get $p))) (i32.const 0x01000193)))))
        (local.set $bad
          (i32x4.sub (local.get $bad)
            (i32x4.eq
              (v128.and (local.get $v) (v128.const i32x4 0x7f800000 0x7f800000 0x7f800000 0x7f800000))
              (v128.const i32x4 0x7f800000 0x7f800000 0x7f800000 0x7f800000))))
        (local.set $x (f64x2.promote_low_f32x4 (local.get $v)))
        (local.set $sq0 (f64x2.add (local.get $sq0) (f64x2.mul (local.get $x) (local.get $x))))
        (local.set $x (f64x2.promote_low_f32x4
          (i8x16.shuffle 8 9 10 11 12 13 14 15 0 1 2 3 4 5 6 7 (local.get $v) (local.get $v))))
        (local.set $sq1 (f64x2.add (local.get $sq1) (f64x2.mul (local.get $x) (local.get $x))))
        (v128.store offset=0 align=4 (local.get $b)
          (if (result v128) (local.get $first)
            (then (f32x4.mul (local.get $v) (local.get $vw)))
            (else (f32x4.add (v128.load offset=0 align=4 (local.get $a)) (f32x4.mul (local.get $v) (local.get $vw))))))
        ;; sketch: bucket group g mod 512, sign from the top bit of (g ^ seed) * golden ratio
        (local.set $q (i32.add (local.get $sk) (i32.shl (i32.and (local.get $g) (i32.const 511)) (i32.const 4))))
        (v128.store (local.get $q)
          (f32x4.add (v128.load (local.get $q))
            (v128.xor (local.get $v)
              (i32x4.splat (i32.and (i32.mul (i32.xor (local.get $g) (local.get $seed)) (i32.const 0x9e3779b1)) (i32.const 0x80000000))))))
        (local.set $g (i32.add (local.get $g) (i32.const 1)))
        ;; ---- floats 4 .. 7 of this step
        (local.set $v (v128.load offset=16 align=4 (local.get $p)))
        (if (local.get $hash) (then
        (local.set $h0 (i32.mul (i32.xor (local.get $h0) (i32.load offset=16 align=4 (local.get $p))) (i32.const 0x01000193)))
        (local.set $h1 (i32.mul (i32.xor (local.get $h1) (i32.load offset=20 align=4 (local.get $p))) (i32.const 0x01000193)))
        (local.set $h2 (i32.mul (i32.xor (local.get $h2) (i32.load offset=24 align=4 (local.get $p))) (i32.const 0x01000193)))
        (local.set $h3 (i32.mul (i32.xor (local.get $h3) (i32.load offset=28 align=4 (local.get $p))) (i32.const 0x01000193)))))
        (local.set $bad
          (i32x4.sub (local.get $bad)
            (i32x4.eq
              (v128.and (local.get $v) (v128.const i32x4 0x7f800000 0x7f800000 0x7f800000 0x7f800000))
              (v128.const i32x4 0x7f800000 0x7f800000 0x7f800000 0x7f800000))))
        (local.set $x (f64x2.promote_low_f32x4 (local.get $v)))
        (local.set $sq2 (f64x2.add (local.get $sq2) (f64x2.mul (local.get $x) (local.get $x))))
        (local.set $x (f64x2.promote_low_f32x4
          (i8x16.shuffle 8 9 10 11 12 13 14 15 0 1 2 3 4 5 6 7 (local.get $v) (local.get $v))))
        (local.set $sq3 (f64x2.add (local.get $sq3) (f64x2.mul (local.get $x) (local.get $x))))
        (v128.store offset=16 align=4 (local.get $b)
          (if (result v128) (local.get $first)
            (then (f32x4.mul (local.get $v) (local.get $vw)))
            (else (f32x4.add (v128.load offset=16 align=4 (local.get $a)) (f32x4.mul (local.get $v) (local.get $vw))))))
        ;; sketch: bucket group g mod 512, sign from the top bit of (g ^ seed) * golden ratio
        (local.set $q (i32.add (local.get $sk) (i32.shl (i32.and (local.get $g) (i32.const 511)) (i32.const 4))))
        (v128.store (local.get $q)
          (f32x4.add (v128.load (local.get $q))
            (v128.xor (local.get $v)
              (i32x4.splat (i32.and (i32.mul (i32.xor (local.get $g) (local.get $seed)) (i32.const 0x9e3779b1)) (i32.const 0x80000000))))))
        (local.set $g (i32.add (local.get $g) (i32.const 1)))
        (local.set $p (i32.add (local.get $p) (i32.const 32)))
        (local.set $a (i32.add (local.get $a) (i32.const 32)))
        (local.set $b (i32.add (local.get $b) (i32.const 32)))
        (br $next8)))
    ;; one group of 4 left over (last chunk only)
    (if (i32.lt_u (local.get $p) (local.get $end)) (then
        ;; ---- floats 0 .. 3 of this step
        (local.set $v (v128.load offset=0 align=4 (local.get $p)))
        (if (local.get $hash) (then
        (local.set $h0 (i32.mul (i32.xor (local.get $h0) (i32.load offset=0 align=4 (local.get $p))) (i32.const 0x01000193)))
        (local.set $h1 (i32.mul (i32.xor (local.get $h1) (i32.load offset=4 align=4 (local.get $p))) (i32.const 0x01000193)))
        (local.set $h2 (i32.mul (i32.xor (local.get $h2) (i32.load offset=8 align=4 (local.get $p))) (i32.const 0x01000193)))
        (local.set $h3 (i32.mul (i32.xor (local.get $h3) (i32.load offset=12 align=4 (local.get $p))) (i32.const 0x01000193)))))
        (local.set $bad
          (i32x4.sub (local.get $bad)
            (i32x4.eq
              (v128.and (local.get $v) (v128.const i32x4 0x7f800000 0x7f800000 0x7f800000 0x7f800000))
              (v128.const i32x4 0x7f800000 0x7f800000 0x7f800000 0x7f800000))))
        (local.set $x (f64x2.promote_low_f32x4 (local.get $v)))
        (local.set $sq0 (f64x2.add (local.get $sq0) (f64x2.mul (local.get $x) (local.get $x))))
        (local.set $x (f64x2.promote_low_f32x4
          (i8x16.shuffle 8 9 10 11 12 13 14 15 0 1 2 3 4 5 6 7 (local.get $v) (local.get $v))))
        (local.set $sq1 (f64x2.add (local.get $sq1) (f64x2.mul (local.get $x) (local.get $x))))
        (v128.store offset=0 align=4 (local.get $b)
          (if (result v128) (local.get $first)
            (then (f32x4.mul (local.get $v) (local.get $vw)))
            (else (f32x4.add (v128.load offset=0 align=4 (local.get $a)) (f32x4.mul (local.get $v) (local.get $vw))))))
        ;; sketch: bucket group g mod 512, sign from the top bit of (g ^ seed) * golden ratio
        (local.set $q (i32.add (local.get $sk) (i32.shl (i32.and (local.get $g) (i32.const 511)) (i32.const 4))))
        (v128.store (local.get $q)
          (f32x4.add (v128.load (local.get $q))
            (v128.xor (local.get $v)
              (i32x4.splat (i32.and (i32.mul (i32.xor (local.get $g) (local.get $seed)) (i32.const 0x9e3779b1)) (i32.const 0x80000000))))))
        (local.set $g (i32.add (local.get $g) (i32.const 1)))
        (local.set $p (i32.add (local.get $p) (i32.const 16)))
        (local.set $a (i32.add (local.get $a) (i32.const 16)))
        (local.set $b (i32.add (local.get $b) (i32.const 16)))))
    ;; the last n % 4 words (last chunk only) all go to checksum lane a, as in checksum32; sketch group g
    (local.set $lane (local.get $h0))
    (local.set $q (i32.add (local.get $sk) (i32.shl (i32.and (local.get $g) (i32.const 511)) (i32.const 4))))
    (local.set $k (i32.and (i32.mul (i32.xor (local.get $g) (local.get $seed)) (i32.const 0x9e3779b1)) (i32.const 0x80000000)))
    (block $tail_done
      (loop $tail
        (br_if $tail_done (i32.ge_u (local.get $p) (local.get $tail_end)))
        (local.set $word (i32.load align=4 (local.get $p)))
        (local.set $lane (i32.mul (i32.xor (local.get $lane) (local.get $word)) (i32.const 0x01000193)))
        (if (i32.eq (i32.and (local.get $word) (i32.const 0x7f800000)) (i32.const 0x7f800000))
          (then (local.set $bad_tail (i32.add (local.get $bad_tail) (i32.const 1)))))
        (local.set $f (f64.promote_f32 (f32.load align=4 (local.get $p))))
        (local.set $sq_tail (f64.add (local.get $sq_tail) (f64.mul (local.get $f) (local.get $f))))
        (local.set $wx (f32.mul (f32.load align=4 (local.get $p)) (local.get $w)))
        (f32.store align=4 (local.get $b)
          (if (result f32) (local.get $first)
            (then (local.get $wx))
            (else (f32.add (f32.load align=4 (local.get $a)) (local.get $wx)))))
        (f32.store align=4 (local.get $q)
          (f32.add (f32.load align=4 (local.get $q)) (f32.reinterpret_i32 (i32.xor (local.get $word) (local.get $k)))))
        (local.set $p (i32.add (local.get $p) (i32.const 4)))
        (local.set $a (i32.add (local.get $a) (i32.const 4)))
        (local.set $b (i32.add (local.get $b) (i32.const 4)))
        (local.set $q (i32.add (local.get $q) (i32.const 4)))
        (br $tail)))
    (i32.store offset=0 align=4 (local.get $st) (local.get $lane))
    (i32.store offset=4 align=4 (local.get $st) (local.get $h1))
    (i32.store offset=8 align=4 (local.get $st) (local.get $h2))
    (i32.store offset=12 align=4 (local.get $st) (local.get $h3))
    (i32.store offset=16 align=4 (local.get $st)
      (i32.add (i32.load offset=16 align=4 (local.get $st))
        (i32.add (local.get $bad_tail)
          (i32.add
            (i32.add (i32x4.extract_lane 0 (local.get $bad)) (i32x4.extract_lane 1 (local.get $bad)))
            (i32.add (i32x4.extract_lane 2 (local.get $bad)) (i32x4.extract_lane 3 (local.get $bad)))))))
    (local.set $sq0 (f64x2.add (f64x2.add (local.get $sq0) (local.get $sq1)) (f64x2.add (local.get $sq2) (local.get $sq3))))
    (f64.store offset=24 align=8 (local.get $st)
      (f64.add (f64.load offset=24 align=8 (local.get $st))
        (f64.add (local.get $sq_tail)
          (f64.add (f64x2.extract_lane 0 (local.get $sq0)) (f64x2.extract_lane 1 (local.get $sq0)))))))

  ;; scale(p, n, s, out): out = p * s over n floats (the mean from the sum: one pass at round close).
  (func $scale (export "scale") (param $p i32) (param $n i32) (param $s f32) (param $out i32)
    (local $end i32) (local $tail_end i32) (local $vs v128)
    (local.set $vs (f32x4.splat (local.get $s)))
    (local.set $end (i32.add (local.get $p) (i32.shl (i32.and (local.get $n) (i32.const -4)) (i32.const 2))))
    (local.set $tail_end (i32.add (local.get $p) (i32.shl (local.get $n) (i32.const 2))))
    (block $done
      (loop $next
        (br_if $done (i32.ge_u (local.get $p) (local.get $end)))
        (v128.store align=4 (local.get $out) (f32x4.mul (v128.load align=4 (local.get $p)) (local.get $vs)))
        (local.set $p (i32.add (local.get $p) (i32.const 16)))
        (local.set $out (i32.add (local.get $out) (i32.const 16)))
        (br $next)))
    (block $tail_done
      (loop $tail
        (br_if $tail_done (i32.ge_u (local.get $p) (local.get $tail_end)))
        (f32.store align=4 (local.get $out) (f32.mul (f32.load align=4 (local.get $p)) (local.get $s)))
        (local.set $p (i32.add (local.get $p) (i32.const 4)))
        (local.set $out (i32.add (local.get $out) (i32.const 4)))
        (br $tail)))))
